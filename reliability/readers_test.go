package reliability

import (
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

// fileHashes maps each regular file beneath dir to the SHA-256 of its bytes.
func fileHashes(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readCounts are what live readers saw.
type readCounts struct {
	checked, old, new, absent, bad atomic.Int64
}

// readOnce opens path without following symlinks or blocking on fifos and,
// if it is a regular file, hashes it. ok is false when there was no regular
// file to read.
func readOnce(path string) (sum [32]byte, ok bool, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENXIO) {
			return sum, false, nil
		}
		return sum, false, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return sum, false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return sum, false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, false, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, true, nil
}

// liveReaders hashes the image's files in a loop from n goroutines until
// stop is closed, checking each whole read against old and new.
func liveReaders(t *testing.T, dest string, old, new map[string][32]byte, n int, c *readCounts, stop <-chan struct{}) *sync.WaitGroup {
	var paths []string
	for p := range old {
		paths = append(paths, p)
	}
	for p := range new {
		if _, ok := old[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var wg sync.WaitGroup
	var reported atomic.Int64
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 5))
			for {
				for _, j := range rng.Perm(len(paths)) {
					select {
					case <-stop:
						return
					default:
					}
					p := paths[j]
					sum, ok, err := readOnce(filepath.Join(dest, p))
					switch {
					case err != nil:
						c.bad.Add(1)
						if reported.Add(1) <= 10 {
							t.Errorf("read %s: %v", p, err)
						}
					case !ok:
						c.absent.Add(1)
					default:
						c.checked.Add(1)
						o, inOld := old[p]
						nw, inNew := new[p]
						switch {
						case inNew && sum == nw:
							c.new.Add(1)
						case inOld && sum == o:
							c.old.Add(1)
						default:
							c.bad.Add(1)
							if reported.Add(1) <= 10 {
								t.Errorf("reader saw %s with content that is neither old nor new: a torn or foreign file", p)
							}
						}
					}
				}
			}
		}()
	}
	return &wg
}

// TestLiveReaders runs readers hashing every file of the image in a loop
// while a full pull and then incremental pulls back and forth with content
// changes run; every read must be the whole old or the whole new file.
func TestLiveReaders(t *testing.T) {
	needRoot(t, "the tree has owners")
	base := t.TempDir()
	spec := treeSpec{dirs: pick(8, 20), files: pick(12, 20), big: pick(3, 6), seed: 11}
	srcA, srcB := filepath.Join(base, "golden-a"), filepath.Join(base, "golden-b")
	makeTree(t, srcA, spec)
	makeNewTree(t, srcB, spec)
	hA, hB := fileHashes(t, srcA), fileHashes(t, srcB)
	empty := map[string][32]byte{}
	pl := newPull(base, srcA)
	if err := os.Mkdir(pl.dest, 0o755); err != nil {
		t.Fatal(err)
	}
	rounds := pick(4, 40)
	deadline := time.Now().Add(budget())
	var c readCounts
	done := 0
	for r := 0; r <= rounds && time.Now().Before(deadline); r++ {
		old, new, src := hB, hA, srcA
		switch {
		case r == 0:
			old = empty // a full pull into the empty image
		case r%2 == 1:
			old, new, src = hA, hB, srcB
		}
		pl.src = src
		stop := make(chan struct{})
		wg := liveReaders(t, pl.dest, old, new, 4, &c, stop)
		time.Sleep(20 * time.Millisecond) // readers see the old image first
		pl.mustRun(t)
		time.Sleep(20 * time.Millisecond)
		close(stop)
		wg.Wait()
		done++
	}
	if c.new.Load() == 0 || c.checked.Load() == 0 {
		t.Errorf("readers checked %d reads, %d of new content: the test saw nothing", c.checked.Load(), c.new.Load())
	}
	t.Logf("figures: live readers: %d syncs (1 full, %d incremental) under 4 readers; reads checked %d (old content %d, new content %d), absent or not a file %d, torn or foreign %d",
		done, done-1, c.checked.Load(), c.old.Load(), c.new.Load(), c.absent.Load(), c.bad.Load())
}

// TestOpenFileKeepsOldContent holds files open across a sync that replaces
// one (a block delta, the new file built beside it from the old) and deletes
// another: reads through the open descriptors return the old content, the
// old inodes keep a link, and that link is in the state dir's retention dir.
func TestOpenFileKeepsOldContent(t *testing.T) {
	needRoot(t, "the tree has owners")
	base := t.TempDir()
	spec := treeSpec{dirs: 8, files: 6, big: 3, seed: 13}
	srcA, srcB := filepath.Join(base, "golden-a"), filepath.Join(base, "golden-b")
	mA := makeTree(t, srcA, spec)
	mB := makeNewTree(t, srcB, spec)
	hA := fileHashes(t, srcA)
	pl := newPull(base, srcA)
	pl.mustRun(t)

	var replaced, deleted []string
	for _, p := range mA.Paths() {
		a := mA[p]
		b, inB := mB[p]
		if a.Type != treetest.TypeFile || a.Size == 0 {
			continue
		}
		switch {
		case inB && b.Type == treetest.TypeFile && b.Hash != a.Hash:
			replaced = append(replaced, p)
		case !inB:
			deleted = append(deleted, p)
		}
	}
	if len(replaced) == 0 || len(deleted) == 0 {
		t.Fatalf("the trees have %d replaced and %d deleted files; want some of each", len(replaced), len(deleted))
	}
	held := []string{"bulk/big/b0", replaced[0], replaced[len(replaced)/2], deleted[0], deleted[len(deleted)-1]}
	slices.Sort(held)
	held = slices.Compact(held)
	type open struct {
		path string
		f    *os.File
		head []byte // read before the sync
		ino  uint64
	}
	var opens []open
	for _, p := range held {
		f, err := os.Open(filepath.Join(pl.dest, p))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var st unix.Stat_t
		unix.Fstat(int(f.Fd()), &st)
		head := make([]byte, st.Size/2)
		if _, err := io.ReadFull(f, head); err != nil {
			t.Fatal(err)
		}
		opens = append(opens, open{path: p, f: f, head: head, ino: st.Ino})
	}

	pl.src = srcB
	pl.mustRun(t)
	equal(t, mB, treetest.Scan(t, pl.dest))

	retained := map[uint64]string{}
	retDir := imaging.State(pl.state).Retention
	ents, err := os.ReadDir(retDir)
	if err != nil {
		t.Fatalf("retention dir: %v", err)
	}
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(retDir, e.Name()), &st) == nil {
			retained[st.Ino] = e.Name()
		}
	}
	kept := 0
	for _, o := range opens {
		rest, err := io.ReadAll(o.f)
		if err != nil {
			t.Errorf("%s: read after the sync: %v", o.path, err)
			continue
		}
		if got := sha256.Sum256(append(o.head, rest...)); got != hA[o.path] {
			t.Errorf("%s: a reader holding it open read content that is not the old file", o.path)
		}
		var st unix.Stat_t
		unix.Fstat(int(o.f.Fd()), &st)
		if st.Nlink < 1 {
			t.Errorf("%s: the old inode has no link left (nlink %d): NFS clients would get ESTALE", o.path, st.Nlink)
		}
		if name, ok := retained[o.ino]; ok {
			kept++
			t.Logf("%s: old inode %d kept as retention/%s (nlink %d)", o.path, o.ino, name, st.Nlink)
		} else {
			t.Errorf("%s: old inode %d is not linked in %s", o.path, o.ino, retDir)
		}
	}
	var rst os.FileInfo
	if rst, err = os.Stat(retDir); err == nil && rst.Mode().Perm() != 0o700 {
		t.Errorf("retention dir mode %v, want 0700", rst.Mode().Perm())
	}
	t.Logf("figures: retention: %d files held open across replace/delete, %d read their old content whole, %d old inodes found linked in the retention dir (%d links there in all)",
		len(opens), len(opens), kept, len(ents))
}
