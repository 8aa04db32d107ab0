package cluster

import "github.com/goldsync/goldsync/imaging"

// PullSummary is what a pull did, as "goldsync pull --json" prints it.
type PullSummary struct {
	Source         string   `json:"source"`
	Dest           string   `json:"dest"`
	DryRun         bool     `json:"dry_run"`
	OK             bool     `json:"ok"`
	Error          string   `json:"error,omitempty"`
	Seconds        float64  `json:"seconds"`
	Entries        int      `json:"entries"`
	Actions        int      `json:"actions"`
	Created        int      `json:"created"`
	Updated        int      `json:"updated"`
	MetaOnly       int      `json:"metadata_only"`
	Linked         int      `json:"hard_links"`
	Deleted        int      `json:"deleted"`
	WouldDelete    int      `json:"planned_deletes"`
	WouldFetch     int64    `json:"planned_fetch_bytes"`
	Unchanged      int      `json:"verified_unchanged"`
	BytesReceived  int64    `json:"bytes_received"`
	BytesReused    int64    `json:"bytes_reused"`
	BytesCopied    int64    `json:"bytes_copied_locally"`
	WireBytesIn    int64    `json:"wire_bytes_in"`
	WireBytesOut   int64    `json:"wire_bytes_out"`
	SourceProblems int      `json:"source_problems"`
	Problems       []string `json:"problems,omitempty"`
	DeletesSkipped bool     `json:"deletes_skipped"`
}

// SummarizePull summarizes the result of a pull (imaging.Sync or
// imaging.Rollback) from src into dest; source, when it counts its wire
// bytes, adds them; err is the pull's error.
func SummarizePull(src, dest string, dryRun bool, res *imaging.Result, source imaging.Source, err error) PullSummary {
	s := PullSummary{Source: src, Dest: dest, DryRun: dryRun, OK: err == nil, Seconds: res.Duration.Seconds(),
		Entries: res.Entries, Created: res.Created, Updated: res.Updated, MetaOnly: res.MetaOnly,
		Linked: res.Linked, Deleted: res.Deleted, Unchanged: res.Unchanged, BytesReceived: res.BytesReceived,
		BytesReused: res.BytesReused, BytesCopied: res.BytesCopied, SourceProblems: res.SourceProblems,
		Problems: res.Problems, DeletesSkipped: res.DeletesSkipped}
	if res.Plan != nil {
		s.Actions = res.Plan.Len()
		s.WouldDelete = res.Plan.Deletes
		s.WouldFetch = res.Plan.FetchBytes
	}
	if err != nil {
		s.Error = err.Error()
	}
	if ws, ok := source.(interface{ WireBytes() (in, out int64) }); ok {
		s.WireBytesIn, s.WireBytesOut = ws.WireBytes()
	}
	return s
}
