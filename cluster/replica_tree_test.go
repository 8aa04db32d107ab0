package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// TestReplicaTree feeds a chain of replicas (r2 from r1, r3 from r2): each
// gets the image from its parent's copy, journal-driven by the primary's
// change set; when r1 is down, r2 is fed by the primary and r3 still by
// r2; when r1 is back, it catches up by a full compare and feeds r2 again.
func TestReplicaTree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three sshds")
	}
	s := newReplicaSite(t, "r1", "r2", "r3")
	s.from = map[string]string{"r2": "r1", "r3": "r2"}
	ctx := context.Background()
	gen := int64(0)
	check := func(ir *cluster.ImageReport, via map[string]string, full map[string]bool) {
		t.Helper()
		if g := ir.PullResult.Generation; g != 0 {
			gen = g // 0: the pull found nothing new
		}
		for n, v := range via {
			r := replicaReport(t, ir, n)
			if r.Result != cluster.ResultOK || r.Via != v || r.Full != full[n] || r.Generation != gen {
				t.Errorf("replica %s: %+v, want ok via %q (full %v) at generation %d", n, r, v, full[n], gen)
			}
		}
	}
	tree := map[string]string{"r1": "", "r2": "r1", "r3": "r2"}

	// 1. The first sync fills the chain, each replica from its parent.
	rep, err := cluster.Run(ctx, s.config(t), cluster.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	ir := rep.Images[0]
	check(ir, tree, map[string]bool{"r1": true, "r2": true, "r3": true})
	s.exact(t, s.names...)
	total := receiverScanned(t, replicaReport(t, ir, "r3"))
	for _, n := range s.names {
		if r := replicaReport(t, ir, n); r.Bytes == 0 || r.Files == 0 {
			t.Errorf("replica %s: its feeder sent nothing: %+v", n, r)
		}
	}

	// 2. A yum-size change goes down the chain by the generations.
	yum(t, s, 1)
	rep, err = cluster.Run(ctx, s.config(t), cluster.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	ir = rep.Images[0]
	check(ir, tree, nil)
	for _, n := range s.names {
		if got := receiverScanned(t, replicaReport(t, ir, n)); got >= total/2 || got > 60 {
			t.Errorf("replica %s scanned %d entries of %d for a 43-path change: not scoped", n, got, total)
		}
	}
	s.exact(t, s.names...)

	// 3. r1 down: the run is partial, r2 is fed by the primary, r3 by r2.
	s.stop["r1"]()
	yum(t, s, 2)
	rep, err = cluster.Run(ctx, s.config(t), cluster.Options{})
	if !errors.Is(err, cluster.ErrReplica) || !errors.Is(err, imaging.ErrPartial) {
		t.Fatalf("Run with r1 down: %v, want a partial replica error", err)
	}
	ir = rep.Images[0]
	if r := replicaReport(t, ir, "r1"); r.Result != cluster.ResultFailed || r.Via != "" {
		t.Errorf("r1: %+v, want failed, fed by the primary", r)
	}
	check(ir, map[string]string{"r2": "", "r3": "r2"}, nil)
	s.exact(t, "r2", "r3")

	// 4. r1 back: one full compare from the primary, and it feeds r2 again
	// (nothing changed for r2 and r3: only their roots are scanned).
	s.start(t, "r1")
	rep, err = cluster.Run(ctx, s.config(t), cluster.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	ir = rep.Images[0]
	check(ir, tree, map[string]bool{"r1": true})
	for _, n := range []string{"r2", "r3"} {
		if r := replicaReport(t, ir, n); r.Files != 0 || receiverScanned(t, r) > 1 {
			t.Errorf("%s, up to date: %+v, want only the root scanned", n, r)
		}
	}
	s.exact(t, s.names...)

	// 5. Nodes move: r1 now serves node001 only, so its other nodes go to
	// r2 and r3. Each node's boot files are on its replica alone: the
	// replicas a node left removed theirs (their snapshots stay).
	before, _ := cluster.Routes(s.config(t), mustNodes(t, s.config(t)))
	s.patterns = map[string][]string{"r1": {"node001"}}
	cfg := s.config(t)
	rep, err = cluster.Run(ctx, cfg, cluster.Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	byOS := mustNodes(t, cfg)
	routes, err := cluster.Routes(cfg, byOS)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	removed := map[string][]string{}
	for _, r := range rep.Images[0].Replicas {
		if r.Build != nil {
			removed[r.Replica] = r.Build.Removed
		}
	}
	for _, n := range byOS["rhel9compute"] {
		assigned := routes[n.Host].Assigned
		if was := before[n.Host].Assigned; was != assigned {
			moved++
			if !slices.Contains(removed[was], n.Host) {
				t.Errorf("node %s moved from %s to %s: %s's build removed %v", n.Host, was, assigned, was, removed[was])
			}
		}
		for _, name := range s.names {
			_, err := os.Stat(filepath.Join(s.replicaDir(name, "tftpboot"), netboot.PXELinuxDir, snapshot.HexIP(n.IP)))
			if has := err == nil; has != (name == assigned) {
				t.Errorf("node %s (on %s): a pxelinux config on %s: %v", n.Host, assigned, name, has)
			}
		}
	}
	if routes["node001"].Assigned != "r1" || moved == 0 {
		t.Errorf("node001 on %q, %d nodes moved: the patterns were not applied", routes["node001"].Assigned, moved)
	}
}

func mustNodes(t *testing.T, cfg *config.Config) map[string][]snapshot.Node {
	t.Helper()
	byOS, _, err := cluster.Nodes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return byOS
}

// TestReplicaRelayRefusesOtherGeneration: a relay whose replica does not
// hold the generation it is asked to pass on refuses, before starting any
// receiver.
func TestReplicaRelayRefusesOtherGeneration(t *testing.T) {
	dir := t.TempDir()
	root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state")
	for _, d := range []string{root, state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	put(t, imaging.State(state).Token, "gen-3-1700000000000000000\n")
	req := cluster.RelayRequest{Root: root, StateDir: state, Token: "gen-4-1700000001000000000"}
	req.Child.Args = []string{"/nonexistent/goldsync", "receive", "--stdio", "/x"}
	req.Child.SSH, req.Child.Rsh = "nohost.invalid", "false"
	data, _ := json.Marshal(req)
	var out bytes.Buffer
	err := cluster.ServeReplicaRelay(context.Background(), bytes.NewReader(data), &out, nil)
	if err == nil || !strings.Contains(err.Error(), "does not hold generation gen-4") {
		t.Fatalf("relay of another generation: %v, want a refusal", err)
	}
	if !strings.Contains(out.String(), "does not hold") {
		t.Errorf("the report does not say why: %q", out.String())
	}
}
