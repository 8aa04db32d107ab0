package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

// treeSpec describes a generated source tree: optionally treetest's tricky
// tree, plus a bulk of ordinary files and a few big ones (big enough for
// block deltas).
type treeSpec struct {
	tricky bool
	dirs   int // bulk directories
	files  int // files per bulk directory
	big    int // files of 1.5 MiB
	seed   uint64
	// noXattrs leaves out user xattrs (filesystems without them).
	noXattrs bool
}

// makeTree builds the "old" tree of spec in dir (created) and returns its
// manifest.
func makeTree(t testing.TB, dir string, spec treeSpec) treetest.Manifest {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if spec.tricky {
		treetest.MakeTricky(t, dir, treetest.TrickyOptions{})
	}
	g := &gen{t: t, rng: rand.New(rand.NewPCG(spec.seed, 1)), root: dir}
	g.mkdir("bulk")
	for d := range spec.dirs {
		dd := fmt.Sprintf("bulk/d%02d", d)
		g.mkdir(dd)
		for f := range spec.files {
			g.file(fmt.Sprintf("%s/f%03d", dd, f), g.size(), 0o644)
		}
	}
	g.mkdir("bulk/big")
	for b := range spec.big {
		g.file(fmt.Sprintf("bulk/big/b%d", b), 3<<19, 0o644)
	}
	g.mkdir("bulk/links")
	g.file("bulk/links/a0", 5000, 0o644)
	g.link("bulk/links/a0", "bulk/links/a1")
	g.file("bulk/links/b0", 7000, 0o640)
	if !spec.noXattrs {
		g.xattr("bulk/links/b0", "user.color", "blue")
	}
	g.symlink("../links/a0", "bulk/links/sym")
	g.settle()
	return treetest.Scan(t, dir)
}

// makeNewTree builds spec's old tree in dir and changes it into the "new"
// tree: rewritten, grown, shrunk and block-edited files, deletes of files
// and a whole directory, new files and directories, type changes (file to
// directory, directory to file, file to symlink), metadata-only changes, a
// moved file, a broken and a new hard link.
func makeNewTree(t testing.TB, dir string, spec treeSpec) treetest.Manifest {
	t.Helper()
	makeTree(t, dir, spec)
	g := &gen{t: t, rng: rand.New(rand.NewPCG(spec.seed, 2)), root: dir, clock: 1_000_000}
	for d := range spec.dirs {
		for f := range spec.files {
			p := fmt.Sprintf("bulk/d%02d/f%03d", d, f)
			switch r := g.rng.IntN(100); {
			case r < 30:
				size := g.size()
				if r < 15 {
					st, _ := os.Stat(g.path(p))
					size = int(st.Size()) // same size, new bytes
				}
				g.file(p, size, 0o644)
			case r < 35:
				g.remove(p)
			case r < 40:
				g.chmod(p, 0o600)
			case r < 43 && os.Geteuid() == 0:
				g.chown(p, treetest.TrickyUID, treetest.TrickyGID)
			}
		}
	}
	if spec.dirs > 6 {
		g.removeAll("bulk/d01")
		g.remove("bulk/d02/f000")
		g.mkdir("bulk/d02/f000") // file -> directory
		g.file("bulk/d02/f000/inside", 1000, 0o644)
		g.removeAll("bulk/d03")
		g.file("bulk/d03", 3000, 0o644) // directory -> file
		g.remove("bulk/d04/f001")
		g.symlink("../d00/f000", "bulk/d04/f001") // file -> symlink
		// A moved file: the same content appears at a new name.
		g.rename("bulk/d05/f002", "bulk/moved")
	}
	g.mkdir("bulk/new")
	for f := range 10 {
		g.file(fmt.Sprintf("bulk/new/n%d", f), g.size(), 0o644)
	}
	for b := range spec.big {
		p := fmt.Sprintf("bulk/big/b%d", b)
		switch b % 3 {
		case 0: // a few blocks changed in place
			g.patch(p, 3)
		case 1: // grown
			g.appendBytes(p, 100<<10)
		case 2: // shrunk
			g.truncate(p, 1<<20+1)
		}
	}
	g.remove("bulk/links/a1")
	g.file("bulk/links/a1", 5000, 0o644) // the pair is broken
	g.link("bulk/links/b0", "bulk/links/b1")
	if !spec.noXattrs {
		g.xattr("bulk/links/b0", "user.color", "green")
	}
	if spec.tricky {
		g.file(treetest.PathRandom, 1<<20, 0o644) // same size: a block delta
		g.xattr(treetest.PathUserXattr, "user.foo", "changed")
	}
	g.settle()
	return treetest.Scan(t, dir)
}

// gen writes a tree with seeded random contents, failing the test on error.
type gen struct {
	t     testing.TB
	rng   *rand.Rand
	root  string
	clock int64 // seconds added to genEpoch for the next file's mtime
}

// genEpoch is the mtime base of generated entries: the same tree generated
// twice has the same mtimes, so an "old" and a "new" tree differ only where
// the new one was changed.
const genEpoch = 1_600_000_000

// stamp gives p (not followed if a symlink) the next generated mtime.
func (g *gen) stamp(p string) {
	g.t.Helper()
	g.clock++
	ts := []unix.Timespec{{Sec: genEpoch + g.clock, Nsec: g.clock % 1_000_000 * 1000}, {Sec: genEpoch + g.clock, Nsec: g.clock % 1_000_000 * 1000}}
	g.check(unix.UtimesNanoAt(unix.AT_FDCWD, g.path(p), ts, unix.AT_SYMLINK_NOFOLLOW))
}

// settle gives every directory of the bulk, and the root, a fixed mtime,
// as a tree at rest has.
func (g *gen) settle() {
	g.t.Helper()
	ts := []unix.Timespec{{Sec: genEpoch}, {Sec: genEpoch}}
	var dirs []string
	filepath.WalkDir(g.path("bulk"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range append(dirs, g.root) {
		g.check(unix.UtimesNanoAt(unix.AT_FDCWD, d, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func (g *gen) path(p string) string { return filepath.Join(g.root, p) }

func (g *gen) check(err error) {
	g.t.Helper()
	if err != nil {
		g.t.Fatal(err)
	}
}

// size draws a file size: many small files, some of tens of KiB.
func (g *gen) size() int {
	sizes := []int{0, 1, 100, 4095, 4096, 10 << 10, 30 << 10, 64 << 10, 200 << 10}
	return sizes[g.rng.IntN(len(sizes))]
}

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func (g *gen) mkdir(p string) { g.check(os.MkdirAll(g.path(p), 0o755)) }

// file replaces p with a new file of n random bytes (a new inode, so hard
// links to the old one keep the old content).
func (g *gen) file(p string, n int, mode os.FileMode) {
	g.t.Helper()
	os.Remove(g.path(p))
	g.check(os.WriteFile(g.path(p), g.bytes(n), mode))
	g.check(os.Chmod(g.path(p), mode))
	g.stamp(p)
}

func (g *gen) link(old, p string)   { g.check(os.Link(g.path(old), g.path(p))) }
func (g *gen) symlink(to, p string) { g.check(os.Symlink(to, g.path(p))); g.stamp(p) }
func (g *gen) remove(p string)      { g.check(os.Remove(g.path(p))) }
func (g *gen) removeAll(p string)   { g.check(os.RemoveAll(g.path(p))) }
func (g *gen) rename(a, b string)   { g.check(os.Rename(g.path(a), g.path(b))) }
func (g *gen) chmod(p string, m os.FileMode) {
	g.check(os.Chmod(g.path(p), m))
}
func (g *gen) chown(p string, uid, gid int) { g.check(os.Lchown(g.path(p), uid, gid)) }
func (g *gen) truncate(p string, n int64)   { g.check(os.Truncate(g.path(p), n)) }
func (g *gen) xattr(p, name, value string) {
	g.check(setxattr(g.path(p), name, value))
}

// patch overwrites n random 100-byte runs of p in place.
func (g *gen) patch(p string, n int) {
	f, err := os.OpenFile(g.path(p), os.O_RDWR, 0)
	g.check(err)
	defer f.Close()
	st, err := f.Stat()
	g.check(err)
	for range n {
		_, err := f.WriteAt(g.bytes(100), g.rng.Int64N(st.Size()-100))
		g.check(err)
	}
}

func (g *gen) appendBytes(p string, n int) {
	f, err := os.OpenFile(g.path(p), os.O_WRONLY|os.O_APPEND, 0)
	g.check(err)
	_, err = f.Write(g.bytes(n))
	g.check(err)
	g.check(f.Close())
}

// isTemp reports whether a path is, or is beneath, an engine temp name.
func isTemp(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if strings.HasPrefix(c, imaging.TempPrefix) {
			return true
		}
	}
	return false
}

// wholeStats counts what an interrupted run left at real names.
type wholeStats struct {
	Old, New, Same int // files holding the old content, the new, or both are equal
	Pending        int // files of new not yet at their new content
	Temps          int // temp names left (litter for the next run to remove)
	Bad            int // paths that break the rule (reported through t.Errorf)
}

// checkWhole checks a destination interrupted while going from old to new:
// every path is a temp name (counted) or a path of old or new; every
// regular file holds exactly old's or new's content for that path (no torn
// or foreign file); a file holding new content also has new's mode and
// owner (metadata is set before the rename); symlinks point where old's or
// new's do; types are old's or new's.
func checkWhole(t testing.TB, got, old, new treetest.Manifest) wholeStats {
	t.Helper()
	var st wholeStats
	var bad []string
	for _, p := range got.Paths() {
		if isTemp(p) {
			if !isTemp(filepath.Dir(p)) {
				st.Temps++
			}
			continue
		}
		g := got[p]
		o, inOld := old[p]
		n, inNew := new[p]
		if !inOld && !inNew {
			bad = append(bad, fmt.Sprintf("%q: a name neither the old nor the new tree has (%s)", p, g.Type))
			continue
		}
		if !(inOld && o.Type == g.Type) && !(inNew && n.Type == g.Type) {
			bad = append(bad, fmt.Sprintf("%q: type %s is neither old's nor new's", p, g.Type))
			continue
		}
		switch g.Type {
		case treetest.TypeFile:
			isOld := inOld && o.Type == g.Type && o.Hash == g.Hash
			isNew := inNew && n.Type == g.Type && n.Hash == g.Hash
			switch {
			case isOld && isNew:
				st.Same++
			case isOld:
				st.Old++
			case isNew:
				st.New++
				if g.Mode != n.Mode || g.UID != n.UID || g.GID != n.GID {
					bad = append(bad, fmt.Sprintf("%q: new content with mode %#o owner %d:%d, want %#o %d:%d (renamed before its metadata was set)",
						p, g.Mode, g.UID, g.GID, n.Mode, n.UID, n.GID))
				}
			default:
				bad = append(bad, fmt.Sprintf("%q: TORN or foreign content (size %d, sha256 %.12s; old %.12s, new %.12s)", p, g.Size, g.Hash, o.Hash, n.Hash))
			}
		case treetest.TypeSymlink:
			if !(inOld && o.Target == g.Target) && !(inNew && n.Target == g.Target) {
				bad = append(bad, fmt.Sprintf("%q: symlink to %q is neither old's nor new's", p, g.Target))
			}
		}
	}
	for _, p := range new.Paths() {
		if n := new[p]; n.Type == treetest.TypeFile {
			if g, ok := got[p]; !ok || g.Type != n.Type || g.Hash != n.Hash {
				st.Pending++
			}
		}
	}
	st.Bad = len(bad)
	if len(bad) > 0 {
		t.Errorf("interrupted run left %d bad paths:\n%s", len(bad), strings.Join(bad[:min(len(bad), 30)], "\n"))
	}
	return st
}

// checkNoLitter fails the test if the image holds temp names or the state
// dir holds anything but the manifest, the lock, the retention dir, the
// journal token and the generations (with no half-written one).
func checkNoLitter(t testing.TB, dest, state string) bool {
	t.Helper()
	ok := true
	m := treetest.Scan(t, dest)
	var temps []string
	for _, p := range m.Paths() {
		if isTemp(p) {
			temps = append(temps, p)
		}
	}
	if len(temps) > 0 {
		t.Errorf("%d temp names left in the image after a complete run: %q", len(temps), temps[:min(len(temps), 10)])
		ok = false
	}
	ents, err := os.ReadDir(state)
	if err != nil {
		t.Errorf("state dir: %v", err)
		return false
	}
	var extra []string
	for _, e := range ents {
		// retention.note: what a run tells the next of its retention dir.
		if !slices.Contains([]string{"manifest", "lock", "retention", "retention.note", "token", "generations"}, e.Name()) {
			extra = append(extra, e.Name())
		}
	}
	// A generation being recorded or pruned when a run was killed.
	gens, _ := os.ReadDir(filepath.Join(state, "generations"))
	for _, e := range gens {
		if strings.HasPrefix(e.Name(), ".") {
			extra = append(extra, "generations/"+e.Name())
		}
	}
	if len(extra) > 0 {
		t.Errorf("litter in the state dir %s after a complete run: %q", state, extra)
		ok = false
	}
	return ok
}

// equal is treetest.Equal that also reports whether the trees are equal.
func equal(t testing.TB, want, got treetest.Manifest) bool {
	t.Helper()
	treetest.Equal(t, want, got, treetest.DiffOptions{})
	return len(treetest.Diff(want, got, treetest.DiffOptions{})) == 0
}

// scanOrEmpty scans dir, or returns an empty manifest if it does not exist.
func scanOrEmpty(t testing.TB, dir string) treetest.Manifest {
	t.Helper()
	if _, err := os.Lstat(dir); os.IsNotExist(err) {
		return treetest.Manifest{}
	}
	return treetest.Scan(t, dir)
}

func randFor(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 3)) }
