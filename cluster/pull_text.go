package cluster

import (
	"fmt"
	"io"

	"github.com/goldsync/goldsync/imaging/wire"
)

// PullReport says where and how much of a pull's summary a command
// prints (WriteReport).
type PullReport struct {
	// Out gets the summary; Err the warnings, the paths not applied and
	// the one-line summary after a progress line.
	Out, Err io.Writer
	// Quiet prints only the warnings and problems.
	Quiet bool
	// Full prints the whole summary on Out (--stats, -v, a dry run: after
	// the itemized lines, on the same stream, as rsync).
	Full bool
	// ProgressShown prints one line on Err saying how it ended, after a
	// progress line that cleared itself.
	ProgressShown bool
	// KeptDeletes warns that nothing was deleted (rsync's --max-delete=0).
	KeptDeletes bool
}

// WriteReport writes s as goldsync pull reports it: the warning of
// KeptDeletes and each path not applied (made inert: a peer named them)
// on Err, then, unless Quiet, the summary on Out (Full) or its line on
// Err (ProgressShown).
func (s PullSummary) WriteReport(o PullReport) {
	if o.KeptDeletes && !o.Quiet {
		fmt.Fprintln(o.Err, "goldsync: warning: --max-delete=0: nothing deleted; entries the source no longer has are kept")
	}
	for _, p := range s.Problems {
		fmt.Fprintln(o.Err, "goldsync: not applied:", wire.InertLines(p))
	}
	switch {
	case o.Quiet:
	case o.Full:
		_ = s.WriteText(o.Out)
	case o.ProgressShown:
		fmt.Fprintln(o.Err, s.Line())
	}
}
