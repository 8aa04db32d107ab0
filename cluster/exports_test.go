package cluster_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/snapshot"
)

func TestExports(t *testing.T) {
	s := newSite(t, golden)
	cfg := s.config(t, true, "")
	list, err := cluster.Exports(cfg, nil, "10.8.0.0/16", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%d exports, want 1: %+v", len(list), list)
	}
	e := list[0]
	if e.ImageRoot != s.root || e.SnapshotDir == "" || e.Clients != "10.8.0.0/16" || e.SnapshotClients != "admin" {
		t.Errorf("export %+v: want image %s, a snapshot dir, the clients", e, s.root)
	}
	if len(e.Nodes) != 2 || e.Nodes[1].Host != "node002" {
		t.Errorf("nodes %v, want the nodes file's two", e.Nodes)
	}
	// Nodes given replace the config's nodes file.
	one := []snapshot.Node{{IP: netip.MustParseAddr("10.8.136.9"), Host: "node009"}}
	if list, err = cluster.Exports(cfg, one, "", ""); err != nil || len(list[0].Nodes) != 1 || list[0].Nodes[0].Host != "node009" {
		t.Errorf("cluster.Exports(nodes): %+v, %v; want node009 only", list, err)
	}
	if _, err := cluster.Exports(cfg, nil, "a,b", ""); err == nil {
		t.Error("Exports took a client with a comma")
	}
	if _, err := cluster.Exports(s.config(t, false, ""), nil, "", ""); !errors.Is(err, cluster.ErrNoExports) || cluster.StepOf(err) != cluster.StepConfig {
		t.Errorf("Exports without an OS: %v (step %q), want cluster.ErrNoExports, cluster.StepConfig", err, cluster.StepOf(err))
	}
	s.nodes += ".missing"
	if _, err := cluster.Exports(s.config(t, true, ""), nil, "", ""); cluster.StepOf(err) != cluster.StepNodes {
		t.Errorf("Exports with a missing nodes file: %v (step %q), want cluster.StepNodes", err, cluster.StepOf(err))
	}
}

func TestServeOptions(t *testing.T) {
	s := newSite(t, golden)
	cfg := s.config(t, false, "")
	o, err := cluster.ServeOptions(cfg, nil)
	if err != nil || len(o.Images) != 1 || o.Images[0].Name != "rhel9" || o.Images[0].Root != s.root || o.MaxConnections != 0 || o.Allow != nil {
		t.Errorf("ServeOptions: %+v, %v; want image rhel9 at %s, the export's defaults", o, err, s.root)
	}
	cfg.Export.MaxPerIP, cfg.Export.ServeRootOnly = 3, true
	if o, err = cluster.ServeOptions(cfg, []string{"rhel9"}); err != nil || o.MaxPerIP != 3 || !o.ServeRootOnly {
		t.Errorf("ServeOptions with [export]: %+v, %v", o, err)
	}
	if _, err := cluster.ServeOptions(cfg, []string{"nope"}); !errors.Is(err, cluster.ErrNoImage) {
		t.Errorf("ServeOptions of an unknown image: %v, want ErrNoImage", err)
	}
}
