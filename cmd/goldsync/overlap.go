package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/remote"
)

// checkOverlap refuses a local pull whose SRC and DEST (or DEST's state
// dir) are the same directory or inside one another: mirroring a tree into
// its own subdirectory copies the image (and its manifest and retention)
// into itself on every run, and mirroring into a parent of SRC deletes SRC.
// A DEST inside SRC is fine when the excludes leave it out.
func checkOverlap(src, dest, stateDir string, excludes []string) error {
	sp, err := remote.ParseSpec(src)
	if err != nil || sp.Host != "" {
		return nil // a remote source is another machine's tree
	}
	s, err := realPath(sp.Path)
	if err != nil {
		return nil // checkSource reports it
	}
	if stateDir == "" {
		stateDir = imaging.DefaultStateDir(dest)
	}
	m, err := exclude.New(excludes)
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	for _, p := range []struct{ what, path string }{{"DEST", dest}, {"the state dir", stateDir}} {
		d, err := realPath(p.path)
		if err != nil {
			continue
		}
		switch {
		case d == s:
			return exitcode.With(exitcode.Select, fmt.Errorf("%s %s is SRC itself", p.what, p.path))
		case within(s, d) && p.what == "DEST":
			return exitcode.With(exitcode.Select, fmt.Errorf("SRC %s is inside DEST %s: the pull would delete it", src, dest))
		case within(d, s):
			rel, _ := filepath.Rel(s, d)
			if !excludedTree(m, filepath.ToSlash(rel)) {
				return exitcode.With(exitcode.Select, fmt.Errorf("%s %s is inside SRC %s: the pull would copy the image into itself (exclude it with --exclude /%s, or put the image elsewhere)",
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
