package cluster

import (
	"fmt"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// ErrNoExports is wrapped by Exports when no OS of the config has both an
// image and a snapshot directory.
var ErrNoExports = fmt.Errorf("no OS to export: %w", ErrNoImage)

// Exports returns the NFS exports of every OS of the config that has an
// image and a snapshot directory, for netboot.RenderExports and
// netboot.RenderGanesha: its image root read-only, and each of its nodes'
// snapshots read-write to that node. nodes are split among the OSes as
// Run does (AssignNodes); nil means the config's nodes file. clients and
// snapshotClients go into every export (netboot.ExportsOptions) and are
// checked with netboot.CheckClients. Errors are StepNodes errors (the
// nodes file, or nodes two OSes claim) or StepConfig ones.
func Exports(cfg *config.Config, nodes []snapshot.Node, clients, snapshotClients string) ([]netboot.ExportsOptions, error) {
	byOS, err := exportNodes(cfg, nodes, clients, snapshotClients)
	if err != nil {
		return nil, err
	}
	var out []netboot.ExportsOptions
	for _, o := range cfg.OS {
		img, ok := cfg.Image(o.Image)
		if !ok || o.SnapshotDir == "" {
			continue
		}
		out = append(out, netboot.ExportsOptions{ImageRoot: img.Root, SnapshotDir: o.SnapshotDir,
			Clients: clients, Nodes: byOS[o.Name], SnapshotClients: snapshotClients})
	}
	if len(out) == 0 {
		return nil, &StepError{Step: StepConfig, Err: kindError{ErrNoExports, fmt.Errorf("%s: no OS to export", cfg.Path)}}
	}
	return out, nil
}

// exportNodes checks the client lists and returns the nodes per OS: the
// config's nodes file when nodes is nil, else nodes assigned to the OSes.
func exportNodes(cfg *config.Config, nodes []snapshot.Node, clients, snapClients string) (map[string][]snapshot.Node, error) {
	if err := netboot.CheckClients(clients + " " + snapClients); err != nil {
		return nil, stepErr(StepConfig, err)
	}
	if nodes == nil {
		byOS, _, err := Nodes(cfg)
		return byOS, err
	}
	byOS, _, err := AssignNodes(cfg, nodes)
	if err != nil {
		return nil, stepErr(StepNodes, kindError{snapshot.ErrNodes, err})
	}
	return byOS, nil
}
