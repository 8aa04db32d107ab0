package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const minimal = `[cluster]
nfs_server = "10.8.0.2"

[[image]]
name = "rhel5"
source = "root@node004:/"
root = "/diskless/i386/RHEL5-AS/root"
os = "rhel5compute"
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse("g.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:    "g.toml",
		Cluster: Cluster{TFTPBoot: "/tftpboot", Nodes: "/etc/goldsync/nodes", NFSServer: "10.8.0.2"},
		Images: []Image{{
			Name: "rhel5", Source: "root@node004:/", Root: "/diskless/i386/RHEL5-AS/root",
			Excludes: DefaultExcludes, StateDir: "/diskless/i386/RHEL5-AS/.root.goldsync",
			Rsh: "ssh", Streams: 1, KeepGenerations: 10, Line: 4,
		}},
		OS: []OS{{
			Name: "rhel5compute", Image: "rhel5", Location: "/diskless/i386/RHEL5-AS",
			SnapshotDir: "/diskless/i386/RHEL5-AS/snapshot", NFSServer: "10.8.0.2", Line: 8,
		}},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseEverything(t *testing.T) {
	const doc = `[cluster]
name = "hpc1"
tftpboot = "/srv/tftp"
nodes = "/etc/goldsync/nodes.hpc1"
nfs_server = "server"

[netboot]
ramdisk_size = 28753
ethernet = "eth1"
nis_domain = "nis"
append = "console=ttyS0,115200n8r quiet"

[[image]]
name = "rhel5"
source = "/srv/golden"
root = "/diskless/rhel5/root"
excludes = ["/home/*", "+ /tmp/keep"]
default_excludes = false
state_dir = "/var/lib/goldsync/rhel5"
retention = "off"
keep_generations = 3
keep_generations_for = "48h"
max_delete = -1
no_delete = true
rsh = "ssh -p 2222"
agent_path = "/opt/goldsync-agent"
streams = 4
timeout = "90s"

[[os]]
name = "gpu"
image = "rhel5"
nodes = ["gpu[0-9]*", "viz01"]
kernel = "2.6.18-164.el5"
append = "console=ttyS1"
snapshot_dir = "/diskless/rhel5/snap-gpu"

[[os]]
name = "compute"
image = "rhel5"
nfs_server = "10.8.0.3"
boot_style = "nfsroot"
initramfs = "initramfs-tools"
nfs_options = "tcp,v3,nolock,acregmin=3,acregmax=3"
`
	c, err := Parse("g.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	nb := Netboot{RamdiskSize: 28753, Ethernet: "eth1", NISDomain: "nis", Append: "console=ttyS0,115200n8r quiet"}
	gpuNB := nb
	gpuNB.Append = "console=ttyS1"
	want := &Config{
		Path:    "g.toml",
		Cluster: Cluster{Name: "hpc1", TFTPBoot: "/srv/tftp", Nodes: "/etc/goldsync/nodes.hpc1", NFSServer: "server"},
		Netboot: nb,
		Images: []Image{{
			Name: "rhel5", Source: "/srv/golden", Root: "/diskless/rhel5/root",
			Excludes: []string{"/home/*", "+ /tmp/keep"}, StateDir: "/var/lib/goldsync/rhel5",
			Retention: -1, MaxDelete: -1, NoDelete: true, Rsh: "ssh -p 2222", AgentPath: "/opt/goldsync-agent",
			Streams: 4, Timeout: 90 * time.Second, KeepGenerations: 3, KeepGenerationsFor: 48 * time.Hour, Line: 13,
		}},
		OS: []OS{
			{Name: "gpu", Image: "rhel5", Kernel: "2.6.18-164.el5", Nodes: []string{"gpu[0-9]*", "viz01"},
				Location: "/diskless/rhel5", SnapshotDir: "/diskless/rhel5/snap-gpu", NFSServer: "server",
				Netboot: gpuNB, Line: 30},
			{Name: "compute", Image: "rhel5", Location: "/diskless/rhel5", SnapshotDir: "/diskless/rhel5/snapshot",
				NFSServer: "10.8.0.3", BootStyle: "nfsroot", Initramfs: "initramfs-tools", NFSOptions: "tcp,v3,nolock,acregmin=3,acregmax=3",
				Netboot: nb, Line: 38},
		},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseExport(t *testing.T) {
	c, err := Parse("g.toml", []byte("[export]\nallow = [\"10.1.0.0/16\", \"192.168.7.12\", \"fd00::/8\"]\nserve_root_only = true\nmax_per_ip = 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Export{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.168.7.12/32"),
		netip.MustParsePrefix("fd00::/8")}, ServeRootOnly: true, MaxPerIP: 2}
	if diff := cmp.Diff(want, c.Export, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("export (-want +got):\n%s", diff)
	}
	c, err = Parse("g.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Export.Allow != nil {
		t.Errorf("export allow without the key = %v, want nil (the export's default)", c.Export.Allow)
	}
}

// TestParseErrors checks that each mistake is reported at its line.
func TestParseErrors(t *testing.T) {
	img := func(extra string) string {
		return "[cluster]\nnfs_server = \"srv\"\n[[image]]\nname = \"a\"\nsource = \"node4:/\"\nroot = \"/d/a/root\"\n" + extra
	}
	tests := []struct {
		name string
		doc  string
		want []string // each must appear in the error
	}{
		{name: "bad boot style", doc: img("[[os]]\nname = \"x\"\nimage = \"a\"\nboot_style = \"nfs\"\n"),
			want: []string{`g.toml:7: OS x: boot style "nfs": want nfsroot or disklessrc`}},
		{name: "klibc has no actimeo", doc: img("[[os]]\nname = \"x\"\nimage = \"a\"\ninitramfs = \"initramfs-tools\"\nnfs_options = \"tcp,actimeo=10\"\n"),
			want: []string{`g.toml:7: OS x: NFS option "actimeo=10": klibc's nfsmount`}},
		{name: "generator with disklessrc", doc: img("[[os]]\nname = \"x\"\nimage = \"a\"\nboot_style = \"disklessrc\"\ninitramfs = \"dracut\"\n"),
			want: []string{`g.toml:7: OS x: initramfs "dracut" given for boot style disklessrc`}},
		{name: "unknown key with suggestion", doc: img("streamz = 2\n"),
			want: []string{"g.toml:7: unknown key streamz in [[image]] (did you mean streams?)"}},
		{name: "unknown table", doc: "[clutser]\nname = \"x\"\n",
			want: []string{"g.toml:1: unknown key clutser at the top level (did you mean cluster?)"}},
		{name: "unknown key in cluster", doc: "[cluster]\ntftp_boot = \"/tftpboot\"\n",
			want: []string{"g.toml:2: unknown key tftp_boot in [cluster] (did you mean tftpboot?)"}},
		{name: "every unknown key", doc: img("a1 = 1\nb2 = 2\n"),
			want: []string{"g.toml:7: unknown key a1", "g.toml:8: unknown key b2"}},
		{name: "wrong type", doc: img("streams = \"four\"\n"),
			want: []string{"g.toml:7: image.streams: got a string, want an integer"}},
		{name: "syntax error", doc: "[cluster\n",
			want: []string{"g.toml:1: "}},
		{name: "bad duration", doc: img("retention = \"1 day\"\n"),
			want: []string{`g.toml:7: image a: retention "1 day": want a duration`}},
		{name: "negative retention", doc: img("retention = \"-1h\"\n"),
			want: []string{`g.toml:7: image a: retention "-1h" is negative`}},
		{name: "bad keep_generations_for", doc: img("keep_generations_for = \"2 weeks\"\n"),
			want: []string{`g.toml:7: image a: keep_generations_for "2 weeks": want a duration`}},
		{name: "bad export allow", doc: "[export]\nallow = [\"10.0.0.0/8\",\n  \"10.1.2.3/16\", \"example.com\"]\n",
			want: []string{`g.toml:2: export allow "10.1.2.3/16": host bits set (did you mean 10.1.0.0/16?)`,
				`g.toml:2: export allow "example.com": want a CIDR prefix`}},
		{name: "unknown key in export", doc: "[export]\nallow_from = []\n",
			want: []string{"g.toml:2: unknown key allow_from in [export]"}},
		{name: "bad keep_generations", doc: img("keep_generations = -5\n"),
			want: []string{`g.toml:7: image a: keep_generations -5: want a count`}},
		{name: "bad timeout", doc: img("timeout = \"soon\"\n"),
			want: []string{`g.toml:7: image a: timeout "soon"`}},
		{name: "relative root", doc: "[[image]]\nname = \"a\"\nsource = \"/g\"\nroot = \"diskless/root\"\n",
			want: []string{`g.toml:4: root "diskless/root" is relative`}},
		{name: "unclean root", doc: "[[image]]\nname = \"a\"\nsource = \"/g\"\nroot = \"/diskless//root/\"\n",
			want: []string{`g.toml:4: root "/diskless//root/" is not clean: write /diskless/root`}},
		{name: "relative local source", doc: "[[image]]\nname = \"a\"\nsource = \"golden\"\nroot = \"/d/root\"\n",
			want: []string{`g.toml:3: source "golden" is relative`}},
		{name: "relative remote path", doc: "[[image]]\nname = \"a\"\nsource = \"node4:root\"\nroot = \"/d/root\"\n",
			want: []string{`g.toml:3: image a: source "node4:root": the path on node4 must be absolute`}},
		{name: "missing source and root", doc: "[[image]]\nname = \"a\"\n",
			want: []string{"g.toml:1: image a: source not set", "g.toml:1: root not set"}},
		{name: "state dir inside image", doc: img("state_dir = \"/d/a/root/.goldsync\"\n"),
			want: []string{"g.toml:7: image a: state_dir /d/a/root/.goldsync is inside the image /d/a/root"}},
		{name: "state dir is the image", doc: img("state_dir = \"/d/a/root\"\n"),
			want: []string{"g.toml:7: image a: state_dir /d/a/root is inside the image"}},
		{name: "relative state dir", doc: img("state_dir = \"state\"\n"),
			want: []string{`g.toml:7: state_dir "state" is relative`}},
		{name: "duplicate image", doc: img("[[image]]\nname = \"a\"\nsource = \"/g\"\nroot = \"/e/root\"\n"),
			want: []string{"g.toml:8: image a defined twice (first at g.toml:4)"}},
		{name: "same root", doc: img("[[image]]\nname = \"b\"\nsource = \"/g\"\nroot = \"/d/a/root\"\n"),
			want: []string{"g.toml:10: image b: root /d/a/root is also image a's root"}},
		{name: "nested roots", doc: img("[[image]]\nname = \"b\"\nsource = \"/g\"\nroot = \"/d/a/root/b\"\n"),
			want: []string{"g.toml:10: image b: root /d/a/root/b and image a's root /d/a/root are nested"}},
		{name: "other image's state dir inside", doc: img("[[image]]\nname = \"b\"\nsource = \"/g\"\nroot = \"/e/root\"\nstate_dir = \"/d/a/root/st\"\n"),
			want: []string{"g.toml:11: image b's state_dir /d/a/root/st is inside image a"}},
		{name: "tftpboot inside image", doc: "[cluster]\ntftpboot = \"/d/a/root/tftpboot\"\n[[image]]\nname = \"a\"\nsource = \"/g\"\nroot = \"/d/a/root\"\n",
			want: []string{"g.toml:2: tftpboot /d/a/root/tftpboot is inside image a"}},
		{name: "bad image name", doc: "[[image]]\nname = \"a b\"\nsource = \"/g\"\nroot = \"/d/root\"\n",
			want: []string{`g.toml:2: image name "a b": only letters`}},
		{name: "bad exclude", doc: img("excludes = [\n  \"/ok/*\",\n  \"\",\n]\n"),
			want: []string{"g.toml:7: image a: excludes:"}},
		{name: "max delete", doc: img("max_delete = -5\n"),
			want: []string{"g.toml:7: image a: max_delete -5"}},
		{name: "streams", doc: img("streams = 1000\n"),
			want: []string{"g.toml:7: image a: streams 1000: want 1 to 64"}},
		{name: "kernel without os", doc: img("kernel = \"5.14.0\"\n"),
			want: []string{"g.toml:7: image a: kernel set but no os"}},
		{name: "no nfs server", doc: "[[image]]\nname = \"a\"\nsource = \"/g\"\nroot = \"/d/root\"\nos = \"c\"\n",
			want: []string{"g.toml:5: OS c: no NFS server"}},
		{name: "bad os name", doc: img("os = \"grub\"\n"),
			want: []string{`g.toml:7: bad OS name "grub": reserved`}},
		{name: "bad kernel", doc: img("os = \"c\"\nkernel = \"5.14 0\"\n"),
			want: []string{`g.toml:7: OS c: kernel version "5.14 0"`}},
		{name: "os of unknown image", doc: img("[[os]]\nname = \"c\"\nimage = \"b\"\n"),
			want: []string{`g.toml:9: [[os]] c: no [[image]] named "b"`}},
		{name: "os without image", doc: img("[[os]]\nname = \"c\"\n"),
			want: []string{"g.toml:7: [[os]] c: image not set"}},
		{name: "os defined twice", doc: img("os = \"c\"\n[[os]]\nname = \"c\"\nimage = \"a\"\nnodes = [\"n1\"]\n"),
			want: []string{"g.toml:7: OS c defined twice (also at g.toml:8)"}},
		{name: "two catch-all os", doc: img("os = \"c\"\n[[os]]\nname = \"d\"\nimage = \"a\"\n"),
			want: []string{"g.toml:7: OS c: nodes not set, and OS d already boots every node"}},
		{name: "bad node pattern", doc: img("[[os]]\nname = \"c\"\nimage = \"a\"\nnodes = [\n  \"n[\",\n]\n"),
			want: []string{`g.toml:10: OS c: bad node pattern "n["`}},
		{name: "bad netboot", doc: img("[netboot]\nramdisk_size = -1\nappend = \"a$b\"\n"),
			want: []string{"g.toml:8: ramdisk size -1 is negative", `g.toml:9: bad kernel argument "a$b"`}},
		{name: "bad os netboot override", doc: img("[[os]]\nname = \"c\"\nimage = \"a\"\nethernet = \"eth 0\"\n"),
			want: []string{`g.toml:10: bad interface "eth 0"`}},
		{name: "snapshot dir inside image", doc: img("[[os]]\nname = \"c\"\nimage = \"a\"\nsnapshot_dir = \"/d/a/root/snap\"\n"),
			want: []string{"g.toml:7: OS c's snapshot_dir /d/a/root/snap is inside image a"}},
		{name: "relative nodes file", doc: "[cluster]\nnodes = \"nodes\"\n",
			want: []string{`g.toml:2: nodes file "nodes" is relative`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("g.toml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a config with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "g.toml" {
				t.Errorf("error is not a *config.Error: %#v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.toml", 0o644, minimal)
	if c, err := Load(good); err != nil || c.Path != good {
		t.Errorf("Load(%s) = %v, %v", good, c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, ErrNoFile) || !strings.Contains(err.Error(), "missing.toml: write one") {
		t.Errorf("Load of a missing file: %v, want ErrNoFile and what to do", err)
	}
	open := write("open.toml", 0o666, minimal)
	if _, err := Load(open); err == nil || !strings.Contains(err.Error(), open+": writable by everyone") {
		t.Errorf("Load of a world-writable file: %v", err)
	}
	bad := write("bad.toml", 0o600, minimal+"bogus = 1\n")
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), bad+":9: unknown key bogus") {
		t.Errorf("Load of a bad file: %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Load of a directory: %v", err)
	}
}

// TestExample keeps dist/goldsync.toml.example loadable, and loadable with
// its commented-out [[os]] in use.
func TestExample(t *testing.T) {
	data, err := os.ReadFile("../dist/goldsync.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("goldsync.toml.example", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Images) != 1 || len(c.OS) != 1 || c.OS[0].Name != "rhel5compute" {
		t.Errorf("example: %+v", c)
	}
	var b strings.Builder
	in := false
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "# [[os]]") {
			in = true
		}
		if in {
			line = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
		}
		b.WriteString(line)
	}
	c, err = Parse("example with os", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OS) != 2 || c.OS[0].Name != "rhel5gpu" || c.OS[0].Netboot.Append != "console=ttyS1,115200n8r" {
		t.Errorf("example with [[os]]: %+v", c.OS)
	}
}

func TestPositions(t *testing.T) {
	const doc = `top = 1
[cluster]
name = "x"
[[image]]
name = "a"
t = {k = 1, in = {z = 2}}
arr = [
  {q = 1},
  {q = 2},
]
[[image]]
"quoted" = 3
a.b = 4
[image.sub]
s = 5
`
	pos := indexPositions([]byte(doc))
	for path, want := range map[string]int{
		"top": 1, "cluster": 2, "cluster.name": 3, "image[0]": 4, "image[0].name": 5,
		"image[0].t.k": 6, "image[0].t.in.z": 6, "image[0].arr[1].q": 9, "image[1]": 11,
		"image[1].quoted": 12, "image[1].a.b": 13, "image[1].sub.s": 15, "image[1].nothing": 11,
		"nothing": 0,
	} {
		if got := pos.line(path); got != want {
			t.Errorf("line(%s) = %d, want %d", path, got, want)
		}
	}
}

// TestDefaultExcludesFollowTheSource: like pull, the default excludes are
// a whole root's, unless default_excludes says otherwise.
func TestDefaultExcludesFollowTheSource(t *testing.T) {
	for _, tt := range []struct {
		source, setting string
		want            bool
	}{
		{"root@node004:/", "", true},
		{"/srv/golden", "", false},
		{"node004:/srv/chroot", "", false},
		{"/srv/golden", "default_excludes = true", true},
		{"node004:/", "default_excludes = false", false},
	} {
		doc := fmt.Sprintf("[[image]]\nname = \"i\"\nsource = %q\nroot = \"/diskless/i/root\"\n%s\n", tt.source, tt.setting)
		c, err := Parse("g.toml", []byte(doc))
		if err != nil {
			t.Fatalf("%s %s: %v", tt.source, tt.setting, err)
		}
		if got := slices.Contains(c.Images[0].Excludes, "/proc/*"); got != tt.want {
			t.Errorf("source %s %s: default excludes %v, want %v", tt.source, tt.setting, got, tt.want)
		}
	}
}

// TestMaxDeleteZeroAsRsync: max_delete = 0 means what --max-delete=0
// means (no deletes); left out, the engine's default limit.
func TestMaxDeleteZeroAsRsync(t *testing.T) {
	for _, tt := range []struct {
		setting  string
		max      int
		noDelete bool
	}{
		{"", 0, false},
		{"max_delete = 0", 0, true},
		{"max_delete = 500", 500, false},
		{"max_delete = -1", -1, false},
	} {
		doc := fmt.Sprintf("[[image]]\nname = \"i\"\nsource = \"node:/\"\nroot = \"/diskless/i/root\"\n%s\n", tt.setting)
		c, err := Parse("g.toml", []byte(doc))
		if err != nil {
			t.Fatalf("%q: %v", tt.setting, err)
		}
		if img := c.Images[0]; img.MaxDelete != tt.max || img.NoDelete != tt.noDelete {
			t.Errorf("%q: MaxDelete %d NoDelete %v, want %d %v", tt.setting, img.MaxDelete, img.NoDelete, tt.max, tt.noDelete)
		}
	}
}
