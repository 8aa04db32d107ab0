package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// checkBoot is step 3 of a dry run of a rollback: netboot.AddOS with
// DryRun, on the generation's image as the rollback would leave it
// (bootSkeleton), so the dry run fails where the real rollback's netboot
// step would (no such kernel, no initrd, bad options). (A dry run of a
// pull checks nothing here: the pull may bring what the live image lacks.)
func (j *job) checkBoot(ctx context.Context, opts netboot.AddOSOptions) (netboot.OS, []string, error) {
	opts.DryRun = true
	_, m, err := imaging.LoadGeneration(j.img.StateDir, j.o.RollbackTo)
	if err != nil {
		return netboot.OS{}, nil, err
	}
	skel, err := os.MkdirTemp("", "goldsync-bootcheck")
	if err != nil {
		return netboot.OS{}, nil, err
	}
	defer os.RemoveAll(skel)
	if err := bootSkeleton(skel, m.Entries); err != nil {
		return netboot.OS{}, nil, fmt.Errorf("generation %d: %w", j.o.RollbackTo, err)
	}
	root := opts.ImageRoot
	if opts.Location == "" {
		opts.Location = path.Dir(root) // as AddOS would make it of the real root
	}
	opts.ImageRoot = skel
	rec, warnings, err := netboot.AddOS(ctx, opts)
	// Messages name the image, not the skeleton standing in for it.
	fix := func(s string) string {
		return strings.ReplaceAll(s, skel, root)
	}
	for i := range warnings {
		warnings[i] = fix(warnings[i])
	}
	if err != nil {
		return rec, warnings, fmt.Errorf("after the rollback to generation %d: %s", j.o.RollbackTo, fix(err.Error()))
	}
	rec.ImageRoot = root
	return rec, warnings, nil
}

// bootSkeleton recreates in dir what netboot.AddOS reads of an image
// whose entries are given (a generation's manifest): the entries of boot/
// and the paths of netboot.ProbePaths with their parents, as directories,
// symlinks, and empty files with the entries' mtimes.
func bootSkeleton(dir string, entries []*tree.Entry) error {
	probes := netboot.ProbePaths()
	wanted := func(p string) bool {
		if p == "boot" || path.Dir(p) == "boot" {
			return true
		}
		return slices.ContainsFunc(probes, func(q string) bool { return q == p || strings.HasPrefix(q, p+"/") })
	}
	for _, e := range entries {
		if e.Path == tree.Root || !wanted(e.Path) {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		switch e.Type {
		case tree.TypeDir:
			if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			continue
		case tree.TypeSymlink:
			if err := os.Symlink(e.Target, p); err != nil {
				return err
			}
			continue
		case tree.TypeRegular:
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				return err
			}
		default:
			continue
		}
		mt := time.Unix(0, e.Mtime)
		if err := os.Chtimes(p, mt, mt); err != nil {
			return err
		}
	}
	return nil
}
