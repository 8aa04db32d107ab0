package cluster

import (
	"fmt"
	"io"

	"github.com/goldsync/goldsync/internal/units"
)

// Name is the image's name in the config, else its root.
func (r *VerifyReport) Name() string {
	if r.Image != "" {
		return r.Image
	}
	return r.Root
}

// WriteText writes the report as goldsync verify prints it: a line per
// drifted path ("KIND PATH  (detail)"), then, unless quiet, a line saying
// the image is clean or what drifted.
func (r *VerifyReport) WriteText(w io.Writer, quiet bool) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	for _, d := range r.Drift {
		line := fmt.Sprintf("%-9s %s", d.Kind, d.Path)
		if d.Detail != "" {
			line += "  (" + d.Detail + ")"
		}
		p("%s\n", line)
	}
	switch {
	case quiet:
	case r.Clean:
		p("goldsync: %s is clean: %d entries match the manifest (%s re-read)\n", r.Name(), r.Checked, units.Bytes(r.HashedBytes))
	default:
		p("goldsync: %s drifted: %s\n", r.Name(), CountsText(r.Counts))
	}
	return err
}
