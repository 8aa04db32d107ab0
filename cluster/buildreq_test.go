package cluster_test

import (
	"context"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/snapshot"
)

// TestBuildRequest checks the steps a snapshot build's errors come from:
// the exit codes go by them.
func TestBuildRequest(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "image")
	if err := os.MkdirAll(filepath.Join(image, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad-files")
	if err := os.WriteFile(bad, []byte("relative/path\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "files")
	if err := os.WriteFile(good, []byte("/etc/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nodes := []snapshot.Node{{IP: netip.MustParseAddr("10.0.0.1"), Host: "n1"}}
	req := func(image string, files ...string) cluster.BuildRequest {
		return cluster.BuildRequest{BuildOptions: snapshot.BuildOptions{ImageRoot: image, SnapshotDir: filepath.Join(dir, "snap"),
			Nodes: nodes, DryRun: true}, Files: files}
	}
	for _, tc := range []struct {
		name string
		r    cluster.BuildRequest
		step cluster.Step
		is   error
	}{
		{name: "missing image", r: req(filepath.Join(dir, "none"), good), step: cluster.StepImage, is: fs.ErrNotExist},
		{name: "wrong list", r: req(image, bad), step: cluster.StepLists, is: snapshot.ErrLists},
		{name: "missing list", r: req(image, filepath.Join(dir, "none")), step: cluster.StepLists, is: fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.r.Build(context.Background())
			if res != nil || cluster.StepOf(err) != tc.step || !errors.Is(err, tc.is) {
				t.Errorf("Build: %v, %v; want no result and a %s error wrapping %v", res, err, tc.step, tc.is)
			}
		})
	}
	res, err := req(image, good).Build(context.Background())
	if err != nil || res == nil {
		t.Fatalf("dry-run build: %v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "snap")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dry run made the snapshot dir: %v", err)
	}
}
