package netboot

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/goldsync/goldsync/snapshot"
)

// ErrNoSnapshotDir is wrapped by RemoveNodes when a node's snapshot is to
// be purged but neither the options nor the node's OS say where it is.
var ErrNoSnapshotDir = errors.New("snapshot directory unknown")

// ErrPurge is wrapped by RemoveNodes when a snapshot tree or record
// could not be deleted (after the boot configs were removed).
var ErrPurge = errors.New("purge")

// RemoveNodesOptions say which nodes RemoveNodes removes, and whether
// their snapshots go too.
type RemoveNodesOptions struct {
	// TFTPBoot is the TFTP root.
	TFTPBoot string
	// Nodes are removed by address (a nodes file's nodes); their OS is
	// the one their pxelinux config names, if any.
	Nodes []snapshot.Node
	// NodesFile names more Nodes (snapshot.ReadNodesFile); not with
	// Names.
	NodesFile string
	// Names are host (snapshot) names or IPv4 addresses, looked up in the
	// pxelinux configs; a name no config matches is an error wrapping
	// fs.ErrNotExist, and nothing is removed.
	Names []string
	// Purge also deletes each node's snapshot tree and its record.
	Purge bool
	// SnapshotDir is where the snapshots to purge are; empty: the
	// snapshot directory of the OS each node boots.
	SnapshotDir string
	// StateDir is the snapshot directory's state dir (default: beside it).
	StateDir string
}

// RemovedNode is a node RemoveNodes removed.
type RemovedNode struct {
	// Node is the node, with the address and host name of its config.
	Node snapshot.Node `json:"node"`
	// OS is the OS its config booted; empty when it had no config.
	OS string `json:"os,omitempty"`
	// Snapshot is the snapshot tree deleted (with Purge).
	Snapshot string `json:"snapshot,omitempty"`
}

// RemoveNodes removes the boot configs (pxelinux, GRUB, iPXE) of the
// nodes, as pxeboot -d did, and with Purge their snapshot trees and
// records (snapshot.RemoveSnapshot). Every node is resolved, and with
// Purge its snapshot directory found, before anything is removed; a
// snapshot directory nothing names is an error wrapping
// ErrNoSnapshotDir. Names and NodesFile together, or no node at all, is
// an error, as is a nodes file that cannot be read (ReadNodesFile's).
func RemoveNodes(o RemoveNodesOptions) ([]RemovedNode, error) {
	switch {
	case o.NodesFile != "" && len(o.Names) > 0:
		return nil, errors.New("give either --nodes FILE or nodes, not both")
	case o.NodesFile != "":
		nodes, err := snapshot.ReadNodesFile(o.NodesFile)
		if err != nil {
			return nil, err
		}
		o.Nodes = append(o.Nodes, nodes...)
	case len(o.Names) == 0 && len(o.Nodes) == 0:
		return nil, errors.New("name the nodes to remove, or --nodes FILE")
	}
	cfgs, err := ListNodeConfigs(o.TFTPBoot)
	if err != nil {
		return nil, err
	}
	targets, err := findNodes(o.TFTPBoot, cfgs, o.Nodes, o.Names)
	if err != nil {
		return nil, err
	}
	if o.Purge {
		for i := range targets {
			t := &targets[i]
			dir := o.SnapshotDir
			if dir == "" && t.OS != "" {
				if sys, err := LoadOS(o.TFTPBoot, t.OS); err == nil {
					dir = sys.SnapshotDir
				}
			}
			if dir == "" {
				return nil, fmt.Errorf("%s: %w: give the snapshot directory", t.Node.Host, ErrNoSnapshotDir)
			}
			t.Snapshot = filepath.Join(dir, t.Node.Host)
		}
	}
	nodes := make([]snapshot.Node, len(targets))
	for i, t := range targets {
		nodes[i] = t.Node
	}
	if err := RemoveNodeConfigs(o.TFTPBoot, nodes); err != nil {
		return nil, err
	}
	if !o.Purge {
		return targets, nil
	}
	for i, t := range targets {
		if err := snapshot.RemoveSnapshot(filepath.Dir(t.Snapshot), o.StateDir, t.Node.Host); err != nil {
			return targets[:i], fmt.Errorf("%w: %w", ErrPurge, err)
		}
	}
	return targets, nil
}

// findNodes resolves nodes (by address) and names (host or address) to
// the nodes to remove, with the OS their configs name.
func findNodes(tftpboot string, cfgs []NodeConfig, nodes []snapshot.Node, names []string) ([]RemovedNode, error) {
	var out []RemovedNode
	for _, n := range nodes {
		t := RemovedNode{Node: n}
		for _, c := range cfgs {
			if c.IP == n.IP {
				t.OS = c.OS
			}
		}
		out = append(out, t)
	}
	for _, a := range names {
		ip, ipErr := netip.ParseAddr(a)
		found := false
		for _, c := range cfgs {
			if (ipErr == nil && c.IP == ip) || (ipErr != nil && strings.EqualFold(c.Snapshot, a)) {
				out = append(out, RemovedNode{Node: snapshot.Node{IP: c.IP, Host: c.Snapshot}, OS: c.OS})
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("node %s: no pxelinux config in %s names it: %w", a, filepath.Join(tftpboot, PXELinuxDir), fs.ErrNotExist)
		}
	}
	return out, nil
}
