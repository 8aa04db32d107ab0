package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exposure"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/snapshot"
)

// StatusName is the status record Run leaves in an image's state dir
// after each run.
const StatusName = "status.json"

// maxConflicts bounds the snapshot conflicts a status record lists.
const maxConflicts = 20

// Record is the status record of an image: the last run, and what
// "snapshots behind" is computed from.
type Record struct {
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
	Changes Changes `json:"changes"`
	// Conflicts are the last run's snapshot conflicts ("node: path: why"),
	// at most 20.
	Conflicts []string `json:"conflicts,omitempty"`
	// ImageChanged is when a sync last changed the image (this run or an
	// earlier one); LastSuccess when a run last ended ok.
	ImageChanged time.Time `json:"image_changed,omitzero"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
	// LastError and LastFailure are the error and end of the last run
	// that did not end ok (this one or an earlier one).
	LastError   string    `json:"last_error,omitempty"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// Snapshots maps each node to when a sync last built its snapshot
	// completely.
	Snapshots map[string]time.Time `json:"snapshots,omitempty"`
	// Replicas maps each replica to the generation of the image it held
	// after the last run that tried it (0: none); the details are in
	// LoadReplicaState.
	Replicas map[string]int64 `json:"replica_generations,omitempty"`
}

// Changes are the counts of a run.
type Changes struct {
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

func statusPath(stateDir string) string { return filepath.Join(stateDir, StatusName) }

// LoadRecord reads an image's status record; none gives a nil record.
func LoadRecord(stateDir string) (*Record, error) {
	data, err := os.ReadFile(statusPath(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st Record
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statusPath(stateDir), err)
	}
	return &st, nil
}

// saveRecord records a run in the image's state dir, atomically, carrying
// over what earlier runs knew.
func saveRecord(img *config.Image, r *ImageReport, start, now time.Time) (*Record, error) {
	prev, err := LoadRecord(img.StateDir)
	if err != nil || prev == nil {
		prev = &Record{}
	}
	now = now.UTC()
	st := &Record{
		Image: img.Name, Source: img.Source, Root: img.Root,
		Started: start.UTC(), Finished: now, Result: r.Result, Error: r.Error, ExitCode: r.ExitCode,
		ImageChanged: prev.ImageChanged, LastSuccess: prev.LastSuccess, Snapshots: prev.Snapshots,
		LastError: prev.LastError, LastFailure: prev.LastFailure, Replicas: prev.Replicas,
	}
	for _, rr := range r.Replicas {
		if st.Replicas == nil {
			st.Replicas = map[string]int64{}
		}
		st.Replicas[rr.Replica] = rr.Generation
	}
	if st.Result == "" {
		st.Result = "failed"
	}
	if s := r.Pull; s != nil {
		st.Changes = Changes{Entries: s.Entries, Created: s.Created, Updated: s.Updated, MetaOnly: s.MetaOnly,
			Linked: s.Linked, Deleted: s.Deleted, BytesReceived: s.BytesReceived, NotApplied: len(s.Problems)}
	}
	for _, sn := range r.Snapshots {
		st.Changes.SnapshotCreated += sn.Totals.Created
		st.Changes.SnapshotUpdated += sn.Totals.Updated
		st.Changes.SnapshotConflicts += sn.Conflicts
		for _, c := range sn.ConflictList {
			if len(st.Conflicts) < maxConflicts {
				st.Conflicts = append(st.Conflicts, c)
			}
		}
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
	} else {
		st.LastError, st.LastFailure = st.Error, now
	}
	if len(r.built) > 0 && st.Snapshots == nil {
		st.Snapshots = map[string]time.Time{}
	}
	for n, t := range r.built {
		st.Snapshots[n] = t.UTC()
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return st, fsx.WritePathAtomic(statusPath(img.StateDir), append(data, '\n'), 0o644)
}

// StatusReport is one image's status: its last run, and how many node
// snapshots are behind it.
type StatusReport struct {
	Image      string    `json:"image"`
	Root       string    `json:"root"`
	StateDir   string    `json:"state_dir"`
	Synced     bool      `json:"synced"`
	LastSync   time.Time `json:"last_sync,omitzero"`
	AgeSeconds float64   `json:"age_seconds,omitempty"`
	Result     string    `json:"result,omitempty"`
	Error      string    `json:"error,omitempty"`
	ExitCode   int       `json:"exit_code,omitempty"`
	// LastError is the error of the last run that did not end ok, and
	// LastFailure when it ended, even when later runs succeeded.
	LastError    string    `json:"last_error,omitempty"`
	LastFailure  time.Time `json:"last_failure,omitzero"`
	ImageChanged time.Time `json:"image_changed,omitzero"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
	Changes      Changes   `json:"changes"`
	// Conflicts are the last run's snapshot conflicts (at most 20).
	Conflicts       []string `json:"conflicts,omitempty"`
	Nodes           int      `json:"nodes"`
	SnapshotsBehind int      `json:"snapshots_behind"`
	Behind          []string `json:"behind_nodes,omitempty"`
	RunningPID      int      `json:"running_pid,omitempty"`
	Note            string   `json:"note,omitempty"`
	Generations     int      `json:"generations"`
	GenerationBytes int64    `json:"generation_bytes"`
	// Warnings: the image or a snapshot dir exposes setuid binaries or
	// device nodes to this server's local users.
	Warnings []exposure.Warning `json:"exposure_warnings,omitempty"`
	// Stale is set by Status when the last sync is older than MaxAge, or
	// there was none.
	Stale bool `json:"stale,omitempty"`
	// Generation is the image's newest generation (0: none); Replicas
	// says where each of its replicas stands.
	Generation int64           `json:"generation,omitempty"`
	Replicas   []ReplicaStatus `json:"replicas,omitempty"`
}

// ReplicaStatus is one replica of an image in a StatusReport.
type ReplicaStatus struct {
	Replica string `json:"replica"`
	Address string `json:"address"`
	// Generation is the primary's generation the replica holds (0: none).
	Generation int64 `json:"generation"`
	// Behind counts the primary's generations the replica lacks, and
	// LagSeconds how long it has lacked the oldest of them (zero when it
	// is up to date).
	Behind     int     `json:"generations_behind"`
	LagSeconds float64 `json:"lag_seconds"`
	// Down: its nodes boot from the primary (see ReplicaState.Down).
	Down        bool      `json:"down"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastResult  string    `json:"last_result,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// Via is the replica that fed it last (tree fan-out), empty for the
	// primary.
	Via string `json:"via,omitempty"`
}

// Healthy reports whether the image's last run ended ok and is not stale.
func (r StatusReport) Healthy() bool { return r.Synced && r.Result == "ok" && !r.Stale }

// StatusOptions configure Status.
type StatusOptions struct {
	// Images are the images to report, by name or root directory
	// (ImageNames); none means all.
	Images []string
	// MaxAge marks an image Stale when its last sync finished longer ago
	// than this, or never happened; zero does not.
	MaxAge time.Duration
	// Now is the time ages are measured at; zero means time.Now().
	Now time.Time
}

// Status reads the status records of the images and reports each one. A
// nodes file that cannot be read is a note on every image, not an error;
// errors are StepConfig ones (an unknown image) and ImageNames' (a
// directory of no image).
func Status(cfg *config.Config, o StatusOptions) ([]StatusReport, error) {
	names, err := ImageNames(cfg, o.Images)
	if err != nil {
		return nil, err
	}
	images, err := SelectImages(cfg, names)
	if err != nil {
		return nil, err
	}
	var byOS map[string][]snapshot.Node
	nodesNote := ""
	if len(cfg.OS) > 0 {
		byOS, _, err = Nodes(cfg)
		if err != nil {
			nodesNote = "nodes file unreadable: " + err.Error()
		}
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	var reports []StatusReport
	for _, img := range images {
		r := imageStatus(cfg, img, byOS, nodesNote, now)
		r.Stale = o.MaxAge > 0 && (!r.Synced || now.Sub(r.LastSync) > o.MaxAge)
		reports = append(reports, r)
	}
	return reports, nil
}

func imageStatus(cfg *config.Config, img *config.Image, byOS map[string][]snapshot.Node, nodesNote string, now time.Time) StatusReport {
	r := StatusReport{Image: img.Name, Root: img.Root, StateDir: img.StateDir, Note: nodesNote}
	for _, lock := range []string{filepath.Join(img.StateDir, RunLockName), imaging.State(img.StateDir).Lock} {
		if h, ok := LockHolder(lock); ok {
			r.RunningPID = h.PID
			break
		}
	}
	st, err := LoadRecord(img.StateDir)
	if err != nil {
		r.Note = "status record unreadable: " + err.Error()
	}
	if st != nil {
		r.Synced = true
		r.LastSync = st.Finished
		r.AgeSeconds = now.Sub(st.Finished).Seconds()
		r.Result, r.Error, r.ExitCode = st.Result, st.Error, st.ExitCode
		r.LastError, r.LastFailure = st.LastError, st.LastFailure
		r.ImageChanged, r.LastSuccess, r.Changes, r.Conflicts = st.ImageChanged, st.LastSuccess, st.Changes, st.Conflicts
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
	r.Generation, r.Replicas = replicaStatus(img, now)
	dirs := []string{img.Root}
	for _, o := range cfg.OSOf(img.Name) {
		dirs = append(dirs, o.SnapshotDir)
	}
	if ws := ExposureWarnings(dirs...); len(ws) > 0 {
		r.Warnings = ws
	}
	return r
}

// ExposureWarnings checks image and snapshot dirs for setuid binaries and
// device nodes a local user of this server could use (exposure.Check); a
// dir that cannot be checked gets a warning saying so.
func ExposureWarnings(dirs ...string) []exposure.Warning {
	out := []exposure.Warning{}
	seen := map[string]bool{}
	for _, d := range dirs {
		if d == "" || seen[d] {
			continue
		}
		seen[d] = true
		ws, err := exposure.Check(d)
		if err != nil {
			ws = []exposure.Warning{{Dir: d, Problem: "unchecked", Message: fmt.Sprintf("%s: cannot check its mount options: %v", d, err)}}
		}
		out = append(out, ws...)
	}
	return out
}

// replicaStatus reports each replica of img against the image's newest
// generation.
func replicaStatus(img *config.Image, now time.Time) (int64, []ReplicaStatus) {
	gens, _ := imaging.ListGenerations(img.StateDir)
	var newest int64
	if len(gens) > 0 {
		newest = gens[len(gens)-1].ID
	}
	var out []ReplicaStatus
	for _, rep := range img.Replicas {
		rs := ReplicaStatus{Replica: rep.Name, Address: rep.Address, Down: true}
		st, err := LoadReplicaState(img.StateDir, rep.Name)
		if err != nil {
			rs.LastError = err.Error()
		}
		if st != nil {
			rs.Generation, rs.Down = st.Generation, st.Down()
			rs.LastAttempt, rs.LastResult, rs.LastSuccess, rs.Via = st.LastAttempt, st.LastResult, st.LastSuccess, st.Via
			if rs.LastError == "" {
				rs.LastError = st.LastError
			}
		}
		// Behind: the generations after the replica's; the lag runs from
		// the first of them.
		for _, g := range gens {
			if g.ID > rs.Generation {
				if rs.Behind == 0 {
					rs.LagSeconds = now.Sub(g.Time).Seconds()
				}
				rs.Behind++
			}
		}
		if rs.Behind == 0 && newest > rs.Generation {
			rs.Behind = int(newest - rs.Generation) // pruned in between
		}
		out = append(out, rs)
	}
	return newest, out
}
