package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
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

// TestExportsRequestLoad checks the nodes file of a render request and the
// hint of a missing config or one with nothing to export: the flags that
// replace it, except for --replica, which needs the config.
func TestExportsRequestLoad(t *testing.T) {
	s := newSite(t, golden)
	noFile := func() (*config.Config, error) { return nil, fmt.Errorf("%w x.toml", config.ErrNoFile) }
	hint := "(or give --image and --snapshot-dir)"
	for _, tc := range []struct {
		name     string
		r        cluster.ExportsRequest
		load     func() (*config.Config, error)
		wantHint bool
		is       error
		step     cluster.Step
	}{
		{name: "no config file", load: noFile, wantHint: true, is: config.ErrNoFile},
		{name: "no config file, replica", r: cluster.ExportsRequest{Replica: "r1"}, load: noFile, is: config.ErrNoFile},
		{name: "nothing to export", load: func() (*config.Config, error) { return s.config(t, false, ""), nil }, wantHint: true, is: cluster.ErrNoExports},
		{name: "missing nodes file", r: cluster.ExportsRequest{NodesFile: s.nodes + ".missing"}, step: cluster.StepNodes, is: fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := tc.r.Load(tc.load)
			if list != nil || !errors.Is(err, tc.is) || strings.Contains(fmt.Sprint(err), hint) != tc.wantHint {
				t.Errorf("Load: %v, %v; want %v, hint %v", list, err, tc.is, tc.wantHint)
			}
			if tc.step != "" && cluster.StepOf(err) != tc.step {
				t.Errorf("step %q, want %q", cluster.StepOf(err), tc.step)
			}
		})
	}
	list, err := cluster.ExportsRequest{NodesFile: s.nodes}.Load(func() (*config.Config, error) { return s.config(t, true, ""), nil })
	if err != nil || len(list) != 1 || len(list[0].Nodes) != 2 {
		t.Errorf("Load with the site's nodes file: %+v, %v; want one export of its 2 nodes", list, err)
	}
	if _, err := (cluster.DhcpdRequest{}).Render(noFile); !errors.Is(err, config.ErrNoFile) || !strings.Contains(err.Error(), "(or give --nodes)") {
		t.Errorf("render dhcpd without a config: %v, want the --nodes hint", err)
	}
}

// TestServeRequestErrors checks the steps of the errors of a serve
// request: the exit codes go by them.
func TestServeRequestErrors(t *testing.T) {
	img := t.TempDir()
	noConfig := func() (*config.Config, error) { return nil, config.ErrNoFile }
	for _, tc := range []struct {
		name string
		r    cluster.ServeRequest
		step cluster.Step
		is   error
	}{
		{name: "no listener", r: cluster.ServeRequest{Pairs: []string{"img=" + img}}, step: cluster.StepConfig},
		{name: "bad pair", r: cluster.ServeRequest{Listen: "127.0.0.1:0", Pairs: []string{"img"}}, step: cluster.StepConfig},
		{name: "pairs and names", r: cluster.ServeRequest{Listen: "127.0.0.1:0", Pairs: []string{"img=" + img}, Names: []string{"x"}}, step: cluster.StepConfig},
		{name: "no config", r: cluster.ServeRequest{Listen: "127.0.0.1:0"}, is: config.ErrNoFile},
		{name: "bad network", r: cluster.ServeRequest{Listen: "127.0.0.1:0", Pairs: []string{"img=" + img}, Allow: []string{"nonsense"}, AllowSet: true}, step: cluster.StepConfig},
		{name: "bad listener", r: cluster.ServeRequest{Listen: "127.0.0.1:http-no-such-port", Pairs: []string{"img=" + img}, Unconfined: true}, step: cluster.StepListen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Serve(context.Background(), noConfig)
			if err == nil || (tc.step != "" && cluster.StepOf(err) != tc.step) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("Serve: %v (step %q), want step %q, %v", err, cluster.StepOf(err), tc.step, tc.is)
			}
		})
	}
}
