package cluster

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// TestRoutingInRenderedFiles: each node's pxelinux, GRUB and iPXE entries,
// its dhcpd next-server and its replica's exports name its replica (r1),
// and the primary while its replica is down (r2, never updated).
func TestRoutingInRenderedFiles(t *testing.T) {
	base := t.TempDir()
	state := filepath.Join(base, "state")
	doc := fmt.Sprintf(`[cluster]
nfs_server = "10.8.0.2"
[[image]]
name = "deb"
source = "/golden"
root = "/srv/deb/root"
state_dir = %q
[[image.replica]]
name = "r1"
ssh = "root@10.77.0.11"
path = "/data/deb/root"
nodes = ["n00[1-3]"]
[[image.replica]]
name = "r2"
ssh = "root@img2"
address = "10.77.0.12"
nodes = ["n00[4-6]"]
[[os]]
name = "debc"
image = "deb"
boot_style = "nfsroot"
initramfs = "initramfs-tools"
`, state)
	cfg, err := config.Parse("g.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []snapshot.Node
	for i := 1; i <= 7; i++ {
		nodes = append(nodes, snapshot.Node{Host: fmt.Sprintf("n%03d", i), IP: netip.AddrFrom4([4]byte{10, 8, 136, byte(i)}),
			MAC: []byte{0x52, 0x54, 0, 0, 0, byte(i)}})
	}
	if err := saveReplicaState(state, &ReplicaState{Replica: "r1", Generation: 4, LastResult: ResultOK}); err != nil {
		t.Fatal(err)
	}
	byOS, _, err := AssignNodes(cfg, nodes)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := Routes(cfg, byOS)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		server, root, snap string
		fallback           bool
	}
	wants := map[string]want{
		"n001": {"10.77.0.11", "/data/deb/root", "/data/deb/snapshot", false},
		"n004": {"10.8.0.2", "/srv/deb/root", "/srv/deb/snapshot", true}, // r2 down
		"n007": {"10.8.0.2", "/srv/deb/root", "/srv/deb/snapshot", false},
	}
	for host, w := range wants {
		r := routes[host]
		if r.Server != w.server || r.ImageRoot != w.root || r.SnapshotDir != w.snap || r.Fallback != w.fallback {
			t.Errorf("route of %s: %+v, want %+v", host, r, w)
		}
	}

	// The boot entries the netboot step writes, per group.
	rec := netboot.OS{Name: "debc", Location: "/srv/deb", ImageRoot: "/srv/deb/root", SnapshotDir: "/srv/deb/snapshot",
		NFSServer: "10.8.0.2", Kernel: "6.1.0", KernelFile: "debc/vmlinuz", InitrdFile: "debc/initrd.img",
		Style: netboot.StyleNFSRoot, Initramfs: netboot.InitramfsTools}
	img, _ := cfg.Image("deb")
	j := &job{cfg: cfg, img: img}
	groups, err := j.routeGroups(rec, cfg.OS[0], byOS["debc"])
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 {
		t.Fatalf("%d boot groups, want 2 (r1, and the primary for r2's nodes and the rest)", len(groups))
	}
	for _, g := range groups {
		if err := g.rec.Validate(); err != nil {
			t.Errorf("group record: %v", err)
		}
		for _, n := range g.nodes {
			w := wants[n.Host]
			if w.server == "" {
				continue
			}
			for name, data := range map[string][]byte{
				"pxelinux": netboot.PXELinuxConfig(g.rec, n, netboot.NodeOptions{}),
				"grub":     netboot.GrubConfig(g.rec, n, netboot.NodeOptions{}),
				"ipxe":     netboot.IPXEScript(g.rec, n, netboot.NodeOptions{}),
			} {
				for _, s := range []string{"nfsroot=" + w.server + ":" + w.root + ",", "goldsync.snapshot=" + w.server + ":" + w.snap + "/" + n.Host} {
					if !strings.Contains(string(data), s) {
						t.Errorf("%s of %s lacks %q:\n%s", name, n.Host, s, data)
					}
				}
			}
		}
	}

	// dhcpd: next-server per host.
	next, err := DhcpdNextServers(cfg, nodes)
	if err != nil {
		t.Fatal(err)
	}
	dhcpd := string(netboot.RenderDhcpd(nodes, netboot.DhcpdOptions{NextServer: "10.8.0.1", NextServers: next}))
	for host, server := range map[string]string{"n001": "10.77.0.11", "n004": "10.8.0.2", "n007": "10.8.0.2"} {
		block := dhcpd[strings.Index(dhcpd, "host "+host+" {"):]
		block = block[:strings.Index(block, "\n}\n")]
		if !strings.Contains(block, "next-server "+server+";") {
			t.Errorf("dhcpd host %s: want next-server %s:\n%s", host, server, block)
		}
	}

	// The replica's exports: its image dir, its nodes' snapshots only.
	ex, err := ReplicaExports(cfg, nodes, "r1", "10.8.0.0/16", "")
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, e := range ex {
		out.Write(netboot.RenderExports(e))
	}
	for _, s := range []string{"/data/deb/root 10.8.0.0/16(ro,", "/data/deb/snapshot/n001 10.8.136.1(rw,", "/data/deb/snapshot/n003 10.8.136.3(rw,"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("r1's exports lack %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "n004") || strings.Contains(out.String(), "/srv/deb") {
		t.Errorf("r1's exports name another server's nodes or paths:\n%s", out.String())
	}
	if _, err := ReplicaExports(cfg, nodes, "r9", "", ""); err == nil || !strings.Contains(err.Error(), `no image has a replica "r9"`) {
		t.Errorf("unknown replica: %v", err)
	}
}

func TestReplicaStateDownAndFullCompare(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		st         *ReplicaState
		down, full bool
	}{
		{name: "never tried", st: nil, down: true},
		{name: "never confirmed a generation", st: &ReplicaState{LastResult: ResultOK}, down: true},
		{name: "up to date", st: &ReplicaState{Generation: 3, LastResult: ResultOK, Started: t0, LastAttempt: t0.Add(time.Minute)}},
		{name: "last update failed", st: &ReplicaState{Generation: 3, LastResult: ResultFailed, Started: t0, LastAttempt: t0.Add(time.Minute)}, down: true, full: true},
		{name: "last update never ended", st: &ReplicaState{Generation: 3, LastResult: ResultOK, LastAttempt: t0, Started: t0.Add(time.Hour)}, full: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.st.Down(); got != tt.down {
				t.Errorf("Down() = %v, want %v", got, tt.down)
			}
			if tt.st != nil {
				if got := tt.st.needsFullCompare(); got != tt.full {
					t.Errorf("needsFullCompare() = %v, want %v", got, tt.full)
				}
			}
		})
	}
}
