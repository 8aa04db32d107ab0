package cluster

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging/exposure"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// ExportsRequest is what goldsync render exports and render ganesha are
// asked for: one image and its snapshot directory, or (neither given)
// every OS of the cluster config, or the exports of one of its replicas.
type ExportsRequest struct {
	// ImageRoot and SnapshotDir name one image's exports; both absolute.
	ImageRoot, SnapshotDir string
	// Replica asks for the exports of the config's replica of that name.
	Replica string
	// Clients and SnapshotClients go into every export
	// (netboot.ExportsOptions).
	Clients, SnapshotClients string
	// Nodes export each node's snapshot to that node only; nil with the
	// config means the config's nodes file.
	Nodes []snapshot.Node
	// NodesFile, when set, is read into Nodes by Load.
	NodesFile string
}

// Load returns the request's exports (Exports): the nodes of NodesFile
// (an error reading it is StepNodes's), from the config load returns
// when UsesConfig. Without Replica, a missing config file (config.ErrNoFile)
// or a config with nothing to export (ErrNoExports) says the flags that
// replace the config.
func (r ExportsRequest) Load(load func() (*config.Config, error)) ([]netboot.ExportsOptions, error) {
	if r.NodesFile != "" {
		nodes, err := snapshot.ReadNodesFile(r.NodesFile)
		if err != nil {
			return nil, stepErr(StepNodes, err)
		}
		r.Nodes = nodes
	}
	hint := func(err error) error {
		if r.Replica == "" && (errors.Is(err, config.ErrNoFile) || errors.Is(err, ErrNoExports)) {
			return fmt.Errorf("%w (or give --image and --snapshot-dir)", err)
		}
		return err
	}
	var cfg *config.Config
	if r.UsesConfig() {
		var err error
		if cfg, err = load(); err != nil {
			return nil, hint(err)
		}
	}
	list, err := r.Exports(cfg)
	return list, hint(err)
}

// UsesConfig says whether the exports come from the cluster config: no
// ImageRoot or SnapshotDir given.
func (r ExportsRequest) UsesConfig() bool { return r.ImageRoot == "" && r.SnapshotDir == "" }

// Exports checks the request and returns its exports; cfg is read only
// when UsesConfig. Wrong requests are StepConfig errors; the config's
// are those of Exports and ReplicaExports.
func (r ExportsRequest) Exports(cfg *config.Config) ([]netboot.ExportsOptions, error) {
	if err := netboot.CheckClients(r.Clients + " " + r.SnapshotClients); err != nil {
		return nil, stepErr(StepConfig, err)
	}
	switch {
	case r.UsesConfig() && r.Replica != "":
		return ReplicaExports(cfg, r.Nodes, r.Replica, r.Clients, r.SnapshotClients)
	case r.UsesConfig():
		return Exports(cfg, r.Nodes, r.Clients, r.SnapshotClients)
	case r.Replica != "":
		return nil, stepErr(StepConfig, errors.New("--replica takes its paths from the cluster config: give no --image or --snapshot-dir"))
	}
	for _, p := range []struct{ flag, val string }{{"--image", r.ImageRoot}, {"--snapshot-dir", r.SnapshotDir}} {
		if !filepath.IsAbs(p.val) {
			return nil, stepErr(StepConfig, fmt.Errorf("%s %q: exports need absolute paths (give --image and --snapshot-dir, or neither to use the cluster config)", p.flag, p.val))
		}
	}
	return []netboot.ExportsOptions{{ImageRoot: filepath.Clean(r.ImageRoot), SnapshotDir: filepath.Clean(r.SnapshotDir),
		Clients: r.Clients, Nodes: r.Nodes, SnapshotClients: r.SnapshotClients}}, nil
}

// RenderExports renders the exports(5) lines of list
// (netboot.RenderExports) and the exposure warnings of their directories.
func RenderExports(list []netboot.ExportsOptions) ([]byte, []exposure.Warning) {
	var out []byte
	var dirs []string
	for _, o := range list {
		out = append(out, netboot.RenderExports(o)...)
		dirs = append(dirs, o.ImageRoot, o.SnapshotDir)
	}
	return out, ExposureWarnings(dirs...)
}

// DhcpdRequest is what goldsync render dhcpd is asked for: the host
// declarations of the nodes of NodesFile, or (none given) of the cluster
// config's nodes file.
type DhcpdRequest struct {
	// NodesFile names the nodes; "" means the config's.
	NodesFile string
	// Options are the declarations' options. When the nodes come from
	// the config and Options.NextServer is empty, every node's
	// next-server is its route's server (NodeServers), and the config's
	// nfs_server for nodes no OS boots; a NextServer given is every
	// node's.
	Options netboot.DhcpdOptions
}

// Render checks the request and renders the declarations
// (netboot.RenderDhcpd); load reads the config, called only without a
// NodesFile. An error reading the nodes file is a StepNodes error;
// load's are returned as they are, a missing file's (config.ErrNoFile)
// saying that --nodes replaces it; others are the request's.
func (r DhcpdRequest) Render(load func() (*config.Config, error)) ([]byte, error) {
	o := r.Options
	var cfg *config.Config
	if r.NodesFile == "" {
		var err error
		if cfg, err = load(); errors.Is(err, config.ErrNoFile) {
			return nil, fmt.Errorf("%w (or give --nodes)", err)
		} else if err != nil {
			return nil, err
		}
		r.NodesFile = cfg.Cluster.Nodes
	}
	nodes, err := snapshot.ReadNodesFile(r.NodesFile)
	if err != nil {
		return nil, stepErr(StepNodes, err)
	}
	if cfg != nil && o.NextServer == "" {
		// Each node of the config boots from its route's server: its
		// replica, the primary while that replica is down, or its OS's
		// nfs_server. A NextServer given is every node's.
		if o.NextServers, err = NodeServers(cfg, nodes); err != nil {
			return nil, err
		}
		o.NextServer = cfg.Cluster.NFSServer // nodes no OS boots
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return netboot.RenderDhcpd(nodes, o), nil
}
