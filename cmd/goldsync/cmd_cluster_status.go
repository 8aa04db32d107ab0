package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/units"
)

func newStatusCmd(g *globalFlags) *cobra.Command {
	var maxAge time.Duration
	cmd := &cobra.Command{
		Use:   "status [IMAGE]...",
		Short: "show each image's last sync and how many node snapshots are behind it",
		RunE: func(cmd *cobra.Command, args []string) error {
			return jsonFailure(g, cmd.Context(), runStatus(cmd.Context(), g, args, maxAge))
		},
	}
	cmd.Flags().DurationVar(&maxAge, "max-age", 0, "exit 30 when an image's last sync finished longer ago than `DURATION` (or never); 0: no limit")
	return cmd
}

func runStatus(ctx context.Context, g *globalFlags, names []string, maxAge time.Duration) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	reports, err := cluster.Status(cfg, cluster.StatusOptions{Images: names, MaxAge: maxAge})
	if err != nil {
		return exitcode.ClusterErr(ctx, err)
	}
	if g.jsonOut {
		if err := printJSON(reports); err != nil {
			return err
		}
	} else {
		printStatus(reports)
	}
	return statusVerdict(g, reports, maxAge)
}

// statusVerdict is status's exit: the code of the first image whose last
// run did not end ok, else exitcode.Timeout for a stale one.
func statusVerdict(g *globalFlags, reports []cluster.StatusReport, maxAge time.Duration) error {
	silent := g.jsonOut // the JSON said it
	var stale []string
	for _, r := range reports {
		if r.Synced && r.Result != cluster.ResultOK {
			code := r.ExitCode
			if code == 0 {
				code = exitcode.Partial
				if r.Result == cluster.ResultFailed {
					code = exitcode.IO
				}
			}
			return &exitcode.Error{Code: code, Err: fmt.Errorf("image %s: last run %s: %s", r.Image, r.Result, firstLine(r.Error)), Silent: silent}
		}
		if r.Stale {
			stale = append(stale, r.Image)
		}
	}
	if len(stale) > 0 {
		return &exitcode.Error{Code: exitcode.Timeout, Err: fmt.Errorf("no sync ended in the last %v: %s", maxAge, strings.Join(stale, ", ")), Silent: silent}
	}
	return nil
}

func printStatus(reports []cluster.StatusReport) {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tLAST SYNC\tAGE\tRESULT\tLAST CHANGES\tSNAPSHOTS\tGENERATIONS")
	for _, r := range reports {
		gens := fmt.Sprintf("%d, %s", r.Generations, units.Bytes(r.GenerationBytes))
		if !r.Synced {
			fmt.Fprintf(tw, "%s\tnever\t-\t-\t-\t%s\t%s\n", r.Image, snapshotsCell(r), gens)
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
			age(time.Duration(r.AgeSeconds*float64(time.Second))), res, changesCell(r.Changes), snapshotsCell(r), gens)
	}
	tw.Flush()
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
				age(time.Since(r.LastFailure)), firstLine(r.LastError))
		}
		for _, rs := range r.Replicas {
			printf("%s: %s\n", r.Image, replicaLine(rs))
		}
		if r.Note != "" {
			printf("%s: %s\n", r.Image, r.Note)
		}
		for _, w := range r.Warnings {
			printf("%s: warning: %s\n", r.Image, w.Message)
		}
	}
}

// replicaLine is a replica's status: its generation, lag and health.
func replicaLine(rs cluster.ReplicaStatus) string {
	s := fmt.Sprintf("replica %s (%s): generation %d", rs.Replica, rs.Address, rs.Generation)
	if rs.Behind > 0 {
		s += fmt.Sprintf(", %d behind for %s", rs.Behind, age(time.Duration(rs.LagSeconds*float64(time.Second))))
	} else if rs.Generation > 0 {
		s += ", up to date"
	}
	if rs.Down {
		s += "; down: its nodes boot from the primary"
	}
	if rs.LastResult != "" && rs.LastResult != cluster.ResultOK && rs.LastError != "" {
		s += "; last error: " + firstLine(rs.LastError)
	}
	return s
}

func snapshotsCell(r cluster.StatusReport) string {
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

func changesCell(c cluster.Changes) string {
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

// age formats a duration for a human: 45s, 12m, 5h3m, 3d4h.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
