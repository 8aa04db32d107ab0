package treetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("SKIPPED: needs root: %s", why)
	}
}

func xattr(n Node, name string) ([]byte, bool) {
	for _, x := range n.Xattrs {
		if x.Name == name {
			return x.Value, true
		}
	}
	return nil, false
}

// TestMakeTricky checks that the tricky tree holds what MakeTricky's doc
// promises, that scanning it again finds nothing changed, and that a
// second build is identical to the first (the tree is deterministic).
func TestMakeTricky(t *testing.T) {
	needRoot(t, "the tricky tree has devices, foreign owners and security xattrs")
	dir := t.TempDir()
	m := MakeTricky(t, dir, TrickyOptions{})
	if d := Diff(m, Scan(t, dir), DiffOptions{}); len(d) != 0 {
		t.Errorf("rescan differs:\n%s", strings.Join(d, "\n"))
	}
	again := MakeTricky(t, t.TempDir(), TrickyOptions{})
	if d := Diff(m, again, DiffOptions{}); len(d) != 0 {
		t.Errorf("second build differs:\n%s", strings.Join(d, "\n"))
	}

	node := func(t *testing.T, p string) Node {
		t.Helper()
		n, ok := m[p]
		if !ok {
			t.Fatalf("%q not in the tree", p)
		}
		return n
	}
	checks := []struct {
		name string
		path string
		ok   func(n Node) bool
	}{
		{"root is a dir", ".", func(n Node) bool { return n.Type == TypeDir }},
		{"empty dir", PathEmptyDir, func(n Node) bool { return n.Type == TypeDir }},
		{"empty file", "files/empty", func(n Node) bool { return n.Type == TypeFile && n.Size == 0 }},
		{"4095 bytes", "files/f4095", func(n Node) bool { return n.Size == 4095 }},
		{"1 MiB", PathRandom, func(n Node) bool { return n.Size == 1<<20 }},
		{"group of 3", PathLinkOf3b, func(n Node) bool {
			return slices.Equal(n.Links, []string{PathLinkOf3c, PathLinkOf3, PathLinkOf3b})
		}},
		{"group of 2", PathLinkOf2, func(n Node) bool { return slices.Equal(n.Links, []string{PathLinkOf2, PathLinkOf2b}) }},
		{"not linked", "files/one", func(n Node) bool { return n.Links == nil }},
		{"sparse: 1 GiB in few blocks", PathSparse, func(n Node) bool { return n.Size == 1<<30 && n.Blocks < 256 }},
		{"capability", PathCap, func(n Node) bool {
			v, _ := xattr(n, "security.capability")
			return string(v) == string(CapNetRaw) && n.Mode == 0o755
		}},
		{"user xattr", PathUserXattr, func(n Node) bool {
			v, ok := xattr(n, "user.foo")
			e, eok := xattr(n, "user.empty")
			return ok && string(v) == string(UserFoo) && eok && len(e) == 0
		}},
		{"trusted xattr", PathTrusted, func(n Node) bool { _, ok := xattr(n, "trusted.goldsync"); return ok }},
		{"trusted xattr on a symlink", PathAbsLink, func(n Node) bool { _, ok := xattr(n, "trusted.link"); return ok }},
		{"access ACL sets the mode", PathACLFile, func(n Node) bool {
			v, _ := xattr(n, "system.posix_acl_access")
			return string(v) == string(ACLAccess) && n.Mode == 0o660
		}},
		{"default ACL", PathACLDir, func(n Node) bool {
			v, _ := xattr(n, "system.posix_acl_default")
			return string(v) == string(ACLDefault)
		}},
		{"inherited ACL", PathACLDir + "/inherited", func(n Node) bool {
			_, ok := xattr(n, "system.posix_acl_access")
			return ok
		}},
		{"inherited default ACL", PathACLDir + "/subdir", func(n Node) bool {
			v, _ := xattr(n, "system.posix_acl_default")
			return string(v) == string(ACLDefault)
		}},
		{"setuid", PathSetuid, func(n Node) bool { return n.Mode == 0o4755 }},
		{"setgid dir", PathSetgidDir, func(n Node) bool { return n.Mode == 0o2755 && n.GID == TrickyGID }},
		{"group from setgid dir", PathSetgidDir + "/file", func(n Node) bool { return n.GID == TrickyGID }},
		{"sticky dir", PathStickyDir, func(n Node) bool { return n.Mode == 0o1777 }},
		{"fifo", PathFIFO, func(n Node) bool { return n.Type == TypeFIFO }},
		{"socket", PathSocket, func(n Node) bool { return n.Type == TypeSocket && n.Mode == 0o755 }},
		{"char device 1:3", PathCharDev, func(n Node) bool { return n.Type == TypeCharDev && n.Rdev == unix.Mkdev(1, 3) }},
		{"block device 7:0", PathBlockDev, func(n Node) bool { return n.Type == TypeBlockDev && n.Rdev == unix.Mkdev(7, 0) }},
		{"dangling symlink", PathDangling, func(n Node) bool { return n.Type == TypeSymlink && n.Target == "../does/not/exist" }},
		{"absolute symlink", PathAbsLink, func(n Node) bool { return n.Target == "/etc/passwd" }},
		{"symlink to dir", PathDirLink, func(n Node) bool { return n.Type == TypeSymlink && n.Target == "../dirs/a" }},
		{"non-UTF-8 name", PathLatin1, func(n Node) bool { return n.Type == TypeFile }},
		{"non-UTF-8 dir", PathBadUTF8, func(n Node) bool { return n.Type == TypeDir }},
		{"newline in name", PathNewline, func(n Node) bool { return n.Type == TypeFile }},
		{"foreign owner", PathOwned, func(n Node) bool { return n.UID == TrickyUID && n.GID == TrickyGID }},
		{"foreign owner of a symlink", "owners/symlink", func(n Node) bool { return n.UID == TrickyUID && n.Type == TypeSymlink }},
		{"pre-epoch mtime", PathPreEpoch, func(n Node) bool { return n.Mtime == -1_500_000_000 }},
		{"mtime in 2200", PathFarFuture, func(n Node) bool { return n.Mtime == 7_258_118_400_000_000_001 }},
		{"symlink mtime", PathDangling, func(n Node) bool { return n.Mtime == (&builder{}).mtimeOf(PathDangling) }},
		{"dir mtime", "dirs/a", func(n Node) bool { return n.Mtime == (&builder{}).mtimeOf("dirs/a") }},
		{"root mtime", ".", func(n Node) bool { return n.Mtime == (&builder{}).mtimeOf(".") }},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if n := node(t, c.path); !c.ok(n) {
				t.Errorf("%q: unexpected %+v", c.path, n)
			}
		})
	}

	t.Run("long path", func(t *testing.T) {
		longest := ""
		for p := range m {
			if len(p) > len(longest) {
				longest = p
			}
		}
		if len(longest) != LongPathLen || m[longest].Type != TypeFile {
			t.Errorf("longest path is a %s of %d bytes, want a file of %d", m[longest].Type, len(longest), LongPathLen)
		}
	})
	t.Run("nanosecond mtimes", func(t *testing.T) {
		b := &builder{fixed: map[string]int64{PathPreEpoch: -1_500_000_000, PathFarFuture: 7_258_118_400_000_000_001}}
		for p, n := range m {
			from := p // a hard-link group's inode has its first name's mtime
			for _, first := range []string{PathLinkOf3, PathLinkOf2} {
				if slices.Contains(n.Links, first) {
					from = first
				}
			}
			if want := b.mtimeOf(from); n.Mtime != want {
				t.Errorf("%q: mtime %d, want %d", p, n.Mtime, want)
			}
		}
	})
	t.Run("getfacl", func(t *testing.T) {
		if _, err := exec.LookPath("getfacl"); err != nil {
			t.Skipf("SKIPPED: getfacl not installed: %v", err)
		}
		for _, c := range []struct {
			path string
			want string
		}{
			{PathACLFile, "user::rw-\nuser:4242:r--\ngroup::r--\ngroup:4343:rw-\nmask::rw-\nother::---\n\n"},
			{PathACLDir, "user::rwx\ngroup::r-x\nother::r-x\ndefault:user::rwx\ndefault:user:4242:r-x\n" +
				"default:group::r-x\ndefault:group:4343:rwx\ndefault:mask::rwx\ndefault:other::r-x\n\n"},
		} {
			out, err := exec.Command("getfacl", "-n", "--omit-header", "--absolute-names", filepath.Join(dir, c.path)).CombinedOutput()
			if err != nil || string(out) != c.want {
				t.Errorf("getfacl %s: %v\n%s\nwant\n%s", c.path, err, out, c.want)
			}
		}
	})
	t.Run("getcap", func(t *testing.T) {
		if _, err := exec.LookPath("getcap"); err != nil {
			t.Skipf("SKIPPED: getcap not installed: %v", err)
		}
		out, err := exec.Command("getcap", filepath.Join(dir, PathCap)).CombinedOutput()
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), " cap_net_raw=ep") {
			t.Errorf("getcap: %v: %q, want cap_net_raw=ep", err, out)
		}
	})
}

// checkUnprivileged checks that m has none of the tree's root-only parts
// and still has the rest.
func checkUnprivileged(t *testing.T, m Manifest) {
	t.Helper()
	for p, n := range m {
		if n.Type == TypeCharDev || n.Type == TypeBlockDev || n.UID != uint32(os.Geteuid()) {
			t.Errorf("%q: root-only %s owned by %d", p, n.Type, n.UID)
		}
		for _, x := range n.Xattrs {
			if strings.HasPrefix(x.Name, "trusted.") || strings.HasPrefix(x.Name, "security.") {
				t.Errorf("%q: root-only xattr %s", p, x.Name)
			}
		}
	}
	for _, p := range []string{PathSocket, PathFIFO, PathSparse, PathACLFile, PathUserXattr, PathSetuid, PathSetgidDir, PathLinkOf3c} {
		if _, ok := m[p]; !ok {
			t.Errorf("%q missing", p)
		}
	}
}

// TestMakeTrickyUnprivileged builds the tree as an unprivileged user would
// get it: in-process with Unprivileged set, and for real in a child
// process running as nobody, where any root-only step would fail.
func TestMakeTrickyUnprivileged(t *testing.T) {
	if dir := os.Getenv("TREETEST_UNPRIVILEGED_DIR"); dir != "" {
		if os.Geteuid() == 0 {
			t.Fatal("child still root")
		}
		m := MakeTricky(t, dir, TrickyOptions{})
		Equal(t, m, Scan(t, dir), DiffOptions{})
		checkUnprivileged(t, m)
		return
	}
	t.Run("option", func(t *testing.T) {
		dir := t.TempDir()
		m := MakeTricky(t, dir, TrickyOptions{Unprivileged: true})
		Equal(t, m, Scan(t, dir), DiffOptions{})
		checkUnprivileged(t, m)
	})
	t.Run("as nobody", func(t *testing.T) {
		needRoot(t, "switches to uid 65534 to be unprivileged")
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		base, err := os.MkdirTemp("", "treetest-nobody-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(base) })
			err = os.Chmod(base, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(base, "treetest.test")
		data, err := os.ReadFile(exe)
		if err == nil {
			err = os.WriteFile(bin, data, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(base, "tree")
		err = os.Mkdir(dir, 0o755)
		if err == nil {
			err = os.Chown(dir, 65534, 65534)
		}
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestMakeTrickyUnprivileged$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "TREETEST_UNPRIVILEGED_DIR="+dir)
		cmd.Dir = base
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestMakeTrickyUnprivileged") {
			t.Fatalf("as nobody: %v\n%s", err, out)
		}
	})
}
