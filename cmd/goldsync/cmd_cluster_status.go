package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exposure"
	"github.com/goldsync/goldsync/snapshot"
)

// statusName is the status record `goldsync sync` leaves in an image's
// state dir after each run.
const statusName = "status.json"

// imageStatus is the status record of an image: the last run, and what
// "snapshots behind" is computed from.
type imageStatus struct {
	Image    string    `json:"image"`
	Source   string    `json:"source"`
	Root     string    `json:"root"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Result is ok, partial or failed.
	Result   string `json:"result"`
	Error    string `json:"error,omitempty"`
	ExitCode int    `json:"exit_code"`
	// Changes are the last run's counts.
	Changes statusChanges `json:"changes"`
	// ImageChanged is when a sync last changed the image (this run or an
	// earlier one); LastSuccess when a run last ended ok.
	ImageChanged time.Time `json:"image_changed,omitzero"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
	// Snapshots maps each node to when a sync last built its snapshot
	// completely.
	Snapshots map[string]time.Time `json:"snapshots,omitempty"`
}

type statusChanges struct {
	Entries           int   `json:"entries"`
	Created           int   `json:"created"`
	Updated           int   `json:"updated"`
	MetaOnly          int   `json:"metadata_only"`
	Linked            int   `json:"hard_links"`
	Deleted           int   `json:"deleted"`
	BytesReceived     int64 `json:"bytes_received"`
	NotApplied        int   `json:"not_applied"`
	SnapshotCreated   int   `json:"snapshot_created"`
	SnapshotUpdated   int   `json:"snapshot_updated"`
	SnapshotConflicts int   `json:"snapshot_conflicts"`
	BootFiles         int   `json:"nodes_boot_files"`
}

func statusPath(stateDir string) string { return filepath.Join(stateDir, statusName) }

// loadStatus reads an image's status record; none gives a nil record.
func loadStatus(stateDir string) (*imageStatus, error) {
	data, err := os.ReadFile(statusPath(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st imageStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statusPath(stateDir), err)
	}
	return &st, nil
}

// saveStatus records a run in the image's state dir, atomically (temp
// file, fsync, rename), carrying over what earlier runs knew.
func saveStatus(img *config.Image, r *syncReport, start time.Time) error {
	prev, err := loadStatus(img.StateDir)
	if err != nil || prev == nil {
		prev = &imageStatus{}
	}
	now := time.Now().UTC()
	st := &imageStatus{
		Image: img.Name, Source: img.Source, Root: img.Root,
		Started: start.UTC(), Finished: now, Result: r.Result, Error: r.Error, ExitCode: r.ExitCode,
		ImageChanged: prev.ImageChanged, LastSuccess: prev.LastSuccess, Snapshots: prev.Snapshots,
	}
	if st.Result == "" {
		st.Result = "failed"
	}
	if s := r.Pull; s != nil {
		st.Changes = statusChanges{Entries: s.Entries, Created: s.Created, Updated: s.Updated, MetaOnly: s.MetaOnly,
			Linked: s.Linked, Deleted: s.Deleted, BytesReceived: s.BytesReceived, NotApplied: len(s.Problems)}
	}
	for _, sn := range r.Snapshots {
		st.Changes.SnapshotCreated += sn.Totals.Created
		st.Changes.SnapshotUpdated += sn.Totals.Updated
		st.Changes.SnapshotConflicts += sn.Conflicts
	}
	for _, n := range r.Netboot {
		if n.Error == "" {
			st.Changes.BootFiles += n.Nodes
		}
	}
	if r.changed {
		// When the pull ended, before the snapshots were built.
		st.ImageChanged = start.UTC().Add(time.Duration(r.Pull.Seconds * float64(time.Second)))
	}
	if st.Result == "ok" {
		st.LastSuccess = now
	}
	if len(r.built) > 0 && st.Snapshots == nil {
		st.Snapshots = map[string]time.Time{}
	}
	for n, t := range r.built {
		st.Snapshots[n] = t.UTC()
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(statusPath(img.StateDir), append(data, '\n'), 0o644)
}

// writeFileAtomic writes a file through a temp file in the same directory,
// synced, then renamed over the name.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// ---- status --------------------------------------------------------------

func newStatusCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status [IMAGE]...",
		Short: "show each image's last sync and how many node snapshots are behind it",
		Long: `Status reads the status record "goldsync sync" leaves in each image's state
dir and prints, per image: when it was last synced and how long ago, the
result (ok, partial, failed), what the last run changed (+created ~updated
-deleted, metadata-only changes, bytes received), and how many of the
image's nodes have a snapshot older than the image's last change (or none):
"behind". A sync running now is shown with its PID.

A node counts as current when goldsync sync built its snapshot after the
image last changed, or when its snapshot record (written by any build) is
newer than that.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(g, args)
		},
	}
}

// statusReport is one image's line of status, and its --json form.
type statusReport struct {
	Image           string        `json:"image"`
	Root            string        `json:"root"`
	StateDir        string        `json:"state_dir"`
	Synced          bool          `json:"synced"`
	LastSync        time.Time     `json:"last_sync,omitzero"`
	AgeSeconds      float64       `json:"age_seconds,omitempty"`
	Result          string        `json:"result,omitempty"`
	Error           string        `json:"error,omitempty"`
	ImageChanged    time.Time     `json:"image_changed,omitzero"`
	LastSuccess     time.Time     `json:"last_success,omitzero"`
	Changes         statusChanges `json:"changes"`
	Nodes           int           `json:"nodes"`
	SnapshotsBehind int           `json:"snapshots_behind"`
	Behind          []string      `json:"behind_nodes,omitempty"`
	RunningPID      int           `json:"running_pid,omitempty"`
	Note            string        `json:"note,omitempty"`
	Generations     int           `json:"generations"`
	GenerationBytes int64         `json:"generation_bytes"`
	// Warnings: the image or a snapshot dir exposes setuid binaries or
	// device nodes to this server's local users.
	Warnings []exposure.Warning `json:"exposure_warnings,omitempty"`
}

func runStatus(g *globalFlags, names []string) error {
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	images, err := selectImages(cfg, names)
	if err != nil {
		return err
	}
	var byOS map[string][]snapshot.Node
	nodesNote := ""
	if len(cfg.OS) > 0 {
		byOS, _, err = clusterNodes(cfg)
		if err != nil {
			nodesNote = "nodes file unreadable: " + err.Error()
		}
	}
	now := time.Now()
	var reports []statusReport
	for _, img := range images {
		reports = append(reports, imageStatusReport(cfg, img, byOS, nodesNote, now))
	}
	if g.jsonOut {
		return printJSON(reports)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tLAST SYNC\tAGE\tRESULT\tLAST CHANGES\tSNAPSHOTS\tGENERATIONS")
	for _, r := range reports {
		gens := fmt.Sprintf("%d, %s", r.Generations, human(r.GenerationBytes))
		if !r.Synced {
			fmt.Fprintf(tw, "%s\tnever\t-\t-\t-\t%s\t%s\n", r.Image, snapshotsCell(r), gens)
			continue
		}
		res := r.Result
		if r.RunningPID > 0 {
			res += fmt.Sprintf(" (running now: pid %d)", r.RunningPID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Image, r.LastSync.Local().Format("2006-01-02 15:04:05"),
			age(time.Duration(r.AgeSeconds*float64(time.Second))), res, changesCell(r.Changes), snapshotsCell(r), gens)
	}
	tw.Flush()
	for _, r := range reports {
		if r.Error != "" {
			printf("%s: last error: %s\n", r.Image, firstLine(r.Error))
		}
		if r.Note != "" {
			printf("%s: %s\n", r.Image, r.Note)
		}
		for _, w := range r.Warnings {
			printf("%s: warning: %s\n", r.Image, w.Message)
		}
	}
	return nil
}

func imageStatusReport(cfg *config.Config, img *config.Image, byOS map[string][]snapshot.Node, nodesNote string, now time.Time) statusReport {
	r := statusReport{Image: img.Name, Root: img.Root, StateDir: img.StateDir, Note: nodesNote}
	for _, lock := range []string{filepath.Join(img.StateDir, runLockName), imaging.State(img.StateDir).Lock} {
		if h, ok := lockHolder(lock); ok {
			r.RunningPID = h.PID
			break
		}
	}
	st, err := loadStatus(img.StateDir)
	if err != nil {
		r.Note = "status record unreadable: " + err.Error()
	}
	if st != nil {
		r.Synced = true
		r.LastSync = st.Finished
		r.AgeSeconds = now.Sub(st.Finished).Seconds()
		r.Result, r.Error = st.Result, st.Error
		r.ImageChanged, r.LastSuccess, r.Changes = st.ImageChanged, st.LastSuccess, st.Changes
	}
	for _, o := range cfg.OSOf(img.Name) {
		for _, n := range byOS[o.Name] {
			r.Nodes++
			var built time.Time
			if st != nil {
				built = st.Snapshots[n.Host]
			}
			if fi, err := os.Stat(snapshot.RecordPath(snapshot.DefaultStateDir(o.SnapshotDir), n.Host)); err == nil && fi.ModTime().After(built) {
				built = fi.ModTime()
			}
			if built.IsZero() || (st != nil && built.Before(st.ImageChanged)) {
				r.Behind = append(r.Behind, n.Host)
			}
		}
	}
	slices.Sort(r.Behind)
	r.SnapshotsBehind = len(r.Behind)
	r.Generations, r.GenerationBytes, _ = imaging.GenerationsSize(img.StateDir)
	dirs := []string{img.Root}
	for _, o := range cfg.OSOf(img.Name) {
		dirs = append(dirs, o.SnapshotDir)
	}
	if ws := exposureWarnings(dirs...); len(ws) > 0 {
		r.Warnings = ws
	}
	return r
}

func snapshotsCell(r statusReport) string {
	if r.Nodes == 0 {
		return "no nodes"
	}
	s := fmt.Sprintf("%d nodes, %d behind", r.Nodes, r.SnapshotsBehind)
	if r.SnapshotsBehind > 0 && r.SnapshotsBehind <= 5 {
		s += " (" + strings.Join(r.Behind, " ") + ")"
	}
	return s
}

func changesCell(c statusChanges) string {
	s := fmt.Sprintf("+%d ~%d -%d", c.Created, c.Updated, c.Deleted)
	if c.MetaOnly > 0 {
		s += fmt.Sprintf(" meta %d", c.MetaOnly)
	}
	s += ", " + human(c.BytesReceived)
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
