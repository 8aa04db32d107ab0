package gen

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// DebianMirror is the mirror debootstrap downloads from.
const DebianMirror = "http://deb.debian.org/debian"

// ErrNoDebian is wrapped when no Debian root could be made (no debootstrap,
// mirror unreachable); callers fall back to a synthetic tree.
var ErrNoDebian = errors.New("no debootstrap'd Debian root")

// DebianCache returns the cached `debootstrap --variant=minbase bookworm`
// root beneath cacheDir, running debootstrap first when it is not there
// yet (about a minute and 200 MB). The cache is marked complete by a file
// beside it, so an interrupted debootstrap is never taken for a root.
func DebianCache(ctx context.Context, cacheDir string, log func(string)) (string, error) {
	root := filepath.Join(cacheDir, "debian-bookworm")
	mark := root + ".ok"
	if _, err := os.Stat(mark); err == nil {
		return root, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", fmt.Errorf("%w: debootstrap not installed (apt-get install debootstrap)", ErrNoDebian)
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	os.RemoveAll(root)
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	if log != nil {
		log("debootstrap --variant=minbase bookworm " + tmp + " " + DebianMirror)
	}
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "bookworm", tmp, DebianMirror)
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("%w: debootstrap: %v: %s", ErrNoDebian, err, tail(out, 600))
	}
	if err := os.Rename(tmp, root); err != nil {
		return "", err
	}
	if err := os.WriteFile(mark, []byte("debootstrap --variant=minbase bookworm "+DebianMirror+"\n"), 0o644); err != nil {
		return "", err
	}
	return root, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// Debian copies the cached Debian root into dir (which must not exist)
// and adds the tricky parts a minbase root lacks (see AddTricky).
func Debian(ctx context.Context, cacheDir, dir string, seed uint64, log func(string)) (Stats, error) {
	root, err := DebianCache(ctx, cacheDir, log)
	if err != nil {
		return Stats{}, err
	}
	if _, err := os.Lstat(dir); err == nil {
		return Stats{}, fmt.Errorf("%s exists", dir)
	}
	if out, err := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", root, dir).CombinedOutput(); err != nil {
		return Stats{}, fmt.Errorf("copy the Debian root: %v: %s", err, tail(out, 600))
	}
	st, err := AddTricky(ctx, dir, seed)
	if err != nil {
		return st, err
	}
	return Count(dir)
}

// AddTricky adds to an existing root what rsync -aHAXS exists for: a
// subtree opt/bench-tricky of 300 files with many xattrs, capabilities and
// ACLs, set-id files, hard links, symlinks, devices, fifos, a socket and a
// 256 MiB sparse file; and second names (hard links) in usr/local/bin for
// the first 20 files of usr/bin.
func AddTricky(ctx context.Context, root string, seed uint64) (Stats, error) {
	sub := filepath.Join(root, "opt", "bench-tricky")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		return Stats{}, err
	}
	p := planSynthetic(Spec{Files: 300, Seed: seed}, 10)
	st, err := p.write(ctx, sub, 2)
	if err != nil {
		return st, fmt.Errorf("tricky subtree: %w", err)
	}
	bins, _ := os.ReadDir(filepath.Join(root, "usr", "bin"))
	var names []string
	for _, b := range bins {
		if b.Type().IsRegular() {
			names = append(names, b.Name())
		}
	}
	sort.Strings(names)
	if len(names) > 20 {
		names = names[:20]
	}
	hl := filepath.Join(root, "usr", "local", "bin")
	if err := os.MkdirAll(hl, 0o755); err != nil {
		return st, err
	}
	for _, n := range names {
		if err := os.Link(filepath.Join(root, "usr", "bin", n), filepath.Join(hl, "hl-"+n)); err != nil && !errors.Is(err, os.ErrExist) {
			return st, err
		}
	}
	return st, nil
}

// Count walks a tree and counts what it holds.
func Count(dir string) (Stats, error) {
	var st Stats
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch t := d.Type(); {
		case t.IsDir():
			st.Dirs++
		case t&fs.ModeSymlink != 0:
			st.Symlinks++
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			if k, ok := inoKey(info); ok && info.Sys() != nil {
				if seen[k] {
					st.HardLinks++
					return nil
				}
				seen[k] = true
			}
			st.Files++
			st.Bytes += info.Size()
			st.DataBytes += allocated(info)
		default:
			st.Specials++
		}
		return nil
	})
	return st, err
}
