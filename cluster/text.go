package cluster

import (
	"fmt"
	"io"
	"strings"

	"github.com/goldsync/goldsync/internal/units"
)

// HasConflicts reports whether a node's snapshot kept changes of its own
// over the image's in this run.
func (r *ImageReport) HasConflicts() bool {
	for _, s := range r.Snapshots {
		if s.Conflicts > 0 {
			return true
		}
	}
	return false
}

// WriteText writes what a run did to the image, as goldsync sync prints
// it: a line with the result, then a line per step (pull, each OS's
// snapshots and netboot files, each replica) with their conflicts, problems, warnings
// and notes.
func (r *ImageReport) WriteText(w io.Writer) error {
	var err error
	p := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	verb := "sync of"
	if r.DryRun {
		verb = "dry run of"
	}
	if r.Rollback > 0 {
		verb = fmt.Sprintf("rollback to generation %d of", r.Rollback)
		if r.DryRun {
			verb = "dry run of " + verb
		}
	}
	p("goldsync: %s %s: %s in %.2fs\n", verb, r.Image, r.Result, r.Seconds)
	step, fetch, received := "pull", "to fetch", "received"
	if r.Rollback > 0 {
		step, fetch, received = "rollback", "to copy from the generation", "copied"
	}
	if s := r.Pull; s != nil && r.DryRun {
		// as goldsync pull -n says it: zero counts read as nothing to do
		p("  %s: entries %d; nothing changed (dry run): the changes are the itemized lines, %d of them deletes, at most %s of content %s\n",
			step, s.Entries, s.WouldDelete, units.Bytes(s.WouldFetch), fetch)
	} else if s != nil {
		p("  %s: entries %d, created %d, updated %d, metadata only %d, hard links %d, deleted %d (planned deletes %d), %s %s\n",
			step, s.Entries, s.Created, s.Updated, s.MetaOnly, s.Linked, s.Deleted, s.WouldDelete, received, units.Bytes(s.BytesReceived))
		for _, pr := range s.Problems {
			p("  not applied: %s\n", pr)
		}
	}
	for _, s := range r.Snapshots {
		t := s.Totals
		p("  snapshots of OS %s (%d nodes): created %d, updated %d, kept node changes %d, conflicts %d, failed %d\n",
			s.OS, s.Nodes, t.Created, t.Updated, t.Kept, s.Conflicts, t.Failed)
		for _, c := range s.ConflictList {
			p("    conflict (the node's version is kept): %s\n", c)
		}
		if len(s.Failed) > 0 {
			p("    nodes not fully built: %s\n", strings.Join(s.Failed, " "))
		}
	}
	for _, n := range r.Netboot {
		switch {
		case r.DryRun && n.Error == "" && n.Kernel != "":
			p("  netboot: would install OS %s's kernel %s and write the boot files of %d nodes\n", n.OS, n.Kernel, n.Nodes)
		case r.DryRun && n.Error == "":
			p("  netboot: would install OS %s's kernel and write the boot files of %d nodes\n", n.OS, n.Nodes)
		case n.Error == "":
			p("  netboot: OS %s, kernel %s, boot files of %d nodes\n", n.OS, n.Kernel, n.Nodes)
		}
		for _, w := range n.Warnings {
			p("  warning: %s\n", w)
		}
	}
	for _, l := range ReplicaLines(r.Replicas) {
		p("  %s\n", l)
	}
	for _, n := range r.Notes {
		p("  note: %s\n", n)
	}
	return err
}

// WriteText writes the summary of a pull as goldsync pull prints it with
// --stats, -v or -n: what was pulled where, the counts, the bytes.
func (s PullSummary) WriteText(w io.Writer) error {
	verb := "pulled"
	if s.DryRun {
		verb = "dry run of"
	}
	_, err := fmt.Fprintf(w, "goldsync: %s %s -> %s in %.2fs\n", verb, s.Source, s.Dest, s.Seconds)
	if err == nil && s.DryRun {
		// Nothing was done: the counts of what was done would all be
		// zero beside the itemized lines (a newcomer read them as wrong).
		_, err = fmt.Fprintf(w, "  entries %d; nothing changed (dry run): the changes are the itemized lines, %d of them deletes, at most %s of content to fetch\n",
			s.Entries, s.WouldDelete, units.Bytes(s.WouldFetch))
	} else if err == nil {
		// Not the plan's step count (JSON actions): a new directory is two
		// steps (made, then its metadata) and the total did not add up.
		_, err = fmt.Fprintf(w, "  entries %d: created %d, updated %d, metadata only %d, hard links %d, deleted %d (planned deletes %d)\n"+
			"  content received %s, reused from the old image %s, copied locally %s, verified unchanged %d\n",
			s.Entries, s.Created, s.Updated, s.MetaOnly, s.Linked, s.Deleted, s.WouldDelete,
			units.Bytes(s.BytesReceived), units.Bytes(s.BytesReused), units.Bytes(s.BytesCopied), s.Unchanged)
	}
	if err == nil && s.WireBytesIn > 0 {
		_, err = fmt.Fprintf(w, "  bytes on the wire: in %s, out %s\n", units.Bytes(s.WireBytesIn), units.Bytes(s.WireBytesOut))
	}
	return err
}

// Line is the one line that says how a pull ended, after a progress line
// that cleared itself.
func (s PullSummary) Line() string {
	state := "pulled"
	if !s.OK {
		state = "failed pull of"
	}
	return fmt.Sprintf("goldsync: %s %s -> %s in %.2fs: %d created, %d updated, %d metadata only, %d deleted, %s received",
		state, s.Source, s.Dest, s.Seconds, s.Created, s.Updated, s.MetaOnly, s.Deleted, units.Bytes(s.BytesReceived))
}

// ReplicaLines are the lines goldsync sync prints of its replicas'
// reports (unindented): one a replica, and for a failed one its error,
// indented, on the next.
func ReplicaLines(reports []*ReplicaReport) []string {
	var out []string
	for _, rr := range reports {
		how := "the changes only"
		if rr.Full {
			how = "full compare"
		}
		out = append(out, fmt.Sprintf("replica %s (%s): %s, generation %d, %d entries and %s sent (%s) in %.2fs",
			rr.Replica, rr.Address, rr.Result, rr.Generation, rr.Entries, units.Bytes(rr.Bytes), how, rr.Seconds))
		if rr.Error != "" {
			msg := rr.Error
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i] + " ..."
			}
			out = append(out, "  "+msg+"; its nodes boot from this server until an update reaches it")
		}
	}
	return out
}
