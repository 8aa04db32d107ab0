package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// Route is where a node boots from: its replica, or the primary (no
// replica, or its replica down).
type Route struct {
	Node  string `json:"node"`
	Image string `json:"image"`
	OS    string `json:"os"`
	// Assigned is the replica the config gives the node ("" for the
	// primary); Replica the one that serves it now, which is "" with
	// Fallback set when Assigned is down (ReplicaState.Down).
	Assigned string `json:"assigned,omitempty"`
	Replica  string `json:"replica,omitempty"`
	Fallback bool   `json:"fallback,omitempty"`
	// Server is the node's next-server and NFS server; ImageRoot,
	// Location and SnapshotDir are the paths on it.
	Server      string `json:"server"`
	ImageRoot   string `json:"image_root"`
	Location    string `json:"location"`
	SnapshotDir string `json:"snapshot_dir"`
}

// Routes says where each node of byOS (as Nodes and AssignNodes split
// them) boots from, keyed by host name: the replica AssignReplicas gives
// it, unless the primary's record says that replica is down (see
// ReplicaState.Down), and then the primary, which keeps every node's
// snapshot for that.
func Routes(cfg *config.Config, byOS map[string][]snapshot.Node) (map[string]Route, error) {
	out := map[string]Route{}
	var errs []error
	for _, sys := range cfg.OS {
		img, ok := cfg.Image(sys.Image)
		if !ok {
			continue
		}
		nodes := byOS[sys.Name]
		assign, err := AssignReplicas(img, nodes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		down := map[string]bool{}
		for _, rep := range img.Replicas {
			st, err := LoadReplicaState(img.StateDir, rep.Name)
			down[rep.Name] = err != nil || st.Down()
		}
		for _, n := range nodes {
			r := Route{Node: n.Host, Image: img.Name, OS: sys.Name, Assigned: assign[n.Host],
				Server: sys.NFSServer, ImageRoot: img.Root, Location: sys.Location, SnapshotDir: sys.SnapshotDir}
			if r.Assigned != "" {
				if down[r.Assigned] {
					r.Fallback = true
				} else {
					rep, _ := img.Replica(r.Assigned)
					o := replicaOS(sys, img, rep)
					r.Replica, r.Server, r.ImageRoot, r.Location, r.SnapshotDir = rep.Name, o.NFSServer, rep.Path, o.Location, o.SnapshotDir
				}
			}
			out[n.Host] = r
		}
	}
	return out, errors.Join(errs...)
}

// routeRecord is rec, the OS record netboot.AddOS made on the primary,
// with the server and paths of route r.
func routeRecord(rec netboot.OS, r Route) netboot.OS {
	rec.NFSServer, rec.ImageRoot, rec.Location, rec.SnapshotDir = r.Server, r.ImageRoot, r.Location, r.SnapshotDir
	return rec
}

// DhcpdNextServers returns the next-server of every node of an image
// with replicas, by host name: its route's server (Routes). Nodes of
// images without replicas are left out (the caller's default applies).
func DhcpdNextServers(cfg *config.Config, nodes []snapshot.Node) (map[string]string, error) {
	return nodeServers(cfg, nodes, func(r Route) bool {
		img, ok := cfg.Image(r.Image)
		return ok && len(img.Replicas) > 0
	})
}

// NodeServers returns the server of every node an OS of the config
// boots, by host name: its route's (Routes), which is its replica, the
// primary while that replica is down, or its OS's nfs_server. Nodes no OS
// boots are left out.
func NodeServers(cfg *config.Config, nodes []snapshot.Node) (map[string]string, error) {
	return nodeServers(cfg, nodes, func(Route) bool { return true })
}

// nodeServers returns the route's server of each node whose route keep
// takes, by host name.
func nodeServers(cfg *config.Config, nodes []snapshot.Node, keep func(Route) bool) (map[string]string, error) {
	byOS, _, err := AssignNodes(cfg, nodes)
	if err != nil {
		return nil, err
	}
	routes, err := Routes(cfg, byOS)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for host, r := range routes {
		if keep(r) {
			out[host] = r.Server
		}
	}
	return out, nil
}

// ReplicaExports returns what the replicas named name export, for every
// image that has one of that name: the replica's image dir read-only and,
// for each OS, the snapshots of the nodes assigned to it, one by one
// (whether it is up or down: a replica's exports do not change with its
// health). nodes nil means the config's nodes file; clients and
// snapClients are as in Exports. An unknown replica is a StepConfig error
// wrapping ErrNoExports.
func ReplicaExports(cfg *config.Config, nodes []snapshot.Node, name, clients, snapClients string) ([]netboot.ExportsOptions, error) {
	byOS, err := exportNodes(cfg, nodes, clients, snapClients)
	if err != nil {
		return nil, err
	}
	var out []netboot.ExportsOptions
	found := false
	for i := range cfg.Images {
		img := &cfg.Images[i]
		rep, ok := img.Replica(name)
		if !ok {
			continue
		}
		found = true
		for _, sys := range cfg.OSOf(img.Name) {
			assign, err := AssignReplicas(img, byOS[sys.Name])
			if err != nil {
				return nil, err
			}
			var mine []snapshot.Node
			for _, n := range byOS[sys.Name] {
				if assign[n.Host] == name {
					mine = append(mine, n)
				}
			}
			o := replicaOS(sys, img, rep)
			out = append(out, netboot.ExportsOptions{ImageRoot: rep.Path, SnapshotDir: o.SnapshotDir, Clients: clients, Nodes: mine, SnapshotClients: snapClients})
		}
	}
	if !found {
		var names []string
		for _, img := range cfg.Images {
			for _, r := range img.Replicas {
				if !slices.Contains(names, r.Name) {
					names = append(names, r.Name)
				}
			}
		}
		return nil, &StepError{Step: StepConfig, Err: kindError{ErrNoExports, fmt.Errorf("%s: no image has a replica %q (replicas: %s)", cfg.Path, name, strings.Join(names, ", "))}}
	}
	return out, nil
}
