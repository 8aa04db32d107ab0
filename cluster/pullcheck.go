package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/remote"
)

// ErrSelection is wrapped by the errors of CheckSource, CheckDest and
// CheckOverlap: the source or the destination a command line names
// cannot be what a pull needs (rsync's "errors selecting input/output
// files, dirs"). They check before anything is contacted or created.
var ErrSelection = errors.New("bad source or destination")

// selection is err, also matching ErrSelection; its message is err's.
func selection(err error) error { return kindError{ErrSelection, err} }

// CheckDest refuses a DEST that cannot be an image directory before
// anything is created: a file, or a path whose parent is missing.
func CheckDest(dest string) error {
	st, err := os.Lstat(dest)
	switch {
	case err == nil && !st.IsDir():
		return selection(fmt.Errorf("destination %s is not a directory", dest))
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return selection(fmt.Errorf("destination: %w", err))
	}
	parent := filepath.Dir(filepath.Clean(dest))
	if st, err := os.Stat(parent); err != nil {
		return selection(fmt.Errorf("destination %s: its parent: %w", dest, err))
	} else if !st.IsDir() {
		return selection(fmt.Errorf("destination %s: its parent %s is not a directory", dest, parent))
	}
	return nil
}

// CheckSource refuses a local SRC that is missing or not a directory (a
// remote one is the agent's to check), and says whether SRC is a whole
// root.
func CheckSource(src string) (root bool, err error) {
	sp, err := remote.ParseSpec(src)
	if err != nil {
		return false, selection(fmt.Errorf("source: %w", err))
	}
	if sp.Host == "" {
		st, err := os.Stat(sp.Path)
		if err != nil {
			return false, selection(fmt.Errorf("source: %w", err))
		}
		if !st.IsDir() {
			return false, selection(fmt.Errorf("source %s is not a directory", sp.Path))
		}
	}
	return exclude.IsRoot(sp.Path), nil
}

// CheckOverlap refuses a local pull whose SRC and DEST (or DEST's state
// dir) are the same directory or inside one another: mirroring a tree into
// its own subdirectory copies the image (and its manifest and retention)
// into itself on every run, and mirroring into a parent of SRC deletes SRC.
// A DEST inside SRC is fine when the excludes leave it out.
func CheckOverlap(src, dest, stateDir string, excludes []string) error {
	sp, err := remote.ParseSpec(src)
	if err != nil || sp.Host != "" {
		return nil // a remote source is another machine's tree
	}
	s, err := realPath(sp.Path)
	if err != nil {
		return nil // CheckSource reports it
	}
	if stateDir == "" {
		stateDir = imaging.DefaultStateDir(dest)
	}
	m, err := exclude.New(excludes)
	if err != nil {
		return err
	}
	for _, p := range []struct{ what, path string }{{"DEST", dest}, {"the state dir", stateDir}} {
		d, err := realPath(p.path)
		if err != nil {
			continue
		}
		switch {
		case d == s:
			return selection(fmt.Errorf("%s %s is SRC itself", p.what, p.path))
		case within(s, d) && p.what == "DEST":
			return selection(fmt.Errorf("SRC %s is inside DEST %s: the pull would delete it", src, dest))
		case within(d, s):
			rel, _ := filepath.Rel(s, d)
			if !excludedTree(m, filepath.ToSlash(rel)) {
				return selection(fmt.Errorf("%s %s is inside SRC %s: the pull would copy the image into itself (exclude it with --exclude /%s, or put the image elsewhere)",
					p.what, p.path, src, filepath.ToSlash(rel)))
			}
		}
	}
	return nil
}

// excludedTree reports whether rel or one of its ancestors is excluded:
// a walker does not descend into an excluded directory.
func excludedTree(m *exclude.Matcher, rel string) bool {
	parts := strings.Split(rel, "/")
	for i := range parts {
		if m.Excluded(strings.Join(parts[:i+1], "/"), true) {
			return true
		}
	}
	return false
}

// within reports whether path is strictly inside dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../")
}

// realPath is p absolute with its symlinks resolved; a missing last
// component (a DEST not made yet) is resolved through its parent.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	r, err := filepath.EvalSymlinks(abs)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(parent); err != nil {
		return "", err
	}
	return filepath.Join(parent, filepath.Base(abs)), nil
}
