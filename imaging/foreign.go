package imaging

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// ErrNotImage is wrapped by CheckImageDest when the destination holds
// files but goldsync never synced into it.
var ErrNotImage = errors.New("destination is not an image")

// CheckImageDest refuses a destination a first sync would empty by
// mistake: an existing directory that holds entries while its state dir
// (stateDir, or DefaultStateDir(dest) when empty) does not exist. Sync
// mirrors, so such a run deletes everything there the source lacks: the
// contents of a directory named by mistake, or an image another tool
// made. The error wraps ErrNotImage and names a few of the entries; a
// missing or empty destination, or one with a state dir (goldsync synced
// into it, or a first run was interrupted), is fine.
func CheckImageDest(dest, stateDir string) error {
	if stateDir == "" {
		stateDir = DefaultStateDir(dest)
	}
	if _, err := os.Lstat(stateDir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state dir: %w", err)
	}
	d, err := os.Open(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("destination: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(4)
	if err != nil && err != io.EOF {
		return fmt.Errorf("destination: %w", err)
	}
	if len(names) == 0 {
		return nil
	}
	shown := strings.Join(names[:min(len(names), 3)], ", ")
	if len(names) > 3 {
		shown += ", ..."
	}
	return fmt.Errorf("%w: %s holds files (%s) and no goldsync state (%s): a sync would delete whatever the source lacks", ErrNotImage, dest, shown, stateDir)
}
