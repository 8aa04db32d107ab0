package cluster

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/term"
	"github.com/goldsync/goldsync/snapshot"
)

// Console routes a run's output as goldsync sync shows it (Hooks fills
// Run's callbacks). Interactive (on a terminal, or asked with -v), it
// talks: each image's header and report, progress, notices, the
// libraries' warnings as they come. Under cron it says nothing about a
// run that went well: an image's report is written only when the image
// failed (then on Err) or has conflicts, and the warnings are held
// (Log) until the run is known to have failed (Flush). A dry run always
// shows its headers, reports and itemized changes; JSON leaves stdout to
// the report Run returns.
type Console struct {
	// Out gets the reports and itemized changes, Err the progress,
	// notices, warnings and, under cron, a failed image's report.
	Out io.Writer
	Err *os.File
	// Interactive talks; otherwise the console is cron's.
	Interactive bool
	// Quiet and JSON say nothing but errors (JSON: the caller prints the
	// run's report).
	Quiet, JSON bool
	// DryRun and Itemize are the run's: each change is shown when
	// Itemize, or in a dry run without JSON or Quiet.
	DryRun, Itemize bool

	held bytes.Buffer
	log  io.Writer
}

// talks says the console shows headers, reports, progress and notices.
func (c *Console) talks() bool { return c.Interactive && !c.Quiet && !c.JSON }

// Log is the writer of the run's logger: Err when Interactive, else a
// buffer Flush writes out.
func (c *Console) Log() io.Writer {
	if c.log == nil {
		c.log = c.Err
		if !c.Interactive {
			c.log = &term.LockedWriter{W: &c.held}
		}
	}
	return c.log
}

// Hooks fills the callbacks of o that show the run on the console.
func (c *Console) Hooks(o *Options) {
	talk := c.talks()
	o.ImageStart = func(img *config.Image) {
		if talk || (c.DryRun && !c.JSON && !c.Quiet) {
			from := img.Source
			if o.RollbackTo > 0 {
				from = fmt.Sprintf("its generation %d", o.RollbackTo)
			}
			fmt.Fprintf(c.Out, "== image %s: %s -> %s\n", img.Name, from, img.Root)
		}
	}
	o.ImageDone = func(r *ImageReport) {
		if !c.JSON && r.Result != ResultLocked && (talk || (c.DryRun && !c.Quiet) || r.Err != nil || r.HasConflicts()) {
			// A failure under cron goes to stderr.
			w := c.Out
			if r.Err != nil && !talk && !c.DryRun {
				w = c.Err
			}
			_ = r.WriteText(w)
		}
	}
	o.PullProgress = func(string) (func(imaging.Progress), func()) {
		prog := term.NewProgress(c.Err, false, !talk)
		return prog.Update, prog.Done
	}
	o.BuildProgress = func(string) (func(snapshot.BuildProgress), func()) {
		return BuildCounter(c.Err, talk && term.IsTerminal(c.Err))
	}
	o.Notice = func(msg string) {
		if talk {
			fmt.Fprintf(c.Err, "goldsync: notice: %s\n", msg)
		}
	}
	if c.Itemize || (c.DryRun && !c.JSON && !c.Quiet) {
		o.Itemize = func(ch imaging.Change) { fmt.Fprintf(c.Out, "%s\n", ch) }
		o.ItemizeSnapshot = func(node string, ch imaging.Change) { fmt.Fprintf(c.Out, "%s %s\n", node, ch) }
	}
}

// Flush writes the warnings held under cron to Err: for a run that
// failed.
func (c *Console) Flush() {
	if c.held.Len() > 0 {
		_, _ = c.Err.Write(c.held.Bytes())
		c.held.Reset()
	}
}

// BuildCounter draws "snapshot N/M nodes (E image entries)" on w when on
// (term.Counter): a snapshot build's progress callback and the function
// that ends the line.
func BuildCounter(w io.Writer, on bool) (update func(snapshot.BuildProgress), done func()) {
	c := term.NewCounter(w, on)
	return func(bp snapshot.BuildProgress) {
		c.Update(fmt.Sprintf("snapshot %d/%d nodes (%d image entries)", bp.NodesDone, bp.Nodes, bp.ImageEntries), bp.NodesDone == bp.Nodes)
	}, c.Done
}
