package cluster

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/goldsync/goldsync/internal/units"
)

// WriteStatus writes reports as goldsync status prints them: a table, a
// row an image (its last sync and age, result, last changes, snapshots
// behind, generations), then each image's snapshot conflicts, last error,
// replicas, note and warnings, a line each. Ages are counted to now.
func WriteStatus(w io.Writer, reports []StatusReport, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tLAST SYNC\tAGE\tRESULT\tLAST CHANGES\tSNAPSHOTS\tGENERATIONS")
	for _, r := range reports {
		gens := fmt.Sprintf("%d, %s", r.Generations, units.Bytes(r.GenerationBytes))
		if !r.Synced {
			fmt.Fprintf(tw, "%s\tnever\t-\tnever synced\t-\t%s\t%s\n", r.Image, snapshotsCell(r), gens)
			continue
		}
		res := r.Result
		if r.Stale {
			res += " (stale)"
		}
		if r.RunningPID > 0 {
			res += fmt.Sprintf(" (running now: pid %d)", r.RunningPID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Image, r.LastSync.Local().Format("2006-01-02 15:04:05"),
			units.Age(time.Duration(r.AgeSeconds*float64(time.Second))), res, changesCell(r.Changes), snapshotsCell(r), gens)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var err error
	printf := func(format string, a ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, a...)
		}
	}
	for _, r := range reports {
		for _, c := range r.Conflicts {
			printf("%s: snapshot conflict (the node's version is kept): %s\n", r.Image, c)
		}
		if n := r.Changes.SnapshotConflicts - len(r.Conflicts); n > 0 {
			printf("%s: and %d more snapshot conflicts\n", r.Image, n)
		}
		switch {
		case r.Error != "":
			printf("%s: last error: %s\n", r.Image, firstLine(r.Error))
		case r.LastError != "":
			printf("%s: last error (%s, %s ago): %s\n", r.Image, r.LastFailure.Local().Format("2006-01-02 15:04:05"),
				units.Age(now.Sub(r.LastFailure)), firstLine(r.LastError))
		}
		for _, rs := range r.Replicas {
			printf("%s: %s\n", r.Image, replicaLine(rs))
		}
		if r.Note != "" {
			printf("%s: %s\n", r.Image, r.Note)
		}
		for _, wn := range r.Warnings {
			printf("%s: warning: %s\n", r.Image, wn.Message)
		}
	}
	return err
}

// replicaLine is a replica's status: its generation, lag and health.
func replicaLine(rs ReplicaStatus) string {
	s := fmt.Sprintf("replica %s (%s): generation %d", rs.Replica, rs.Address, rs.Generation)
	if rs.Behind > 0 {
		s += fmt.Sprintf(", %d behind for %s", rs.Behind, units.Age(time.Duration(rs.LagSeconds*float64(time.Second))))
	} else if rs.Generation > 0 {
		s += ", up to date"
	}
	if rs.Down {
		s += "; down: its nodes boot from the primary"
	}
	if rs.LastResult != "" && rs.LastResult != ResultOK && rs.LastError != "" {
		s += "; last error: " + firstLine(rs.LastError)
	}
	return s
}

func snapshotsCell(r StatusReport) string {
	if r.Nodes == 0 {
		return "no nodes"
	}
	s := fmt.Sprintf("%d nodes, %d behind", r.Nodes, r.SnapshotsBehind)
	if r.SnapshotsBehind > 0 && r.SnapshotsBehind <= 5 {
		s += " (" + strings.Join(r.Behind, " ") + ")"
	}
	if c := r.Changes.SnapshotConflicts; c > 0 {
		s += fmt.Sprintf(", %d conflicts", c)
	}
	return s
}

func changesCell(c Changes) string {
	s := fmt.Sprintf("+%d ~%d -%d", c.Created, c.Updated, c.Deleted)
	if c.MetaOnly > 0 {
		s += fmt.Sprintf(" meta %d", c.MetaOnly)
	}
	s += ", " + units.Bytes(c.BytesReceived)
	if c.NotApplied > 0 {
		s += fmt.Sprintf(", %d not applied", c.NotApplied)
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
