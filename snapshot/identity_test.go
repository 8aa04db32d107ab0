package snapshot

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestIsIdentityPath(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"etc/hostname", true},
		{"etc/machine-id", true},
		{"etc/fstab", true},
		{"etc/ssh/ssh_host_ed25519_key", true},
		{"etc/ssh/ssh_host_rsa_key.pub", true},
		{"etc/ssh/ssh_host_key", false}, // SSH protocol 1: not made
		{"etc/ssh/sshd_config", false},
		{"etc/ssh/ssh_host_Rsa_key", false},
		{"etc/ssh/sub/ssh_host_rsa_key", false},
		{"etc/hostname.bak", false},
		{"var/etc/hostname", false},
	}
	for _, tt := range tests {
		if got := IsIdentityPath(tt.path); got != tt.want {
			t.Errorf("IsIdentityPath(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// identityEnv is an image whose golden node has its own identity: keys
// of two types, hostname, machine-id and an fstab with disks.
func identityEnv(t *testing.T, nodes int) *env {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen")
	}
	e := newEnv(t, nodes)
	writeTree(t, e.image, map[string]string{
		"etc/ssh/ssh_host_ed25519_key":     "golden ed25519\n",
		"etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA golden\n",
		"etc/ssh/ssh_host_ecdsa_key":       "golden ecdsa\n",
		"etc/ssh/ssh_host_ecdsa_key.pub":   "ecdsa-sha2-nistp256 AAAA golden\n",
		"etc/hostname":                     "golden\n",
		"etc/machine-id":                   "0123456789abcdef0123456789abcdef\n",
		"etc/fstab":                        "/dev/sda1 / ext4 defaults 0 1\n",
	})
	// The golden node's identity is listed too: still never copied.
	e.items = mustItems(t, smallList+"/etc/hostname\n/etc/machine-id\n/etc/fstab\n")
	return e
}

var machineID = regexp.MustCompile(`^[0-9a-f]{32}\n$`)

func TestBuildIdentity(t *testing.T) {
	e := identityEnv(t, 2)
	// A dry run counts what it would create and writes nothing.
	res := e.build(t, func(o *BuildOptions) { o.DryRun = true })
	if want := 2 * (3 + 2*2); res.Totals.Identity != want {
		t.Errorf("dry run: identity files to create %d, want %d", res.Totals.Identity, want)
	}
	if _, err := os.Lstat(e.snap); err == nil {
		t.Errorf("dry run made %s", e.snap)
	}
	res = e.build(t)
	if want := 2 * (3 + 2*2); res.Totals.Identity != want {
		t.Errorf("identity files created %d, want %d", res.Totals.Identity, want)
	}
	ids := map[string]bool{}
	for _, n := range e.nodes {
		if got := readFile(t, e.node(n.Host, "etc/hostname")); got != n.Host+"\n" {
			t.Errorf("%s: hostname %q", n.Host, got)
		}
		id := readFile(t, e.node(n.Host, "etc/machine-id"))
		if !machineID.MatchString(id) || id == "0123456789abcdef0123456789abcdef\n" || ids[id] {
			t.Errorf("%s: machine-id %q: want 32 new random hex digits", n.Host, id)
		}
		ids[id] = true
		fstab := readFile(t, e.node(n.Host, "etc/fstab"))
		for _, line := range strings.Split(strings.TrimSpace(fstab), "\n") {
			if !strings.HasPrefix(line, "#") {
				t.Errorf("%s: fstab has a mount line %q", n.Host, line)
			}
		}
		if !strings.Contains(fstab, "read-only") || !strings.Contains(fstab, "NFS") {
			t.Errorf("%s: fstab does not say the root is NFS read-only:\n%s", n.Host, fstab)
		}
		for _, typ := range []string{"ed25519", "ecdsa"} {
			key := e.node(n.Host, "etc/ssh/ssh_host_"+typ+"_key")
			priv, pub := readFile(t, key), readFile(t, key+".pub")
			if !strings.Contains(priv, "PRIVATE KEY") || !strings.HasSuffix(pub, " root@"+n.Host+"\n") {
				t.Errorf("%s: %s key pair not made by ssh-keygen: %q / %q", n.Host, typ, priv, pub)
			}
			out, err := exec.Command("ssh-keygen", "-y", "-f", key).Output()
			if err != nil || !strings.HasPrefix(pub, strings.TrimSpace(string(out))) {
				t.Errorf("%s: %s public key does not match the private one (%v)", n.Host, typ, err)
			}
		}
		for p, want := range map[string]uint32{
			"etc/machine-id": 0o444, "etc/hostname": 0o644, "etc/fstab": 0o644,
			"etc/ssh/ssh_host_ed25519_key": 0o600, "etc/ssh/ssh_host_ed25519_key.pub": 0o644,
		} {
			var st unix.Stat_t
			if err := unix.Lstat(e.node(n.Host, p), &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode&0o7777 != want || st.Mode&unix.S_IFMT != unix.S_IFREG {
				t.Errorf("%s: %s mode %o, want a file of mode %o", n.Host, p, st.Mode, want)
			}
			if os.Geteuid() == 0 && (st.Uid != 0 || st.Gid != 0) {
				t.Errorf("%s: %s owned by %d:%d, want root", n.Host, p, st.Uid, st.Gid)
			}
		}
	}

	// A node edits its hostname, the golden node gets new keys and a new
	// machine-id: a rebuild changes none of the nodes' identity.
	before := readFile(t, e.node("node002", "etc/ssh/ssh_host_ed25519_key"))
	id1 := readFile(t, e.node("node001", "etc/machine-id"))
	writeFile(t, e.node("node001", "etc/hostname"), "renamed\n")
	writeTree(t, e.image, map[string]string{
		"etc/ssh/ssh_host_ed25519_key": "golden ed25519, new\n",
		"etc/machine-id":               "fedcba9876543210fedcba9876543210\n",
	})
	res = e.build(t)
	if res.Totals.Identity != 0 || res.Totals.Conflicts != 0 || res.Totals.Updated != 0 {
		t.Errorf("rebuild: totals %+v, conflicts %v; want no identity created, nothing updated", res.Totals, res.Conflicts)
	}
	if got := readFile(t, e.node("node001", "etc/hostname")); got != "renamed\n" {
		t.Errorf("node's own hostname overwritten: %q", got)
	}
	if got := readFile(t, e.node("node002", "etc/ssh/ssh_host_ed25519_key")); got != before {
		t.Errorf("node's key changed by a rebuild")
	}
	if got := readFile(t, e.node("node001", "etc/machine-id")); got != id1 {
		t.Errorf("machine-id changed by a rebuild: %q, was %q", got, id1)
	}
}

// A golden key already copied into a snapshot (by an older goldsync) is
// kept, with a notice saying how to replace it.
func TestBuildIdentityGoldenKeyNotice(t *testing.T) {
	e := identityEnv(t, 1)
	writeTree(t, filepath.Join(e.snap, "node001"), map[string]string{
		"etc/ssh/ssh_host_ed25519_key":     "golden ed25519\n",
		"etc/ssh/ssh_host_ed25519_key.pub": "ssh-ed25519 AAAA golden\n",
	})
	res := e.build(t)
	if got := readFile(t, e.node("node001", "etc/ssh/ssh_host_ed25519_key")); got != "golden ed25519\n" {
		t.Errorf("existing key replaced: %q", got)
	}
	found := false
	for _, n := range res.Notices {
		found = found || strings.Contains(n, "node001: /etc/ssh/ssh_host_ed25519_key is the golden node's")
	}
	if !found {
		t.Errorf("notices %q lack one about the golden key", res.Notices)
	}
	if want := 3 + 2; res.Totals.Identity != want {
		t.Errorf("identity created %d, want %d (the ecdsa pair and three files)", res.Totals.Identity, want)
	}
}

// A symlink a node planted where an identity file goes is never followed
// or replaced; one planted in place of etc/ refuses the node's identity.
func TestBuildIdentityPlantedSymlinks(t *testing.T) {
	e := identityEnv(t, 2)
	outside := filepath.Join(e.dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(outside, "victim")
	writeFile(t, victim, "keep me\n")
	if err := os.MkdirAll(e.node("node001", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, e.node("node001", "etc/hostname")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, e.node("node001", "etc/machine-id")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.node("node002", ""), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, e.node("node002", "etc")); err != nil {
		t.Fatal(err)
	}
	res, _ := Build(t.Context(), BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items})
	if got := readFile(t, victim); got != "keep me\n" {
		t.Errorf("symlink target written: %q", got)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Errorf("files written through node002's etc symlink: %v", ents)
	}
	for _, p := range []string{"etc/hostname", "etc/machine-id"} {
		if fi, err := os.Lstat(e.node("node001", p)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("node001's %s replaced: %v, %v", p, fi, err)
		}
	}
	if got := readFile(t, e.node("node001", "etc/fstab")); !strings.HasPrefix(got, "# /etc/fstab of diskless node node001") {
		t.Errorf("node001's fstab not made: %q", got)
	}
	if res == nil || res.Nodes[1].Failed == 0 {
		t.Errorf("node002 with etc -> outside: result %+v, want failures", res)
	}
}

func TestBootList(t *testing.T) {
	files, err := ParseFiles("files", strings.NewReader("/etc/ssh/\n/etc/resolv.conf\n/var/lib/\n/etc/missing\n/etc/a$b\n"))
	if err != nil {
		t.Fatal(err)
	}
	rwtab, err := ParseRwtab("rwtab", strings.NewReader("empty /tmp/\ndirs /var/cache/\nfiles /etc/adjtime\n"))
	if err != nil {
		t.Fatal(err)
	}
	state, err := ParseStatetab("statetab", strings.NewReader("/var/lib/dhclient/\n/etc/lvm/cache/\n"))
	if err != nil {
		t.Fatal(err)
	}
	items, _ := MergeLists(files, rwtab, state)
	have := map[string]bool{ // path -> is a directory
		"etc/ssh": true, "etc/resolv.conf": false, "var/lib": true, "var/lib/dhclient": true,
		"tmp": true, "var/cache": true, "etc/adjtime": false, "etc/lvm/cache": true,
		"etc/hostname": false, "etc/machine-id": false, "etc/fstab": false,
		"etc/ssh/ssh_host_ed25519_key": false, "etc/ssh/ssh_host_ed25519_key.pub": false,
		"etc/a$b": false,
	}
	exists := func(p string) (bool, bool) { dir, ok := have[p]; return ok, dir }
	identity := []string{"etc/hostname", "etc/machine-id", "etc/fstab", "etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub"}
	entries, notices := BootList(items, identity, exists)
	got := string(FormatBootList(entries))
	want := bootListHeader + `bind /etc/adjtime
bind /etc/fstab
bind /etc/hostname
bind /etc/lvm/cache/
bind /etc/machine-id
bind /etc/resolv.conf
bind /etc/ssh/
empty /tmp/
dirs /var/cache/
bind /var/lib/
bind /var/lib/dhclient/
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("boot list (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(got, "# Generated by goldsync") {
		t.Errorf("first line does not say it is generated")
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "/etc/a$b: left out of the boot list") {
		t.Errorf("notices %q, want one about /etc/a$b", notices)
	}
}

func TestBuildBootList(t *testing.T) {
	e := newEnv(t, 4)
	writeTree(t, e.image, map[string]string{"tmp/": "", "var/cache/man/": "", "var/cache/man/index.db": "x"})
	rw, err := ParseRwtab("rwtab", strings.NewReader("empty /tmp/\ndirs /var/cache/\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.items, _ = MergeLists(e.items, rw)
	// node002 planted a symlink in place of .goldsync, node003 a
	// directory in place of boot.list.
	outside := filepath.Join(e.dir, "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.node("node002", ""), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, e.node("node002", ".goldsync")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.node("node003", ".goldsync/boot.list"), 0o755); err != nil {
		t.Fatal(err)
	}
	// node004 planted boot.list -> a file outside its snapshot.
	victim := filepath.Join(outside, "..", "victim")
	writeFile(t, victim, "keep me\n")
	if err := os.MkdirAll(e.node("node004", ".goldsync"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, e.node("node004", BootListPath)); err != nil {
		t.Fatal(err)
	}
	res, err := Build(t.Context(), BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items, SSHKeygen: "/bin/false"})
	if err == nil {
		t.Error("no error for node003's boot.list directory")
	}
	want := bootListHeader + `bind /etc/fstab
bind /etc/hostname
bind /etc/machine-id
bind /etc/resolv.conf
bind /etc/ssh/
empty /tmp/
dirs /var/cache/
bind /var/log/
`
	if got := readFile(t, victim); got != "keep me\n" {
		t.Errorf("written through node004's boot.list symlink: %q", got)
	}
	if fi, err := os.Lstat(e.node("node004", BootListPath)); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("node004's boot.list: %v, %v; want the symlink replaced by a file", fi, err)
	}
	for _, host := range []string{"node001", "node002", "node004"} {
		if diff := cmp.Diff(want, readFile(t, e.node(host, BootListPath))); diff != "" {
			t.Errorf("%s: boot list (-want +got):\n%s", host, diff)
		}
		if fi, err := os.Lstat(e.node(host, ".goldsync")); err != nil || !fi.IsDir() {
			t.Errorf("%s: .goldsync is %v, %v; want a directory", host, fi, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written through node002's symlink: %v", ents)
	}
	if res == nil || !strings.Contains(res.Nodes[2].Error, "boot.list is a directory; refused") {
		t.Errorf("node003: %+v, want an error about boot.list", res.Nodes)
	}
	// Rewritten at every build, atomically: an edit goes away.
	writeFile(t, e.node("node001", BootListPath), "bind /etc/shadow\n")
	e.build(t, func(o *BuildOptions) { o.Nodes = o.Nodes[:1] })
	if diff := cmp.Diff(want, readFile(t, e.node("node001", BootListPath))); diff != "" {
		t.Errorf("rebuilt boot list (-want +got):\n%s", diff)
	}
}
