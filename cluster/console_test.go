package cluster_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
)

// TestConsole checks where goldsync sync's output goes: a terminal gets
// everything, cron only a failed image's report (on stderr) and, once the
// run failed, the warnings held until then.
func TestConsole(t *testing.T) {
	img := &config.Image{Name: "compute", Source: "golden:/", Root: "/srv/img"}
	ok := &cluster.ImageReport{Image: "compute", Result: cluster.ResultOK}
	failed := &cluster.ImageReport{Image: "compute", Result: cluster.ResultFailed, Error: "boom", Err: errors.New("boom")}
	conflicts := &cluster.ImageReport{Image: "compute", Result: cluster.ResultOK, Snapshots: []cluster.SnapshotReport{{OS: "el9", Conflicts: 1}}}
	for _, tc := range []struct {
		name            string
		c               cluster.Console
		report          *cluster.ImageReport
		wantOut, wantEr []string // substrings; nil: nothing at all
		noOut, noErr    bool
	}{
		{name: "terminal, ok", c: cluster.Console{Interactive: true}, report: ok,
			wantOut: []string{"== image compute: golden:/ -> /srv/img", "compute"}, wantEr: []string{"notice: hello", "warn held"}},
		{name: "cron, ok", c: cluster.Console{}, report: ok, noOut: true, noErr: true},
		{name: "cron, failed", c: cluster.Console{}, report: failed, noOut: true, wantEr: []string{"sync of compute: failed", "warn held"}},
		{name: "cron, conflicts", c: cluster.Console{}, report: conflicts, wantOut: []string{"compute"}, noErr: true},
		{name: "cron, dry run", c: cluster.Console{DryRun: true}, report: ok, wantOut: []string{"== image compute"}, noErr: true},
		{name: "terminal, quiet", c: cluster.Console{Interactive: true, Quiet: true}, report: ok, noOut: true, wantEr: []string{"warn held"}},
		{name: "terminal, json", c: cluster.Console{Interactive: true, JSON: true}, report: failed, noOut: true, wantEr: []string{"warn held"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer errFile.Close()
			var out bytes.Buffer
			c := tc.c
			c.Out, c.Err = &out, errFile
			var o cluster.Options
			c.Hooks(&o)
			o.ImageStart(img)
			o.Notice("hello")
			c.Log().Write([]byte("warn held\n"))
			o.ImageDone(tc.report)
			if tc.report.Err != nil {
				c.Flush()
			}
			stderr, _ := os.ReadFile(errFile.Name())
			check := func(stream, got string, want []string, none bool) {
				if none && got != "" {
					t.Errorf("%s: %q, want nothing", stream, got)
				}
				for _, w := range want {
					if !strings.Contains(got, w) {
						t.Errorf("%s: %q, want %q in it", stream, got, w)
					}
				}
			}
			check("stdout", out.String(), tc.wantOut, tc.noOut)
			check("stderr", string(stderr), tc.wantEr, tc.noErr)
		})
	}
}
