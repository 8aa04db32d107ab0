package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/goldsync/goldsync/imaging"
)

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// writeMetrics writes Prometheus text-format metrics for node_exporter's
// textfile collector, atomically (temp + rename, as the collector asks).
func writeMetrics(path, image string, res *imaging.Result, runErr error) error {
	var b strings.Builder
	lbl := fmt.Sprintf(`{image=%q}`, image)
	gauge := func(name, help string, v any) {
		fmt.Fprintf(&b, "# HELP goldsync_%s %s\n# TYPE goldsync_%s gauge\ngoldsync_%s%s %v\n", name, help, name, name, lbl, v)
	}
	ok := 0
	if runErr == nil {
		ok = 1
		gauge("last_success_timestamp_seconds", "Unix time of the last successful sync.", time.Now().Unix())
	}
	gauge("last_run_timestamp_seconds", "Unix time of the last sync attempt.", time.Now().Unix())
	gauge("last_run_success", "1 if the last sync succeeded.", ok)
	if res != nil {
		gauge("last_run_duration_seconds", "Wall time of the last sync.", res.Duration.Seconds())
		gauge("last_run_files_changed", "Files created or updated by the last sync.", res.Created+res.Updated)
		gauge("last_run_deleted", "Entries deleted by the last sync.", res.Deleted)
		gauge("last_run_bytes_received", "Content bytes received by the last sync.", res.BytesReceived)
		gauge("last_run_errors", "Paths not applied by the last sync.", len(res.Problems))
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
