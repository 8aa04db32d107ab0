package exposure

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a fresh tmpfs at dir with flags (MS_NOSUID...), and
// unmounts it at cleanup.
func mountTmpfs(t *testing.T, dir string, flags uintptr) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to mount a tmpfs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("goldsync-test", dir, "tmpfs", flags, "size=1m"); err != nil {
		t.Skipf("SKIPPED: cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

func problems(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Problem)
	}
	slices.Sort(out)
	return out
}

// openTree returns a base directory whose whole parent chain others can
// search (/, /tmp, the test's temp dirs made 0755).
func openTree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := traversable(filepath.Join(base, "x")); err != nil || !ok {
		t.Skipf("SKIPPED: a parent of %s is not searchable by others here (%v), so nothing is traversable", base, err)
	}
	return base
}

// TestCheckMounts mounts real tmpfs image directories with and without
// nosuid,nodev, directly and through a bind mount, and checks the
// warnings.
func TestCheckMounts(t *testing.T) {
	base := openTree(t)
	closed := filepath.Join(base, "closed") // 0700: nothing below is reachable
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	safe := filepath.Join(closed, "safe")
	mountTmpfs(t, safe, unix.MS_NOSUID|unix.MS_NODEV)
	unsafe := filepath.Join(closed, "unsafe")
	mountTmpfs(t, unsafe, 0)
	nosuidOnly := filepath.Join(closed, "nosuid")
	mountTmpfs(t, nosuidOnly, unix.MS_NOSUID)
	exposed := filepath.Join(base, "exposed") // reachable, and suid, dev
	mountTmpfs(t, exposed, 0)
	reachableSafe := filepath.Join(base, "reachable") // mounted right, but reachable
	mountTmpfs(t, reachableSafe, unix.MS_NOSUID|unix.MS_NODEV)

	// A bind mount of the unsafe tmpfs, remounted nosuid,nodev: the
	// options are per mount, and the bind mount's count.
	bound := filepath.Join(closed, "bound")
	if err := os.Mkdir(bound, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(unsafe, bound, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(bound, unix.MNT_DETACH) })
	if err := unix.Mount("", bound, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(unsafe, "root"), filepath.Join(safe, "root")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(filepath.Join(unsafe, "root"), link); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		dir   string
		mount string
		want  []string
	}{
		{dir: safe, mount: safe},
		{dir: filepath.Join(safe, "root"), mount: safe},
		{dir: unsafe, mount: unsafe, want: []string{ProblemDev, ProblemSuid}},
		{dir: filepath.Join(unsafe, "root"), mount: unsafe, want: []string{ProblemDev, ProblemSuid}},
		{dir: link, mount: unsafe, want: []string{ProblemDev, ProblemSuid}},
		{dir: nosuidOnly, mount: nosuidOnly, want: []string{ProblemDev}},
		{dir: bound, mount: bound},
		{dir: filepath.Join(bound, "root"), mount: bound},
		{dir: exposed, mount: exposed, want: []string{ProblemDev, ProblemSuid, ProblemTraversable}},
		{dir: reachableSafe, mount: reachableSafe, want: []string{ProblemTraversable}},
		{dir: filepath.Join(base, "missing")},
	} {
		ws, err := Check(tc.dir)
		if err != nil {
			t.Errorf("Check(%s): %v", tc.dir, err)
			continue
		}
		if got := problems(ws); !slices.Equal(got, tc.want) {
			t.Errorf("Check(%s) = %q, want %q", tc.dir, ws, tc.want)
		}
		for _, w := range ws {
			if w.Dir != tc.dir || w.Message == "" {
				t.Errorf("Check(%s): warning %+v", tc.dir, w)
			}
			if w.Problem != ProblemTraversable && (!strings.Contains(w.Message, tc.mount) || !strings.Contains(w.Message, "tmpfs")) {
				t.Errorf("Check(%s): %q does not name the mount %s (tmpfs)", tc.dir, w.Message, tc.mount)
			}
		}
		if tc.mount != "" {
			real, _ := filepath.EvalSymlinks(tc.dir)
			m, err := MountOf(real)
			if err != nil || m.MountPoint != tc.mount {
				t.Errorf("MountOf(%s) = %+v, %v; want %s", real, m, err, tc.mount)
			}
		}
	}
}

// TestTraversable: a directory is reachable by others only when every
// directory above it has o+x.
func TestTraversable(t *testing.T) {
	base := openTree(t)
	img := filepath.Join(base, "diskless", "rhel9", "root")
	if err := os.MkdirAll(img, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode os.FileMode // of base/diskless
		want bool
	}{{0o755, true}, {0o711, true}, {0o750, false}, {0o700, false}} {
		if err := os.Chmod(filepath.Join(base, "diskless"), tc.mode); err != nil {
			t.Fatal(err)
		}
		got, err := traversable(img)
		if err != nil || got != tc.want {
			t.Errorf("diskless %o: traversable = %v, %v; want %v", tc.mode, got, err, tc.want)
		}
	}
	// The image root's own mode does not count: a pull resets it.
	if err := os.Chmod(filepath.Join(base, "diskless"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(img, 0o700); err != nil {
		t.Fatal(err)
	}
	if got, _ := traversable(img); !got {
		t.Errorf("image root 0700 under open parents: not traversable, want traversable (the next pull restores 0755)")
	}
}

func TestParseMountinfo(t *testing.T) {
	in := "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		"40 22 0:35 / /diskless\\040images rw,nosuid,nodev - tmpfs none rw,size=1024k\n" +
		"41 22 0:36 / /srv rw master:3 shared:7 - xfs /dev/sdb1 rw\n"
	ms, err := parseMountinfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[1].MountPoint != "/diskless images" || !ms[1].Has("nosuid") || !ms[1].Has("nodev") ||
		ms[1].FSType != "tmpfs" || ms[2].FSType != "xfs" || ms[2].Source != "/dev/sdb1" || ms[0].Has("nosuid") {
		t.Errorf("parseMountinfo = %+v", ms)
	}
	for _, bad := range []string{"22 1 8:1 / / rw\n", "22 1 x / / rw - ext4 /dev/sda1 rw\n"} {
		if _, err := parseMountinfo(strings.NewReader(bad)); err == nil {
			t.Errorf("parseMountinfo(%q) accepted", bad)
		}
	}
}

// TestFixTraversableNeverSharedDirs: the hint takes the search bit off the
// image's own parent, never off /tmp, /srv or a sticky directory every
// other user needs (a newcomer followed "chmod o-x /tmp" literally).
func TestFixTraversableNeverSharedDirs(t *testing.T) {
	base := openTree(t)
	own := filepath.Join(base, "diskless")
	sticky := filepath.Join(base, "shared")
	for _, d := range []string{filepath.Join(own, "rhel9"), filepath.Join(sticky, "img")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(sticky, 0o1777); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want, not string }{
		{"/tmp/img", "install -d -m 0700 /tmp/goldsync", "chmod o-x /tmp "},
		{"/srv/rhel9", "install -d -m 0700 /srv/goldsync", "chmod o-x /srv "},
		{filepath.Join(sticky, "img"), "install -d -m 0700 " + filepath.Join(sticky, "goldsync"), "chmod o-x " + sticky + " "},
		{filepath.Join(own, "rhel9"), "chmod o-x " + own + " ", "install -d"},
	} {
		got := fixTraversable(tc.dir)
		if !strings.Contains(got, tc.want) || strings.Contains(got, tc.not) {
			t.Errorf("fixTraversable(%s) = %q; want it to contain %q and not %q", tc.dir, got, tc.want, tc.not)
		}
	}
}
