package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
)

// PullSettings are the engine settings of goldsync pull and receive, as
// their rsync-like command lines give them.
type PullSettings struct {
	DryRun            bool
	NoDefaultExcludes bool          // no exclude.RootDefaults for a whole root
	MaxDelete         int           // -1: no limit; 0 with MaxDeleteSet: delete nothing
	MaxDeleteSet      bool          // --max-delete given: 0 means no deletes, as rsync
	DeleteSet         bool          // --delete given: a first pull may empty a non-empty DEST
	NoDelete          bool          // keep what the source no longer has
	StateDir          string        // "": imaging's default
	Retention         time.Duration // 0 or negative: off
	Fsync             bool
	MaxListBytes      int64
}

// Check checks the settings that exclude each other: an error is the
// command line's.
func (s PullSettings) Check() error {
	if s.NoDelete && s.DeleteSet {
		return errors.New("--delete and --no-delete contradict each other")
	}
	if s.MaxDelete < -1 {
		return fmt.Errorf("--max-delete %d: want -1 (no limit), 0 (no deletes) or a positive limit", s.MaxDelete)
	}
	return nil
}

// Options are the engine options of the settings, for a run from source.
// root says the source is a whole root, which brings the default
// excludes unless NoDefaultExcludes; excludes are the patterns already
// checked (exclude.Gather).
func (s PullSettings) Options(excludes []string, root bool) imaging.Options {
	if root && !s.NoDefaultExcludes {
		excludes = append(excludes, exclude.RootDefaults...)
	}
	retention := s.Retention
	if retention == 0 {
		retention = -1 // off; the engine's zero is its default
	}
	opts := imaging.Options{
		Excludes: excludes, DryRun: s.DryRun, NoDelete: s.NoDelete, MaxDelete: s.MaxDelete,
		StateDir: s.StateDir, Retention: retention, Fsync: s.Fsync, MaxListBytes: s.MaxListBytes,
	}
	if s.MaxDeleteSet && s.MaxDelete == 0 {
		// rsync's --max-delete=0: delete nothing, say what is kept.
		opts.NoDelete = true
	}
	return opts
}

// KeepsDeletes says the settings are rsync's --max-delete=0: the report
// says what was kept.
func (s PullSettings) KeepsDeletes() bool { return s.MaxDeleteSet && s.MaxDelete == 0 }

// CheckFirstPull refuses a pull that would delete the contents of a
// directory goldsync never pulled into (imaging.CheckImageDest) unless
// DeleteSet says so, as rsync deletes only when told: the error wraps
// imaging.ErrNotImage and says what to do. A dry run, or a run that
// deletes nothing, goes on; the dry run's warning says what the real run
// needs. Other errors are CheckImageDest's.
func (s PullSettings) CheckFirstPull(dest string, opts imaging.Options) (warning string, err error) {
	if s.DeleteSet || opts.NoDelete {
		return "", nil
	}
	err = imaging.CheckImageDest(dest, s.StateDir)
	switch {
	case errors.Is(err, imaging.ErrNotImage) && s.DryRun:
		return fmt.Sprintf("%v; the real pull needs --delete", err), nil
	case errors.Is(err, imaging.ErrNotImage):
		return "", fmt.Errorf("%w; give --delete to mirror into it (as rsync --delete), or pull into an empty or new directory", err)
	}
	return "", err
}
