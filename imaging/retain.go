package imaging

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
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
	// note is where the run leaves what the next one needs to skip the
	// listing (retentionNote); grace is the run's grace period, oldest
	// the time of the oldest name the dir holds (math.MinInt64: a name
	// that is due or has no time; math.MaxInt64: none), skipped that the
	// run did not list the dir, since nothing in it was due, and seenIn
	// the incoming note's Seen then.
	note    string
	grace   time.Duration
	oldest  int64
	skipped bool
	seenIn  string
}

// retentionNote is what a run leaves beside its retention dir (the file
// retention.note in the state dir) so that the next run lists the dir
// (which holds every file replaced in the grace period, 24 h by default:
// thousands of names on a replica updated every few minutes) only when
// a retained link is due. A run removes the note before it makes any
// link and writes it when it is done, so a run that was killed or failed
// in between leaves none, and the next one lists the dir. A note that
// does not parse, or names another grace period, is no note.
type retentionNote struct {
	// Grace is the grace period the note was written with (ns).
	Grace int64 `json:"grace_ns"`
	// Oldest is the Unix time of the oldest name in the dir: nothing is
	// due while now - grace <= Oldest.
	Oldest int64 `json:"oldest"`
	// Seen is the stamp of the run that recorded the generation whose
	// harvest looked at every name the dir holds ("" when unknown): while
	// the newest generation is still that one, the next harvest needs
	// only its own run's names.
	Seen string `json:"seen,omitempty"`
}

// maxNote bounds the note read: it is a few dozen bytes.
const maxNote = 4 << 10

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
	r.dir, r.grace, r.note = root, grace, dir+".note"
	n, ok := readRetentionNote(r.note)
	if err := os.Remove(r.note); err != nil && !errors.Is(err, os.ErrNotExist) {
		// A note that stays would outlive what this run adds: list.
		ok = false
		r.note = ""
	}
	if ok && n.Grace == int64(grace) && time.Now().Add(-grace).Unix() <= n.Oldest {
		r.skipped, r.oldest, r.seenIn = true, n.Oldest, n.Seen
		return r, nil
	}
	r.listed, r.listedOK = purge(root, grace, log)
	r.oldest = math.MaxInt64
	if !r.listedOK {
		r.oldest = math.MinInt64
	}
	for _, name := range r.listed {
		r.oldest = min(r.oldest, nameTime(name))
	}
	return r, nil
}

// nameTime is the Unix time a retained link's name starts with
// (math.MinInt64 when it has none).
func nameTime(name string) int64 {
	ts, _, ok := strings.Cut(name, ".")
	t, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil {
		return math.MinInt64
	}
	return t
}

// readRetentionNote reads a run's note; ok false when there is none or it
// does not parse.
func readRetentionNote(path string) (retentionNote, bool) {
	var n retentionNote
	f, err := os.Open(path)
	if err != nil {
		return n, false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxNote+1))
	if err != nil || len(data) > maxNote || json.Unmarshal(data, &n) != nil {
		return n, false
	}
	return n, true
}

// leaveNote writes the run's note for the next one (see retentionNote):
// recorded says the run recorded a generation, whose harvest looked at
// every name the dir holds. No fsync: a note lost with a crash only
// costs the next run a listing.
func (r *retainer) leaveNote(recorded bool) {
	if r == nil || r.note == "" || r.oldest == math.MinInt64 {
		return
	}
	n := retentionNote{Grace: int64(r.grace), Oldest: r.oldest}
	if r.seq.Load() > 0 {
		t, _ := strconv.ParseInt(r.stamp[:strings.IndexByte(r.stamp, '.')], 10, 64)
		n.Oldest = min(n.Oldest, t)
	}
	switch {
	case recorded:
		n.Seen = r.stamp
	case r.skipped && r.seq.Load() == 0:
		n.Seen = r.seenIn // the dir is as the incoming note said
	}
	data, err := json.Marshal(n)
	if err != nil {
		return
	}
	tmp := r.note + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		r.log.Debug("retention note not written", "err", err)
		return
	}
	if err := os.Rename(tmp, r.note); err != nil {
		os.Remove(tmp)
		r.log.Debug("retention note not written", "err", err)
	}
}

// names returns the names the retention dir holds now, as far as this run
// knows them (ok false: it does not): those it listed when it opened the
// dir, and those it may have made since (some of which may not exist).
// The run holds the state dir's lock: nobody else adds any.
//
// When the run did not list the dir (nothing in it was due), it knows
// only its own names: they are what the dir holds beyond what the
// harvest of the generation recorded by the run stamped after looked at
// (see retentionNote.Seen); ok is false when that is unknown.
func (r *retainer) names() (names []string, ok bool, after string) {
	if r == nil || r.dir == nil || !r.listedOK && (!r.skipped || r.seenIn == "") {
		return nil, false, ""
	}
	out := slices.Clip(r.listed)
	for i := int64(1); i <= r.seq.Load(); i++ {
		out = append(out, r.stamp+"."+strconv.FormatInt(i, 10))
	}
	if r.skipped {
		return out, true, r.seenIn
	}
	return out, true, ""
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
