// Package atomicfile writes whole files so that a reader sees either the
// old content or the new, never a part: a temp file beside the name,
// synced, renamed over it, and the directory synced.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to path atomically, with mode (before the umask is
// not applied: the mode is set on the temp file). A failed write leaves
// the old file, and no temp file.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	SyncDir(dir)
	return nil
}

// SyncDir fsyncs a directory, so a rename in it is durable; errors are
// ignored (some filesystems refuse fsync on directories).
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
