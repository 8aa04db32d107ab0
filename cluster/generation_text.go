package cluster

import (
	"fmt"
	"io"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/units"
)

// WriteGenerations writes an image's generations as goldsync generations
// prints them: the image's root, a header, and a row a generation (id,
// age counted to now, objects created, updated, changed in metadata only
// and deleted, the kept content it holds, pinned, and its source with the
// kernel each OS entry booted).
func WriteGenerations(w io.Writer, root string, gens []imaging.Generation, now time.Time) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	p("%s\n", root)
	p("%6s  %-8s  %7s %7s %7s %7s  %10s  %-3s  %s\n", "GEN", "AGE", "+", "~", "M", "-", "HELD", "PIN", "SOURCE")
	for _, gen := range gens {
		pin := ""
		if gen.Pinned {
			pin = "yes"
		}
		src := gen.Source
		for _, b := range gen.Boot {
			src += fmt.Sprintf(" [%s boots %s]", b.OS, b.Kernel)
		}
		p("%6d  %-8s  %7d %7d %7d %7d  %10s  %-3s  %s\n", gen.ID, units.Age(now.Sub(gen.Time)),
			gen.Created, gen.Updated, gen.MetaOnly, gen.Deleted, units.Bytes(gen.Held+gen.ManifestBytes), pin, src)
	}
	return err
}

// WriteRollbackSummary writes the line goldsync rollback ends with: what
// a rollback of root to generation gen would change (dryRun) or did,
// and the generation it was recorded as. runErr is the rollback's error:
// a rollback that failed "stopped rolling back".
func WriteRollbackSummary(w io.Writer, root string, gen int64, dryRun bool, res *imaging.Result, runErr error) error {
	var line string
	if dryRun {
		n, bytes := 0, int64(0)
		if res.Plan != nil {
			n, bytes = res.Plan.Len(), res.Plan.FetchBytes
		}
		line = fmt.Sprintf("goldsync rollback: would roll back %s to generation %d: %d changes, %s to restore from kept content",
			root, gen, n, units.Bytes(bytes))
	} else {
		what := "rolled back"
		if runErr != nil {
			what = "stopped rolling back"
		}
		line = fmt.Sprintf("goldsync rollback: %s %s to generation %d: %d created, %d updated, %d metadata only, %d deleted, %s restored, %.3fs",
			what, root, gen, res.Created, res.Updated, res.MetaOnly, res.Deleted, units.Bytes(res.BytesReceived+res.BytesCopied), res.Duration.Seconds())
	}
	if res.Generation != 0 {
		line += fmt.Sprintf("; recorded as generation %d", res.Generation)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
