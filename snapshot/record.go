package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
)

// The state dir of a snapshot directory holds what a build remembers
// between runs. It is never inside a node's snapshot (each node's
// snapshot is its NFS-exported read-write root, which the node can change
// at will) and by default not inside the snapshot directory at all:
//
//	<state>/lock                   one build at a time (imaging.Lock)
//	<state>/image.hashcache        hash cache of the image's listed paths
//	<state>/nodes/<host>.manifest  per node: what goldsync last copied
//	<state>/retention/             replaced files kept for NFS readers
//
// The default is DefaultStateDir(snapshotDir), a sibling of the snapshot
// directory on the same filesystem: /diskless/i386/RHEL5-AS/snapshot keeps
// its state in /diskless/i386/RHEL5-AS/.snapshot.goldsync.
const (
	imageCacheName = "image.hashcache"
	nodesDirName   = "nodes"
	recordSuffix   = ".manifest"
)

// DefaultStateDir returns the state dir a build of snapshotDir uses when
// BuildOptions.StateDir is empty: ".<name>.goldsync" beside it, outside
// the exported snapshot directory.
func DefaultStateDir(snapshotDir string) string { return imaging.DefaultStateDir(snapshotDir) }

// RecordPath returns the file holding a node's record in a state dir: an
// imaging.Manifest of what each listed path held on the node right after
// goldsync last copied it from the image (or found it equal to the
// image), content hashes and the node's inode identity included.
func RecordPath(stateDir, host string) string {
	return filepath.Join(stateDir, nodesDirName, host+recordSuffix)
}

// loadRecord reads a node's record; a missing one is empty. A damaged one
// is reported and treated as empty: with no record every difference from
// the image is kept as the node's and reported, so nothing is lost.
func loadRecord(stateDir, host string) ([]*tree.Entry, error) {
	m, err := imaging.LoadManifest(RecordPath(stateDir, host))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return m.Entries, nil
}

// saveRecord writes a node's record atomically.
func saveRecord(stateDir, host string, entries []*tree.Entry) error {
	dir := filepath.Join(stateDir, nodesDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save record of %s: %w", host, err)
	}
	m := &imaging.Manifest{Entries: make([]*tree.Entry, 0, len(entries))}
	for _, e := range entries {
		if e.LinkTo != "" || e.Problem != "" {
			e = e.Clone()
			e.LinkTo, e.Problem = "", ""
		}
		m.Entries = append(m.Entries, e)
	}
	slices.SortFunc(m.Entries, func(a, b *tree.Entry) int { return tree.Compare(a.Path, b.Path) })
	if err := m.Save(RecordPath(stateDir, host)); err != nil {
		return fmt.Errorf("save record of %s: %w", host, err)
	}
	return nil
}

// RemoveSnapshot deletes a node's snapshot tree, snapshotDir/host, and its
// record in stateDir (DefaultStateDir(snapshotDir) when empty): what
// `goldsync node remove --purge` does. Nothing outside snapshotDir/host is
// touched: the tree is removed beneath an os.Root without following
// symlinks. A snapshot that does not exist is not an error.
func RemoveSnapshot(snapshotDir, stateDir, host string) error {
	if err := CheckHostname(host); err != nil {
		return fmt.Errorf("remove snapshot: %w", err)
	}
	if stateDir == "" {
		stateDir = DefaultStateDir(snapshotDir)
	}
	root, err := os.OpenRoot(snapshotDir)
	if err != nil {
		return fmt.Errorf("remove snapshot of %s: %w", host, err)
	}
	defer root.Close()
	if err := root.RemoveAll(host); err != nil {
		return fmt.Errorf("remove snapshot of %s: %w", host, err)
	}
	if err := os.Remove(RecordPath(stateDir, host)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record of %s: %w", host, err)
	}
	return nil
}

// checkStateDir refuses a state dir inside the snapshot directory (the
// nodes' snapshots are exported read-write, often no_root_squash: a node
// that can reach the state dir could plant its records, lock or retention
// links), also when a symlink leads there. nodes name the snapshots, for
// the message.
func checkStateDir(stateDir, snapshotDir string, nodes []Node) error {
	sd, err1 := filepath.Abs(stateDir)
	dd, err2 := filepath.Abs(snapshotDir)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("state dir: cannot resolve %s or %s", stateDir, snapshotDir)
	}
	for _, pair := range [][2]string{{sd, dd}, {imaging.ResolvePath(sd), imaging.ResolvePath(dd)}} {
		rel, err := filepath.Rel(pair[1], pair[0])
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if rel == "." {
			return fmt.Errorf("%w: state dir %s is the snapshot directory: put it outside", imaging.ErrUnsafeStateDir, stateDir)
		}
		first, _, _ := strings.Cut(rel, "/")
		for _, n := range nodes {
			if strings.EqualFold(first, n.Host) {
				return fmt.Errorf("%w: state dir %s is inside the snapshot of node %s: put it outside", imaging.ErrUnsafeStateDir, stateDir, n.Host)
			}
		}
		return fmt.Errorf("%w: state dir %s is inside the snapshot directory %s: put it outside", imaging.ErrUnsafeStateDir, stateDir, snapshotDir)
	}
	return nil
}
