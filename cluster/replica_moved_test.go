package cluster_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// TestReplicaBuildRemovesMovedNodes: a replica's build removes the boot
// files it holds for nodes of the image's OSes that are not its nodes any
// more, and leaves those of other images' OSes alone.
func TestReplicaBuildRemovesMovedNodes(t *testing.T) {
	dir := t.TempDir()
	tftp := filepath.Join(dir, "tftpboot")
	type cfgFile struct {
		host, os string
		ip       netip.Addr
	}
	files := []cfgFile{
		{"node001", "rhel9compute", netip.MustParseAddr("10.8.136.1")},
		{"node002", "rhel9login", netip.MustParseAddr("10.8.136.2")},
		{"node003", "debian12", netip.MustParseAddr("10.8.136.3")}, // another image's OS
	}
	for _, f := range files {
		n := snapshot.Node{Host: f.host, IP: f.ip}
		for _, p := range netboot.NodeConfigPaths(n) {
			put(t, filepath.Join(tftp, p),
				"DEFAULT "+f.os+"\nLABEL "+f.os+"\n  APPEND root=/dev/nfs SNAPSHOT="+f.host+"\n")
		}
	}
	job := &cluster.ReplicaJob{Image: "rhel9", Root: filepath.Join(dir, "root"), StateDir: filepath.Join(dir, "state"),
		TFTPBoot: tftp, ImageOS: []string{"rhel9compute", "rhel9login"}}
	rep, err := cluster.BuildReplica(context.Background(), job, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rep.Removed)
	if !slices.Equal(rep.Removed, []string{"node001", "node002"}) {
		t.Errorf("removed %v, want node001 and node002", rep.Removed)
	}
	for _, f := range files {
		for _, p := range netboot.NodeConfigPaths(snapshot.Node{Host: f.host, IP: f.ip}) {
			_, err := os.Stat(filepath.Join(tftp, p))
			if kept := err == nil; kept != (f.os == "debian12") {
				t.Errorf("%s (%s): %s kept %v", f.host, f.os, p, kept)
			}
		}
	}
}
