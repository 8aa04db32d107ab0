package cluster

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/snapshot"
)

// AssignReplicas says which replica of img serves each node: by host
// name, the replica's name, or "" for the primary.
//
// A node that one replica's patterns match (config.Replica.Matches) is
// that replica's. The others are spread over the replicas without
// patterns by rendezvous hashing of the host name (the replica with the
// highest xxhash of name and host wins): the spread is even, a node stays
// where it is when nodes are added or removed, and adding a replica moves
// only the nodes it wins. When every replica lists its nodes, the nodes
// none lists stay on the primary. A node two replicas list is an error.
func AssignReplicas(img *config.Image, nodes []snapshot.Node) (map[string]string, error) {
	out := make(map[string]string, len(nodes))
	if len(img.Replicas) == 0 {
		for _, n := range nodes {
			out[n.Host] = ""
		}
		return out, nil
	}
	var spread []string
	for _, r := range img.Replicas {
		if len(r.Nodes) == 0 {
			spread = append(spread, r.Name)
		}
	}
	var errs []error
	for _, n := range nodes {
		var claims []string
		for _, r := range img.Replicas {
			if r.Matches(n.Host) {
				claims = append(claims, r.Name)
			}
		}
		switch {
		case len(claims) == 1:
			out[n.Host] = claims[0]
		case len(claims) > 1:
			where := n.Source
			if where == "" {
				where = n.Host
			}
			errs = append(errs, fmt.Errorf("%s: node %s is listed by several replicas of image %s: %s", where, n.Host, img.Name, strings.Join(claims, ", ")))
		default:
			out[n.Host] = Rendezvous(spread, n.Host)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Rendezvous picks the name of names with the highest weight for key
// (highest random weight hashing): "" when names is empty. The choice
// depends only on the key and the set of names, not on their order or on
// other keys.
func Rendezvous(names []string, key string) string {
	best, bestW := "", uint64(0)
	for _, name := range names {
		d := xxhash.New()
		d.WriteString(name)
		d.Write([]byte{0})
		d.WriteString(key)
		if w := d.Sum64(); best == "" || w > bestW || w == bestW && name < best {
			best, bestW = name, w
		}
	}
	return best
}

// UnmatchedReplicas returns a warning, at the replica's file:line, for each
// replica of img whose nodes patterns match none of nodes (the nodes that
// boot the image): such a replica serves no node, which is most often a
// mistyped pattern. It is a warning, not an error: the nodes file changes
// apart from the config (a rack emptied for a while), and the image must
// still reach every replica.
func UnmatchedReplicas(cfg *config.Config, img *config.Image, nodes []snapshot.Node) []string {
	var out []string
	for _, r := range img.Replicas {
		if len(r.Nodes) == 0 {
			continue
		}
		matched := false
		for _, n := range nodes {
			if r.Matches(n.Host) {
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, fmt.Sprintf("%s:%d: image %s replica %s: nodes %s match none of the image's %d nodes (nodes file %s): it serves no node",
				cfg.Path, r.Line, img.Name, r.Name, strings.Join(r.Nodes, ", "), len(nodes), cfg.Cluster.Nodes))
		}
	}
	return out
}
