package cluster_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/imaging"
)

func TestPullSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    cluster.PullSettings
		ok   bool
	}{
		{name: "defaults", ok: true},
		{name: "no limit", s: cluster.PullSettings{MaxDelete: -1}, ok: true},
		{name: "max-delete below -1", s: cluster.PullSettings{MaxDelete: -2}},
		{name: "delete and no-delete", s: cluster.PullSettings{DeleteSet: true, NoDelete: true}},
	} {
		if err := tc.s.Check(); (err == nil) != tc.ok {
			t.Errorf("%s: Check: %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	// rsync's --max-delete=0 deletes nothing; a zero retention is off.
	s := cluster.PullSettings{MaxDeleteSet: true}
	if o := s.Options(nil, false); !o.NoDelete || o.Retention != -1 || !s.KeepsDeletes() {
		t.Errorf("--max-delete=0: NoDelete %v, Retention %v, KeepsDeletes %v; want true, -1, true", o.NoDelete, o.Retention, s.KeepsDeletes())
	}
	if o := (cluster.PullSettings{}).Options(nil, true); len(o.Excludes) == 0 {
		t.Errorf("a whole root without NoDefaultExcludes: no excludes")
	}
	if o := (cluster.PullSettings{NoDefaultExcludes: true}).Options(nil, true); len(o.Excludes) != 0 {
		t.Errorf("NoDefaultExcludes: excludes %q", o.Excludes)
	}

	// A non-empty directory never pulled into: refused, but a dry run
	// only warns.
	dest := t.TempDir()
	if err := os.WriteFile(filepath.Join(dest, "precious"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s = cluster.PullSettings{}
	if w, err := s.CheckFirstPull(dest, s.Options(nil, false)); w != "" || !errors.Is(err, imaging.ErrNotImage) {
		t.Errorf("CheckFirstPull: %q, %v; want no warning and ErrNotImage", w, err)
	}
	s = cluster.PullSettings{DryRun: true}
	if w, err := s.CheckFirstPull(dest, s.Options(nil, false)); w == "" || err != nil {
		t.Errorf("CheckFirstPull of a dry run: %q, %v; want a warning and no error", w, err)
	}
	s = cluster.PullSettings{DeleteSet: true}
	if w, err := s.CheckFirstPull(dest, s.Options(nil, false)); w != "" || err != nil {
		t.Errorf("CheckFirstPull with --delete: %q, %v; want nothing", w, err)
	}
}
