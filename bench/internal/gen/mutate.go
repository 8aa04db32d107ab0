package gen

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Change names a mutation of a tree.
type Change string

// The mutations.
const (
	// ChangeYum is what installing and updating a few packages does: 60
	// new files (most in a new package directory), 5 files replaced by
	// new versions (new inodes, as rpm and dpkg write them), 3 deleted.
	ChangeYum Change = "yum"
	// ChangeBlocks rewrites 4 blocks of 4 KiB in place in the largest
	// file of the tree (a database or image file).
	ChangeBlocks Change = "blocks"
)

// ChangeSummary says what a mutation did.
type ChangeSummary struct {
	Change   Change
	New      []string // files and directories created
	Modified []string
	Deleted  []string
	Bytes    int64 // content bytes written
}

// journal is what Revert needs, saved as journal.json in the journal dir.
type journal struct {
	Change  Change
	Created []string // relative paths, in creation order
	Moved   []moved
	Dirs    []times
	Blocks  []block
	Files   []times
}

type moved struct{ Path, Saved string }

type times struct {
	Path         string
	Atime, Mtime int64
}

type block struct {
	Path  string
	Off   int64
	Saved string // file in the journal dir with the old bytes
}

const journalFile = "journal.json"

// Mutated reports whether journalDir holds an unreverted mutation.
func Mutated(journalDir string) bool {
	_, err := os.Stat(filepath.Join(journalDir, journalFile))
	return err == nil
}

// Mutate applies a seeded change to the tree at root, saving in journalDir
// (which must be on root's filesystem and outside it) what Revert needs to
// put the tree back exactly: replaced and deleted files are moved there,
// overwritten blocks copied, directory and file times recorded. The same
// tree, change and seed always pick the same paths and write the same
// content.
func Mutate(root, journalDir string, change Change, seed uint64) (ChangeSummary, error) {
	if Mutated(journalDir) {
		return ChangeSummary{}, fmt.Errorf("%s holds an unreverted change: revert it first", journalDir)
	}
	os.RemoveAll(journalDir)
	if err := os.MkdirAll(journalDir, 0o700); err != nil {
		return ChangeSummary{}, err
	}
	files, err := regularFiles(root)
	if err != nil {
		return ChangeSummary{}, err
	}
	j := &journal{Change: change}
	var sum ChangeSummary
	switch change {
	case ChangeYum:
		sum, err = mutateYum(root, journalDir, files, seed, j)
	case ChangeBlocks:
		sum, err = mutateBlocks(root, journalDir, files, seed, j)
	default:
		return ChangeSummary{}, fmt.Errorf("unknown change %q", change)
	}
	// Save the journal even after a failure, so Revert undoes what was
	// done.
	b, jerr := json.MarshalIndent(j, "", " ")
	if jerr == nil {
		jerr = os.WriteFile(filepath.Join(journalDir, journalFile), b, 0o600)
	}
	if err == nil {
		err = jerr
	}
	sum.Change = change
	return sum, err
}

type fileInfo struct {
	path  string
	size  int64
	nlink uint64
}

// regularFiles lists the tree's regular files in lexical order.
func regularFiles(root string) ([]fileInfo, error) {
	var out []fileInfo
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi := fileInfo{path: rel, size: info.Size(), nlink: 1}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			fi.nlink = uint64(st.Nlink)
		}
		out = append(out, fi)
		return nil
	})
	return out, err
}

func mutateYum(root, jdir string, files []fileInfo, seed uint64, j *journal) (ChangeSummary, error) {
	r := newRand(seed, 10)
	var sum ChangeSummary
	var cands []fileInfo
	for _, f := range files {
		if f.nlink == 1 && f.size <= mib && !strings.Contains(f.path, "yumpkg-") {
			cands = append(cands, f)
		}
	}
	if len(cands) < 20 {
		return sum, fmt.Errorf("tree too small for a yum-like change: %d candidate files", len(cands))
	}
	perm := r.Perm(len(cands))
	modify := make([]fileInfo, 5)
	del := make([]fileInfo, 3)
	for i := range modify {
		modify[i] = cands[perm[i]]
	}
	for i := range del {
		del[i] = cands[perm[5+i]]
	}
	// Ten new files go beside existing ones (a new command, a config
	// file); fifty into a new package directory next to one of them.
	var homes []string
	for i := range 10 {
		homes = append(homes, filepath.Dir(cands[perm[8+i]].path))
	}
	pkg := filepath.Join(homes[0], fmt.Sprintf("yumpkg-%d", seed))
	// Record the times of every directory the change touches.
	dirSet := map[string]bool{homes[0]: true}
	for _, h := range homes {
		dirSet[h] = true
	}
	for _, f := range append(append([]fileInfo(nil), modify...), del...) {
		dirSet[filepath.Dir(f.path)] = true
	}
	for d := range dirSet {
		t, err := getTimes(root, d)
		if err != nil {
			return sum, err
		}
		j.Dirs = append(j.Dirs, t)
	}
	sort.Slice(j.Dirs, func(a, b int) bool { return j.Dirs[a].Path < j.Dirs[b].Path })

	now := time.Now().UnixNano()
	newFile := func(rel string, size int64, mode, uid, gid uint32) error {
		f := &node{path: rel, mode: mode, uid: uid, gid: gid, mtime: now, size: size, seed: r.Uint64()}
		j.Created = append(j.Created, rel)
		n, err := writeFile(filepath.Join(root, rel), f)
		sum.Bytes += n
		return err
	}
	for i, h := range homes {
		rel := filepath.Join(h, fmt.Sprintf("yum-%d-%d%s", seed, i, pick(r, exts)))
		if err := newFile(rel, fileSize(r)%mib, fileMode(r)&0o777, 0, 0); err != nil {
			return sum, err
		}
		sum.New = append(sum.New, rel)
	}
	for _, d := range []string{pkg, filepath.Join(pkg, "bin"), filepath.Join(pkg, "lib"), filepath.Join(pkg, "share"), filepath.Join(pkg, "share", "doc")} {
		j.Created = append(j.Created, d)
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			return sum, err
		}
		sum.New = append(sum.New, d)
	}
	subs := []string{"bin", "lib", "share", "share/doc"}
	for i := range 50 {
		rel := filepath.Join(pkg, subs[i%len(subs)], fmt.Sprintf("%s-%d%s", pick(r, words), i, pick(r, exts)))
		if err := newFile(rel, fileSize(r)%mib, 0o644, 0, 0); err != nil {
			return sum, err
		}
		sum.New = append(sum.New, rel)
	}
	for i, f := range modify {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, f.path), &st); err != nil {
			return sum, err
		}
		saved := fmt.Sprintf("mod-%d", i)
		if err := os.Rename(filepath.Join(root, f.path), filepath.Join(jdir, saved)); err != nil {
			return sum, err
		}
		j.Moved = append(j.Moved, moved{Path: f.path, Saved: saved})
		size := max(0, f.size+int64(r.IntN(4096))-1024)
		if err := newFile(f.path, size, st.Mode&0o7777, st.Uid, st.Gid); err != nil {
			return sum, err
		}
		// The new version replaces the old: not a creation to undo.
		j.Created = j.Created[:len(j.Created)-1]
		sum.Modified = append(sum.Modified, f.path)
	}
	for i, f := range del {
		saved := fmt.Sprintf("del-%d", i)
		if err := os.Rename(filepath.Join(root, f.path), filepath.Join(jdir, saved)); err != nil {
			return sum, err
		}
		j.Moved = append(j.Moved, moved{Path: f.path, Saved: saved})
		sum.Deleted = append(sum.Deleted, f.path)
	}
	return sum, nil
}

func mutateBlocks(root, jdir string, files []fileInfo, seed uint64, j *journal) (ChangeSummary, error) {
	r := newRand(seed, 11)
	var sum ChangeSummary
	var big *fileInfo
	for i := range files {
		f := &files[i]
		if f.nlink != 1 || strings.HasSuffix(f.path, ".img") {
			continue // keep away from hard links and sparse images
		}
		if big == nil || f.size > big.size {
			big = f
		}
	}
	if big == nil || big.size < 64*kib {
		return sum, errors.New("no large file to change blocks in")
	}
	path := filepath.Join(root, big.path)
	t, err := getTimes(root, big.path)
	if err != nil {
		return sum, err
	}
	j.Files = append(j.Files, t)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	const bs = 4 * kib
	src := rand.NewChaCha8(seedBytes(seed))
	old := make([]byte, bs)
	nb := make([]byte, bs)
	for i := range 4 {
		off := r.Int64N(big.size/bs) * bs
		if _, err := f.ReadAt(old, off); err != nil {
			return sum, err
		}
		saved := fmt.Sprintf("block-%d", i)
		if err := os.WriteFile(filepath.Join(jdir, saved), old, 0o600); err != nil {
			return sum, err
		}
		j.Blocks = append(j.Blocks, block{Path: big.path, Off: off, Saved: saved})
		src.Read(nb)
		if _, err := f.WriteAt(nb, off); err != nil {
			return sum, err
		}
		sum.Bytes += bs
	}
	sum.Modified = []string{big.path}
	return sum, nil
}

// Revert undoes the change journalDir records: new files and directories
// are removed, moved files put back, overwritten blocks restored, and the
// recorded times set again. It is a no-op when nothing is recorded.
func Revert(root, journalDir string) error {
	b, err := os.ReadFile(filepath.Join(journalDir, journalFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for i := len(j.Created) - 1; i >= 0; i-- {
		if err := os.Remove(filepath.Join(root, j.Created[i])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, m := range j.Moved {
		if err := os.Rename(filepath.Join(journalDir, m.Saved), filepath.Join(root, m.Path)); err != nil {
			return err
		}
	}
	for i := len(j.Blocks) - 1; i >= 0; i-- {
		bl := j.Blocks[i]
		old, err := os.ReadFile(filepath.Join(journalDir, bl.Saved))
		if err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(root, bl.Path), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(old, bl.Off)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	for _, t := range append(j.Files, j.Dirs...) {
		ts := []unix.Timespec{unix.NsecToTimespec(t.Atime), unix.NsecToTimespec(t.Mtime)}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, t.Path), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return os.RemoveAll(journalDir)
}

func getTimes(root, rel string) (times, error) {
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, rel), &st); err != nil {
		return times{}, err
	}
	return times{Path: rel, Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano()}, nil
}

func inoKey(info fs.FileInfo) ([2]uint64, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink < 2 {
		return [2]uint64{}, false
	}
	return [2]uint64{st.Dev, st.Ino}, true
}

func allocated(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return min(st.Blocks*512, info.Size())
	}
	return info.Size()
}
