package imaging

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/fsx"
)

// Why retention: NFS (v3, and v4 for files not held open) identifies a file
// by its inode, not by an open descriptor the server can see. When a sync
// replaces /usr/bin/foo by rename, or deletes it, the old inode's last link
// is gone and the server frees it; a client still running the old binary
// then faults on its next page-in with "Stale file handle" (ESTALE), and the
// process dies with SIGBUS. Keeping one more hard link to the old inode in a
// directory outside the export keeps the inode, and the handle, alive. The
// links are purged after a grace period (default 24 h), by which time
// clients have restarted what they run or re-opened what they read.

// retentionListings counts the listings of retention dirs (which hold
// every replaced file of the grace period, 24 h by default): the test that
// checks a run lists its retention dir once reads it.
var retentionListings atomic.Int64

// retainer hard-links replaced and deleted files into a retention dir.
type retainer struct {
	dir   *fsx.Root // nil: retention off
	log   *slog.Logger
	seq   atomic.Int64
	stamp string
	once  sync.Once
	kept  atomic.Int64
	// listed is what the retention dir held when the run opened it,
	// after the purge (listedOK: it was read): with the run's own names,
	// what the generations' harvest looks at, without a second listing of
	// a dir that holds every replaced file of the grace period.
	listed   []string
	listedOK bool
}

func openRetainer(dir string, grace time.Duration, log *slog.Logger) (*retainer, error) {
	// The stamp starts with the Unix time (purge reads it) and names the
	// run, so runs within the same second do not collide on names.
	var id [4]byte
	rand.Read(id[:])
	r := &retainer{log: log, stamp: strconv.FormatInt(time.Now().Unix(), 10) + "." + hex.EncodeToString(id[:])}
	if dir == "" || grace < 0 {
		return r, nil
	}
	// The retention dir lives in the state dir: check that, create the
	// retention dir there, and never follow a symlink planted in its place.
	if err := PrepareStateDir(filepath.Dir(dir)); err != nil {
		return nil, err
	}
	if err := unix.Mkdir(dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("retention dir: %w", &os.PathError{Op: "mkdir", Path: dir, Err: err})
	}
	root, err := fsx.OpenDirNoFollow(dir)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("retention dir: %w: %s is a symlink or not a directory", ErrUnsafeStateDir, dir)
		}
		return nil, fmt.Errorf("retention dir: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(root.FD(), &st); err == nil && int(st.Uid) == os.Geteuid() {
		unix.Fchmod(root.FD(), 0o700)
	} else {
		root.Close()
		return nil, fmt.Errorf("retention dir: %w: %s is not owned by uid %d", ErrUnsafeStateDir, dir, os.Geteuid())
	}
	r.listed, r.listedOK = purge(root, grace, log)
	r.dir = root
	return r, nil
}

// names returns the names the retention dir holds now, as far as this run
// knows them (ok false: it does not): those it listed when it opened the
// dir, and those it may have made since (some of which may not exist).
// The run holds the state dir's lock: nobody else adds any.
func (r *retainer) names() ([]string, bool) {
	if r == nil || r.dir == nil || !r.listedOK {
		return nil, false
	}
	out := slices.Clip(r.listed)
	for i := int64(1); i <= r.seq.Load(); i++ {
		out = append(out, r.stamp+"."+strconv.FormatInt(i, 10))
	}
	return out, true
}

// purge removes retained links older than grace, through the retention
// dir's descriptor (no path is resolved again). Names start with the Unix
// time of the run that made them.
// It returns the names it left (ok false: the dir could not be listed).
func purge(root *fsx.Root, grace time.Duration, log *slog.Logger) (left []string, ok bool) {
	d, err := root.OpenDir(".")
	if err != nil {
		return nil, false
	}
	defer d.Close()
	names, err := d.Names()
	if err != nil {
		return nil, false
	}
	retentionListings.Add(1)
	cutoff := time.Now().Add(-grace).Unix()
	left = names[:0]
	for _, name := range names {
		ts, _, ok := strings.Cut(name, ".")
		t, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil || t < cutoff {
			if err := d.Unlink(name); err != nil {
				log.Warn("retention purge", "err", err)
				left = append(left, name)
			}
			continue
		}
		left = append(left, name)
	}
	return left, true
}

func (r *retainer) close() {
	if r.dir != nil {
		r.dir.Close()
	}
}

// keep links d/name (a regular file about to be replaced or deleted) into
// the retention dir. Failures only cost the protection, so they are logged.
func (r *retainer) keep(d *fsx.Dir, name string) {
	if r == nil || r.dir == nil {
		return
	}
	n := r.stamp + "." + strconv.FormatInt(r.seq.Add(1), 10)
	err := unix.Linkat(d.FD, name, r.dir.FD(), n, 0)
	if err == nil {
		r.kept.Add(1)
		return
	}
	if errors.Is(err, unix.EXDEV) {
		r.once.Do(func() {
			r.log.Warn("retention dir is on another filesystem than the image: replaced files are not retained for NFS clients")
		})
		return
	}
	if !errors.Is(err, unix.ENOENT) {
		r.log.Debug("retain", "name", name, "err", err)
	}
}

func (r *retainer) keepFunc() func(d *fsx.Dir, name string, st *unix.Stat_t) {
	return func(d *fsx.Dir, name string, st *unix.Stat_t) {
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			r.keep(d, name)
		}
	}
}
