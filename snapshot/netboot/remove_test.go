package netboot

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/snapshot"
)

// removeSite is a TFTP root with rhel5's record and the configs of
// node001 and node003, and a snapshot directory holding their trees.
func removeSite(t *testing.T) (tftp, snapDir string) {
	t.Helper()
	snapDir = t.TempDir()
	o := rhel5
	o.SnapshotDir = snapDir
	tftp = fakeTFTP(t, o)
	if err := SaveOS(tftp, o); err != nil {
		t.Fatal(err)
	}
	if err := WriteNodeConfigs(tftp, o, []snapshot.Node{node001, node003}, opts003); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"node001", "node003"} {
		if err := os.MkdirAll(filepath.Join(snapDir, h, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tftp, snapDir
}

func TestRemoveNodes(t *testing.T) {
	tests := []struct {
		name      string
		opts      RemoveNodesOptions
		wantHosts []string // removed, in order
		wantLeft  []string // snapshot trees left
		wantErr   error
	}{
		{name: "by host name, configs only", opts: RemoveNodesOptions{Names: []string{"NODE003"}},
			wantHosts: []string{"node003"}, wantLeft: []string{"node001", "node003"}},
		{name: "by address, purged", opts: RemoveNodesOptions{Names: []string{"10.8.136.1"}, Purge: true},
			wantHosts: []string{"node001"}, wantLeft: []string{"node003"}},
		{name: "nodes, purged", opts: RemoveNodesOptions{Nodes: []snapshot.Node{node001, node003}, Purge: true},
			wantHosts: []string{"node001", "node003"}, wantLeft: nil},
		{name: "unknown name removes nothing", opts: RemoveNodesOptions{Names: []string{"node003", "node999"}, Purge: true},
			wantErr: fs.ErrNotExist, wantLeft: []string{"node001", "node003"}},
		{name: "nodes file missing", opts: RemoveNodesOptions{NodesFile: "/nonexistent/nodes"},
			wantErr: fs.ErrNotExist, wantLeft: []string{"node001", "node003"}},
		{name: "nodes file wrong", opts: RemoveNodesOptions{NodesFile: "testdata-wrong"},
			wantErr: snapshot.ErrNodes, wantLeft: []string{"node001", "node003"}},
		{name: "nodes file, purged", opts: RemoveNodesOptions{NodesFile: "testdata-nodes", Purge: true},
			wantHosts: []string{"node001", "node003"}, wantLeft: nil},
		{name: "no config, no snapshot dir", opts: RemoveNodesOptions{Nodes: []snapshot.Node{{IP: node001.IP, Host: "other"}, {IP: netip.MustParseAddr("10.9.9.9"), Host: "lost"}}, Purge: true},
			wantErr: ErrNoSnapshotDir, wantLeft: []string{"node001", "node003"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tftp, snapDir := removeSite(t)
			o := tt.opts
			o.TFTPBoot = tftp
			if strings.HasPrefix(o.NodesFile, "testdata-") {
				lines := map[string]string{"testdata-nodes": "10.8.136.1 node001\n10.8.226.73 node003\n", "testdata-wrong": "not-an-ip node001\n"}
				o.NodesFile = filepath.Join(t.TempDir(), "nodes")
				if err := os.WriteFile(o.NodesFile, []byte(lines[tt.opts.NodesFile]), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := RemoveNodes(o)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("RemoveNodes: %v, want %v", err, tt.wantErr)
			}
			var hosts []string
			for _, r := range got {
				hosts = append(hosts, r.Node.Host)
				if r.OS != rhel5.Name {
					t.Errorf("%s: OS %q, want %q", r.Node.Host, r.OS, rhel5.Name)
				}
				if want := filepath.Join(snapDir, r.Node.Host); o.Purge && r.Snapshot != want {
					t.Errorf("%s: snapshot %q, want %q", r.Node.Host, r.Snapshot, want)
				}
			}
			if diff := cmp.Diff(tt.wantHosts, hosts); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			var left []string
			ents, _ := os.ReadDir(snapDir)
			for _, e := range ents {
				left = append(left, e.Name())
			}
			if diff := cmp.Diff(tt.wantLeft, left); diff != "" {
				t.Errorf("snapshots left (-want +got):\n%s", diff)
			}
			cfgs, err := ListNodeConfigs(tftp)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cfgs {
				if slices.Contains(hosts, c.Snapshot) {
					t.Errorf("%s still has its config %s", c.Snapshot, c.File)
				}
			}
			if tt.wantErr != nil && len(cfgs) != 2 {
				t.Errorf("%d configs left after a refused removal, want 2", len(cfgs))
			}
		})
	}
}

// TestRemoveNodesWhich checks that RemoveNodes refuses to guess which
// nodes: names and a nodes file, or none.
func TestRemoveNodesWhich(t *testing.T) {
	tftp, _ := removeSite(t)
	for _, o := range []RemoveNodesOptions{{TFTPBoot: tftp}, {TFTPBoot: tftp, Names: []string{"node001"}, NodesFile: "nodes"}} {
		if got, err := RemoveNodes(o); err == nil || got != nil {
			t.Errorf("RemoveNodes(%+v) = %v, %v; want an error", o, got, err)
		}
	}
	if cfgs, _ := ListNodeConfigs(tftp); len(cfgs) != 2 {
		t.Errorf("%d configs left, want 2", len(cfgs))
	}
}

func TestDhcpdOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts DhcpdOptions
		want string // in the error; "" for none
	}{
		{name: "defaults", opts: DhcpdOptions{BIOSFilename: DefaultDHCPFilename, EFIFilename: DefaultEFIFilename}},
		{name: "next server", opts: DhcpdOptions{NextServer: "10.8.0.2"}},
		{name: "bad next server", opts: DhcpdOptions{NextServer: "10.8.0.2; evil"}, want: "next server"},
		{name: "quote in filename", opts: DhcpdOptions{BIOSFilename: `a"b`}, want: "BIOS filename"},
		{name: "newline in EFI filename", opts: DhcpdOptions{EFIFilename: "a\nb"}, want: "EFI filename"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if (err != nil) != (tt.want != "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestCheckClients(t *testing.T) {
	for clients, ok := range map[string]bool{
		"":                            true,
		"10.8.0.0/16 *.cluster admin": true,
		"10.8.0.0/16(rw)":             false,
		"a,b":                         false,
		"x}":                          false,
	} {
		if err := CheckClients(clients); (err == nil) != ok {
			t.Errorf("CheckClients(%q): %v, want ok %v", clients, err, ok)
		}
	}
}

func TestFormatLists(t *testing.T) {
	o2 := rhel5
	o2.Name, o2.Style, o2.Initramfs, o2.NFSOptions = "debian12", StyleNFSRoot, InitramfsTools, "vers=3"
	got := string(FormatOSList([]OS{rhel5, o2}))
	for _, want := range []string{"Description: rhel5compute\nProtocol: NFS\n", "\n\nDescription: debian12\n", "Initramfs: initramfs-tools\nNFS options: vers=3\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("FormatOSList lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "Initramfs:") != 1 {
		t.Errorf("FormatOSList: an Initramfs line for a disklessrc OS:\n%s", got)
	}
	cfgs := []NodeConfig{{IP: node003.IP, Snapshot: "node003", OS: "rhel5compute", File: "linux-install/pxelinux.cfg/0A08E249", MAC: "00:21:5E:40:64:5C"}}
	nodes, err := snapshot.ParseNodes("list", strings.NewReader(string(FormatNodeList(cfgs))))
	if err != nil || len(nodes) != 1 || nodes[0].Host != "node003" || nodes[0].MAC.String() != "00:21:5e:40:64:5c" {
		t.Errorf("FormatNodeList is not a nodes file: %v %v", nodes, err)
	}
	if n := NodesBooting(append(cfgs, NodeConfig{OS: "other"}), "rhel5compute"); n != 1 {
		t.Errorf("NodesBooting = %d, want 1", n)
	}
}
