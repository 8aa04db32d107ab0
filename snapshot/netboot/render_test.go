package netboot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/snapshot"
)

func TestRenderGaneshaGolden(t *testing.T) {
	tests := []struct {
		name string
		opts GaneshaOptions
	}{
		{
			name: "ganesha.conf",
			opts: GaneshaOptions{Exports: []ExportsOptions{{ImageRoot: debian12.ImageRoot, SnapshotDir: debian12.SnapshotDir}}},
		},
		{
			name: "ganesha-per-node.conf",
			opts: GaneshaOptions{
				Exports:       []ExportsOptions{{ImageRoot: debian12.ImageRoot, SnapshotDir: debian12.SnapshotDir, Clients: "10.0.2.0/24", Nodes: []snapshot.Node{qemuNode, node003}}},
				FirstExportID: 10,
			},
		},
		{
			name: "ganesha-two-images.conf",
			opts: GaneshaOptions{Exports: []ExportsOptions{
				{ImageRoot: debian12.ImageRoot, SnapshotDir: debian12.SnapshotDir, Nodes: []snapshot.Node{qemuNode}},
				{ImageRoot: rocky9.ImageRoot, SnapshotDir: rocky9.SnapshotDir, Nodes: []snapshot.Node{node003}, SnapshotClients: "127.0.0.1 admin.cluster"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderGanesha(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.name, got)
		})
	}
}

func TestRenderGaneshaRefuses(t *testing.T) {
	ok := ExportsOptions{ImageRoot: "/d/root", SnapshotDir: "/d/snapshot"}
	tests := []struct {
		name    string
		edit    func(o *GaneshaOptions)
		wantErr string
	}{
		{name: "quote in a path", edit: func(o *GaneshaOptions) { o.Exports[0].ImageRoot = `/d/"root` }, wantErr: "without quotes"},
		{name: "newline in a path", edit: func(o *GaneshaOptions) { o.Exports[0].SnapshotDir = "/d/snap\nshot" }, wantErr: "control characters"},
		{name: "relative path", edit: func(o *GaneshaOptions) { o.Exports[0].ImageRoot = "d/root" }, wantErr: "want an absolute path"},
		{name: "brace in a client", edit: func(o *GaneshaOptions) { o.Exports[0].Clients = "10.0.0.0/8 a}b" }, wantErr: `client "a}b"`},
		{name: "comma in a snapshot client", edit: func(o *GaneshaOptions) { o.Exports[0].SnapshotClients = "a,b" }, wantErr: `client "a,b"`},
		{name: "export ids out of range", edit: func(o *GaneshaOptions) { o.FirstExportID = 65535 }, wantErr: "want 1 to 65535"},
		{name: "nothing", edit: func(o *GaneshaOptions) { o.Exports = nil }, wantErr: "nothing to export"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := GaneshaOptions{Exports: []ExportsOptions{ok}}
			tt.edit(&o)
			if _, err := RenderGanesha(o); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("RenderGanesha = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// ganeshaProblem matches the log lines of a config ganesha did not take
// whole: parse errors, unknown parameters, refused exports. The RADOS
// warning is about a library, not the config.
var ganeshaProblem = regexp.MustCompile(`:(CONFIG|EXPORT|FSAL) :(CRIT|MAJ|WARN|FATAL) :.*`)

// TestRenderGaneshaParses runs the real ganesha.nfsd on the rendered
// config, in private network and mount namespaces (root only), and checks
// its log: the config parsed and every export was created. Ganesha then
// stops on its own (no rpcbind in the empty network namespace).
func TestRenderGaneshaParses(t *testing.T) {
	bin, err := exec.LookPath("ganesha.nfsd")
	if err != nil {
		t.Skip("ganesha.nfsd not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (unshare, ganesha)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	dir := t.TempDir()
	img, snap := filepath.Join(dir, "root"), filepath.Join(dir, "snapshot")
	nodes := []snapshot.Node{qemuNode, node003}
	for _, d := range []string{img, filepath.Join(snap, "node001"), filepath.Join(snap, "node003"), filepath.Join(dir, "recovery")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		opts GaneshaOptions
	}{
		{name: "whole snapshot dir", opts: GaneshaOptions{Exports: []ExportsOptions{{ImageRoot: img, SnapshotDir: snap}}}},
		{name: "per node", opts: GaneshaOptions{Exports: []ExportsOptions{{ImageRoot: img, SnapshotDir: snap, Clients: "10.0.2.0/24 127.0.0.1", Nodes: nodes, SnapshotClients: "127.0.0.1"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := RenderGanesha(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			// Keep ganesha's state out of the host's /var/lib/nfs/ganesha.
			conf = append(conf, "\nNFSv4 {\n\tRecoveryBackend = fs;\n\tRecoveryRoot = \""+filepath.Join(dir, "recovery")+"\";\n}\n"...)
			cf, logf := filepath.Join(dir, "ganesha.conf"), filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".log")
			if err := os.WriteFile(cf, conf, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, unshare, "-n", "-m", bin, "-F", "-f", cf, "-L", logf, "-p", filepath.Join(dir, "ganesha.pid"), "-N", "NIV_EVENT")
			out, _ := cmd.CombinedOutput() // it exits non-zero without rpcbind
			log, err := os.ReadFile(logf)
			if err != nil {
				t.Fatalf("no ganesha log: %v (output %s)", err, out)
			}
			if !strings.Contains(string(log), "Configuration file successfully parsed") {
				t.Fatalf("ganesha did not parse the config:\n%s", log)
			}
			for _, line := range ganeshaProblem.FindAllString(string(log), -1) {
				if !strings.Contains(line, "RADOS") {
					t.Errorf("ganesha: %s", line)
				}
			}
			if t.Failed() {
				t.Logf("config:\n%s", conf)
			}
		})
	}
}

// TestRenderDhcpdParses runs ISC dhcpd -t on a dhcpd.conf including the
// rendered host declarations at its top level. dhcpd is not installed
// here by default: set DHCPD to its path (apt-get download
// isc-dhcp-server and dpkg-deb -x it) or put it on $PATH.
func TestRenderDhcpdParses(t *testing.T) {
	bin := os.Getenv("DHCPD")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("dhcpd"); err != nil {
			t.Skip("dhcpd not installed (set DHCPD=/path/to/dhcpd)")
		}
	}
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts.conf")
	if err := os.WriteFile(hosts, RenderDhcpd([]snapshot.Node{node001, node003}, DhcpdOptions{NextServer: "10.8.0.2"}), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "dhcpd.conf")
	main := "ddns-update-style none;\nsubnet 10.8.0.0 netmask 255.255.0.0 {\n}\ninclude \"" + hosts + "\";\n"
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-cf", conf).CombinedOutput()
	if err != nil {
		t.Errorf("dhcpd -t: %v\n%s", err, out)
	}
}
