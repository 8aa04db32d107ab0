package snapshot

import (
	"fmt"
	"io"
	"os"

	"github.com/goldsync/goldsync/internal/units"
)

// CheckImage checks that imageRoot is a directory a build can copy from,
// before anything is written (LoadLists may write the default files
// list). A missing image wraps fs.ErrNotExist.
func CheckImage(imageRoot string) error {
	fi, err := os.Stat(imageRoot)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("image %s: not a directory", imageRoot)
	}
	return nil
}

// WriteSummary writes the text summary of a build to w: one line saying
// what was built from where and how long it took, then the totals; with
// perNode, a line per node between them. Notices, conflicts and problems
// are the caller's to report (they are in the result).
func (r *BuildResult) WriteSummary(w io.Writer, imageRoot, snapshotDir string, perNode bool) error {
	ew := &errWriter{w: w}
	verb := "built"
	if r.DryRun {
		verb = "dry run of"
	}
	ew.printf("goldsync: %s %d snapshots in %s from %s in %.2fs (%d image entries each)\n",
		verb, len(r.Nodes), snapshotDir, imageRoot, r.Duration.Seconds(), r.ImageEntries)
	if perNode {
		for _, n := range r.Nodes {
			ew.printf("  %s: created %d, updated %d, kept %d, conflicts %d, failed %d, identity files %d\n",
				n.Node, n.Created, n.Updated, n.Kept, n.Conflicts, n.Failed, n.Identity)
		}
	}
	t := r.Totals
	ew.printf("  created %d, updated %d, kept node changes %d, conflicts %d, listed paths not in the image %d, failed %d, copied %s\n",
		t.Created, t.Updated, t.Kept, t.Conflicts, t.SkippedMissing, t.Failed, units.Bytes(t.Bytes))
	if t.Identity > 0 {
		what := "created"
		if r.DryRun {
			what = "to create"
		}
		ew.printf("  identity files %s %d (hostname, machine-id, fstab, ssh host keys)\n", what, t.Identity)
	}
	return ew.err
}

// WriteTrouble writes, one a line with the given prefix, what went wrong
// or needs the admin's eye in a build: its conflicts, the paths not
// applied and the nodes that failed.
func (r *BuildResult) WriteTrouble(w io.Writer, prefix string) error {
	ew := &errWriter{w: w}
	for _, c := range r.Conflicts {
		ew.printf("%sconflict: %s %s: %s\n", prefix, c.Node, c.Path, c.Why)
	}
	for _, p := range r.Problems {
		ew.printf("%snot applied: %s\n", prefix, p)
	}
	for _, n := range r.Nodes {
		if n.Error != "" {
			ew.printf("%s%s: %s\n", prefix, n.Node, n.Error)
		}
	}
	return ew.err
}

// errWriter keeps the first write error of a report.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

// BuildReport is a build's result as goldsync's --json prints it: where
// from and to, whether it ended ok, and the result's fields.
type BuildReport struct {
	Image       string  `json:"image"`
	SnapshotDir string  `json:"snapshot_dir"`
	OK          bool    `json:"ok"`
	Error       string  `json:"error,omitempty"`
	Seconds     float64 `json:"seconds"`
	*BuildResult
}

// Report is r as a BuildReport of a build from imageRoot into
// snapshotDir that ended with runErr.
func (r *BuildResult) Report(imageRoot, snapshotDir string, runErr error) BuildReport {
	rep := BuildReport{Image: imageRoot, SnapshotDir: snapshotDir, OK: runErr == nil, Seconds: r.Duration.Seconds(), BuildResult: r}
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	return rep
}
