package fsx

// Atomic writes: the functions below write files beneath an *os.Root so that readers see
// either the old content or the new one, never a torn file: the data goes to
// a temporary file in the same directory, is synced, given its mode, and
// then renamed (or hard-linked, for create-only writes) into place.
//
// Callers decide what to write and where.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
)

// AtomicTempPrefix starts the name of every temporary file this package creates,
// so that leftovers of a crash are easy to recognise.
const AtomicTempPrefix = ".goldsync-tmp-"

// IsAtomicTemp reports whether a directory entry name is one of our temporaries.
func IsAtomicTemp(name string) bool { return strings.HasPrefix(name, AtomicTempPrefix) }

// WriteFileAtomic atomically replaces name beneath root with data, mode perm.
func WriteFileAtomic(root *os.Root, name string, data []byte, perm fs.FileMode) error {
	_, err := WriteAtomic(context.Background(), root, name, bytes.NewReader(data), perm)
	return err
}

// WriteAtomic atomically replaces name beneath root with everything read from r,
// mode perm, and returns the number of bytes written. Cancelling ctx stops
// the copy and leaves name untouched.
func WriteAtomic(ctx context.Context, root *os.Root, name string, r io.Reader, perm fs.FileMode) (int64, error) {
	tmp, n, err := atomicWriteTemp(ctx, root, name, r, perm)
	if err != nil {
		return n, err
	}
	if err := root.Rename(tmp, name); err != nil {
		_ = root.Remove(tmp)
		return n, fmt.Errorf("rename into place: %w", err)
	}
	return n, atomicSyncDir(root, path.Dir(name))
}

// AtomicFile is one file of a WriteFilesAtomic call.
type AtomicFile struct {
	Name string
	Data []byte
}

// atomicWriteWorkers bounds the temporary files written and synced at once:
// concurrent fsyncs share journal commits.
const atomicWriteWorkers = 8

// WriteFilesAtomic replaces many files beneath root, mode perm, nearly all or
// nothing: every file is first written and synced to a temporary file
// beside it, in parallel; only when all of them are safely on disk are they
// renamed into place, and then each directory involved is synced once. If
// any temporary write fails, no file is replaced.
func WriteFilesAtomic(root *os.Root, files []AtomicFile, perm fs.FileMode) error {
	tmps := make([]string, len(files))
	errs := make([]error, len(files))
	sem := make(chan struct{}, atomicWriteWorkers)
	var wg sync.WaitGroup
	for i, f := range files {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			tmps[i], _, errs[i] = atomicWriteTemp(context.Background(), root, f.Name, bytes.NewReader(f.Data), perm)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, t := range tmps {
			if t != "" {
				_ = root.Remove(t)
			}
		}
		return err
	}
	dirs := make(map[string]bool)
	for i, f := range files {
		if err := root.Rename(tmps[i], f.Name); err != nil {
			for _, t := range tmps[i:] {
				_ = root.Remove(t)
			}
			return fmt.Errorf("rename into place: %w", err)
		}
		dirs[path.Dir(f.Name)] = true
	}
	for d := range dirs {
		if err := atomicSyncDir(root, d); err != nil {
			return err
		}
	}
	return nil
}

// CreateAtomic writes data to name beneath root only when name does not exist
// yet: it never replaces or edits an existing file, symlink or directory,
// even one that appears while it runs. It reports whether it wrote.
func CreateAtomic(root *os.Root, name string, data []byte, perm fs.FileMode) (bool, error) {
	if _, err := root.Lstat(name); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	tmp, _, err := atomicWriteTemp(context.Background(), root, name, bytes.NewReader(data), perm)
	if err != nil {
		return false, err
	}
	defer func() { _ = root.Remove(tmp) }()
	// link(2) fails with EEXIST instead of replacing: create-only, atomic.
	if err := root.Link(tmp, name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("link into place: %w", err)
	}
	return true, atomicSyncDir(root, path.Dir(name))
}

func atomicWriteTemp(ctx context.Context, root *os.Root, name string, r io.Reader, perm fs.FileMode) (tmp string, n int64, err error) {
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	dir := path.Dir(name)
	name0 := path.Join(dir, AtomicTempPrefix+path.Base(name)+"-"+rand.Text()[:12])
	f, err := root.OpenFile(name0, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			// (not tmp: the failed returns below have set it to "")
			_ = f.Close()
			_ = root.Remove(name0)
		}
	}()
	n, err = io.Copy(f, atomicCtxReader{ctx, r})
	if err != nil {
		return "", n, fmt.Errorf("write %s: %w", name, err)
	}
	if err = f.Chmod(perm); err != nil {
		return "", n, err
	}
	if err = f.Sync(); err != nil {
		return "", n, err
	}
	if err = f.Close(); err != nil {
		return "", n, err
	}
	return name0, n, nil
}

func atomicSyncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

type atomicCtxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c atomicCtxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// WritePathAtomic atomically replaces the file at path with data, mode perm: the
// one-file form of WriteFileAtomic for callers that hold a path, not a root.
func WritePathAtomic(p string, data []byte, perm fs.FileMode) error {
	root, err := os.OpenRoot(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer root.Close()
	return WriteFileAtomic(root, filepath.Base(p), data, perm)
}
