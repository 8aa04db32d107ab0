package cluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
)

// ImageMetrics is one image's run, as WriteMetrics renders it.
type ImageMetrics struct {
	// Image labels the samples (image="...").
	Image string
	// Result is the run's result; nil leaves out the run's counts.
	Result *imaging.Result
	// Err is the run's error; nil is a success.
	Err error
	// LastSuccess is when a run of the image last succeeded, as its status
	// record says (this run's end for a success); zero means now for a
	// success and the value the file held before, if any, for a failure.
	LastSuccess time.Time
}

// WriteMetrics writes Prometheus text-format metrics of the runs into
// path for node_exporter's textfile collector, atomically (temp file,
// rename), each family once with its HELP and TYPE. A failed run keeps
// goldsync_last_success_timestamp_seconds of the image: LastSuccess, else
// the sample the file held.
func WriteMetrics(path string, runs []ImageMetrics, now time.Time) error {
	old := map[string]string{}
	if data, err := os.ReadFile(path); err == nil {
		old = lastSuccessSamples(data)
	}
	var parts [][]byte
	for _, r := range runs {
		parts = append(parts, imageMetrics(r, old, now))
	}
	return fsx.WritePathAtomic(path, mergeMetrics(parts), 0o644)
}

const lastSuccessName = "goldsync_last_success_timestamp_seconds"

// lastSuccessSamples maps the image label of each last-success sample of a
// metrics file to its value.
func lastSuccessSamples(data []byte) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(string(data)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), lastSuccessName+"{image=")
		if !ok {
			continue
		}
		i := strings.LastIndex(rest, "} ")
		if i < 0 {
			continue
		}
		if img, err := strconv.Unquote(rest[:i]); err == nil {
			out[img] = strings.TrimSpace(rest[i+2:])
		}
	}
	return out
}

// imageMetrics renders one image's families.
func imageMetrics(r ImageMetrics, old map[string]string, now time.Time) []byte {
	var b strings.Builder
	lbl := fmt.Sprintf(`{image=%q}`, r.Image)
	gauge := func(name, help string, v any) {
		fmt.Fprintf(&b, "# HELP goldsync_%s %s\n# TYPE goldsync_%s gauge\ngoldsync_%s%s %v\n", name, help, name, name, lbl, v)
	}
	const successHelp = "Unix time of the last successful sync."
	ok := 0
	switch {
	case r.Err == nil:
		ok = 1
		at := now
		if !r.LastSuccess.IsZero() {
			at = r.LastSuccess // the status record's time, so both agree
		}
		gauge("last_success_timestamp_seconds", successHelp, at.Unix())
	case !r.LastSuccess.IsZero():
		gauge("last_success_timestamp_seconds", successHelp, r.LastSuccess.Unix())
	case old[r.Image] != "":
		gauge("last_success_timestamp_seconds", successHelp, old[r.Image])
	}
	gauge("last_run_timestamp_seconds", "Unix time of the last sync attempt.", now.Unix())
	gauge("last_run_success", "1 if the last sync succeeded.", ok)
	if res := r.Result; res != nil {
		gauge("last_run_duration_seconds", "Wall time of the last sync.", res.Duration.Seconds())
		gauge("last_run_files_changed", "Files created or updated by the last sync.", res.Created+res.Updated)
		gauge("last_run_deleted", "Entries deleted by the last sync.", res.Deleted)
		gauge("last_run_bytes_received", "Content bytes received by the last sync.", res.BytesReceived)
		gauge("last_run_errors", "Paths not applied by the last sync.", len(res.Problems))
	}
	return []byte(b.String())
}

// mergeMetrics merges Prometheus text expositions: each family's HELP and
// TYPE once, then its samples from every part, families in first-seen
// order.
func mergeMetrics(parts [][]byte) []byte {
	type family struct {
		head    []string
		samples []string
	}
	fams := map[string]*family{}
	var order []string
	get := func(name string) *family {
		f, ok := fams[name]
		if !ok {
			f = &family{}
			fams[name] = f
			order = append(order, name)
		}
		return f
	}
	for _, part := range parts {
		for line := range strings.Lines(string(part)) {
			line = strings.TrimRight(line, "\n")
			if line == "" {
				continue
			}
			if rest, ok := strings.CutPrefix(line, "# "); ok {
				fs := strings.Fields(rest)
				if len(fs) >= 2 && (fs[0] == "HELP" || fs[0] == "TYPE") {
					f := get(fs[1])
					if len(f.head) < 2 && !containsPrefix(f.head, "# "+fs[0]+" ") {
						f.head = append(f.head, line)
					}
				}
				continue
			}
			name := line
			if i := strings.IndexAny(line, "{ "); i >= 0 {
				name = line[:i]
			}
			f := get(name)
			f.samples = append(f.samples, line)
		}
	}
	var b strings.Builder
	for _, name := range order {
		f := fams[name]
		for _, l := range f.head {
			b.WriteString(l + "\n")
		}
		for _, l := range f.samples {
			b.WriteString(l + "\n")
		}
	}
	return []byte(b.String())
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
