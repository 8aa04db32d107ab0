package cluster

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// SelectImages returns the named images of c, in the order named, each
// once; no name means every image. An unknown name, or a config without
// images, is a StepConfig error wrapping ErrNoImage.
func SelectImages(c *config.Config, names []string) ([]*config.Image, error) {
	if len(names) == 0 {
		if len(c.Images) == 0 {
			return nil, noImage("%s: no [[image]]", c.Path)
		}
		var all []*config.Image
		for i := range c.Images {
			all = append(all, &c.Images[i])
		}
		return all, nil
	}
	var out []*config.Image
	seen := map[string]bool{}
	for _, n := range names {
		img, ok := c.Image(n)
		if !ok {
			return nil, noImage("no image %q in %s (images: %s)", n, c.Path, strings.Join(c.ImageNames(), ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, img)
		}
	}
	return out, nil
}

// Nodes reads the config's nodes file and splits it among its operating
// systems (see AssignNodes); the file is not read when no OS is
// configured. Errors are StepNodes errors.
func Nodes(c *config.Config) (byOS map[string][]snapshot.Node, unclaimed []snapshot.Node, err error) {
	if len(c.OS) == 0 {
		return map[string][]snapshot.Node{}, nil, nil
	}
	nodes, err := snapshot.ReadNodesFile(c.Cluster.Nodes)
	if err != nil {
		return nil, nil, stepErr(StepNodes, err)
	}
	byOS, unclaimed, err = AssignNodes(c, nodes)
	if err != nil {
		return nil, nil, stepErr(StepNodes, kindError{snapshot.ErrNodes, err})
	}
	return byOS, unclaimed, nil
}

// AssignNodes splits nodes among the operating systems of c: a node goes
// to the OS whose patterns match its host name (config.OS.Matches), else
// to the OS without patterns, if there is one. The result maps an OS name
// to its nodes, in file order. Nodes no OS gets are returned apart; a node
// the patterns of two OSes match is an error.
func AssignNodes(c *config.Config, nodes []snapshot.Node) (byOS map[string][]snapshot.Node, unclaimed []snapshot.Node, err error) {
	byOS = make(map[string][]snapshot.Node)
	catchAll := ""
	for _, o := range c.OS {
		if len(o.Nodes) == 0 {
			catchAll = o.Name
		}
	}
	var errs []error
	for _, n := range nodes {
		var claims []string
		for _, o := range c.OS {
			if o.Matches(n.Host) {
				claims = append(claims, o.Name)
			}
		}
		switch {
		case len(claims) == 1:
			byOS[claims[0]] = append(byOS[claims[0]], n)
		case len(claims) > 1:
			where := n.Source
			if where == "" {
				where = n.Host
			}
			errs = append(errs, fmt.Errorf("%s: node %s is listed by several operating systems: %s", where, n.Host, strings.Join(claims, ", ")))
		case catchAll != "":
			byOS[catchAll] = append(byOS[catchAll], n)
		default:
			unclaimed = append(unclaimed, n)
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return byOS, unclaimed, nil
}

// AddOSOptions returns what netboot.AddOS needs to (re)install the OS's
// kernel and record from its image.
func AddOSOptions(c *config.Config, o config.OS) netboot.AddOSOptions {
	opts := netboot.AddOSOptions{TFTPBoot: c.Cluster.TFTPBoot, Name: o.Name, Location: o.Location,
		SnapshotDir: o.SnapshotDir, NFSServer: o.NFSServer, Kernel: o.Kernel,
		Style: o.BootStyle, Initramfs: o.Initramfs, NFSOptions: o.NFSOptions}
	if img, ok := c.Image(o.Image); ok {
		opts.ImageRoot = img.Root
	}
	return opts
}

// NodeOptions returns the options netboot.WriteNodeConfigs takes for an
// OS's kernel arguments.
func NodeOptions(n config.Netboot) netboot.NodeOptions {
	return netboot.NodeOptions{RamdiskSize: n.RamdiskSize, Ethernet: n.Ethernet, NISDomain: n.NISDomain, Append: n.Append}
}
