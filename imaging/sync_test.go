package imaging_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/treetest"
)

// syncDirs mirrors src into dst with a DirSource and returns the result.
func syncDirs(t *testing.T, src, dst string, opts imaging.Options) *imaging.Result {
	t.Helper()
	s, err := imaging.OpenDirSource(src, imaging.DirSourceOptions{CacheFile: filepath.Join(filepath.Dir(src), "golden.cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("close source: %v", err)
		}
	}()
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(filepath.Dir(dst), "state")
	}
	res, err := imaging.Sync(context.Background(), s, dst, opts)
	if err != nil {
		t.Fatalf("sync %s -> %s: %v (problems: %v)", src, dst, err, problems(res))
	}
	return res
}

func problems(r *imaging.Result) []string {
	if r == nil {
		return nil
	}
	return r.Problems
}

func newDirs(t *testing.T) (src, dst string) {
	base := t.TempDir()
	src, dst = filepath.Join(base, "golden"), filepath.Join(base, "image")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	return src, dst
}

var exact = treetest.DiffOptions{CheckSparse: true}

func TestSyncTrickyTreeMatchesSourceAndRsync(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: owners, devices and trusted/security xattrs are left out of the tree (CI runs as root and tests them)")
	}
	treetest.TrackFDs(t)
	src, dst := newDirs(t)
	want := treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	syncDirs(t, src, dst, imaging.Options{})
	got := treetest.Scan(t, dst)
	treetest.Equal(t, want, got, exact)

	// Stock rsync -aHAXS --numeric-ids on the same tree must produce the
	// same tree as ours (where rsync loses nothing).
	ref := filepath.Join(filepath.Dir(dst), "rsync")
	treetest.RsyncCopy(t, src, ref)
	treetest.Equal(t, treetest.Scan(t, ref), got, treetest.DiffOptions{})
}

func TestSyncNoChangeWritesNothing(t *testing.T) {
	src, dst := newDirs(t)
	treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	syncDirs(t, src, dst, imaging.Options{})
	before := treetest.Scan(t, dst)
	var changes []imaging.Change
	res := syncDirs(t, src, dst, imaging.Options{Itemize: func(c imaging.Change) { changes = append(changes, c) }})
	if n := res.Plan.Len(); n != 0 || len(changes) != 0 {
		for _, c := range changes {
			t.Logf("unexpected action: %s", c)
		}
		t.Fatalf("second run planned %d actions, want 0", n)
	}
	if got := res.BytesReceived; got != 0 {
		t.Errorf("second run received %d bytes, want 0", got)
	}
	treetest.Equal(t, before, treetest.Scan(t, dst), treetest.DiffOptions{})
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSyncColdSourceCacheSendsNothing(t *testing.T) {
	src, dst := newDirs(t)
	treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	syncDirs(t, src, dst, imaging.Options{})
	os.Remove(filepath.Join(filepath.Dir(src), "golden.cache"))
	before := treetest.Scan(t, dst)
	res := syncDirs(t, src, dst, imaging.Options{})
	if got := res.BytesReceived; got != 0 {
		t.Errorf("run with a cold source cache received %d bytes, want 0", got)
	}
	if res.Files != 0 || res.Created != 0 || res.Deleted != 0 || res.MetaOnly != 0 {
		t.Errorf("run with no change wrote: %+v", res.Stats)
	}
	treetest.Equal(t, before, treetest.Scan(t, dst), treetest.DiffOptions{})
}

func TestSyncIncrementalConverges(t *testing.T) {
	src, dst := newDirs(t)
	treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	for i := range 20 {
		write(t, filepath.Join(src, "pkg", "f"+string(rune('a'+i))), strings.Repeat("x", i*100))
	}
	write(t, filepath.Join(src, "flip", "a"), "file that becomes a dir")
	write(t, filepath.Join(src, "flip", "b"), "file that becomes a symlink")
	if err := os.MkdirAll(filepath.Join(src, "flip", "c", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(src, "flip", "c", "sub", "x"), "dir that becomes a file")
	write(t, filepath.Join(src, "hl", "one"), "hard link group changes")
	os.Link(filepath.Join(src, "hl", "one"), filepath.Join(src, "hl", "two"))
	syncDirs(t, src, dst, imaging.Options{})

	steps := []struct {
		name   string
		change func()
	}{
		{"modify append truncate", func() {
			write(t, filepath.Join(src, "pkg", "fa"), "new content")
			f, _ := os.OpenFile(filepath.Join(src, "pkg", "fb"), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("appended")
			f.Close()
			os.Truncate(filepath.Join(src, "pkg", "fc"), 10)
		}},
		{"delete and rename", func() {
			os.Remove(filepath.Join(src, "pkg", "fd"))
			os.Rename(filepath.Join(src, "pkg", "fe"), filepath.Join(src, "pkg", "renamed"))
			os.Rename(filepath.Join(src, "pkg"), filepath.Join(src, "pkg2"))
		}},
		{"type flips", func() {
			os.Remove(filepath.Join(src, "flip", "a"))
			write(t, filepath.Join(src, "flip", "a", "inner"), "now a dir")
			os.Remove(filepath.Join(src, "flip", "b"))
			os.Symlink("../pkg2", filepath.Join(src, "flip", "b"))
			os.RemoveAll(filepath.Join(src, "flip", "c"))
			write(t, filepath.Join(src, "flip", "c"), "now a file")
		}},
		{"flip back", func() {
			os.RemoveAll(filepath.Join(src, "flip", "a"))
			os.Symlink("nowhere", filepath.Join(src, "flip", "a"))
			os.Remove(filepath.Join(src, "flip", "b"))
			write(t, filepath.Join(src, "flip", "b"), "a file again")
		}},
		{"hard link groups change", func() {
			os.Remove(filepath.Join(src, "hl", "two"))
			write(t, filepath.Join(src, "hl", "two"), "separate now")
			os.Link(filepath.Join(src, "hl", "one"), filepath.Join(src, "hl", "three"))
		}},
		{"chmod chown xattr only", func() {
			os.Chmod(filepath.Join(src, "hl", "one"), 0o600)
			unix.Lsetxattr(filepath.Join(src, "hl", "two"), "user.changed", []byte("yes"), 0)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change()
			syncDirs(t, src, dst, imaging.Options{})
			treetest.Equal(t, treetest.Scan(t, src), treetest.Scan(t, dst), exact)
			// And the run after converges to no work at all.
			res := syncDirs(t, src, dst, imaging.Options{Itemize: func(c imaging.Change) { t.Errorf("not converged: %s", c) }})
			if n := res.Plan.Len(); n != 0 {
				t.Errorf("not converged: %d actions", n)
			}
		})
	}
}

func TestSyncGuardRefusesEmptySource(t *testing.T) {
	src, dst := newDirs(t)
	write(t, filepath.Join(src, "a"), "a")
	syncDirs(t, src, dst, imaging.Options{})
	empty := t.TempDir()
	s, err := imaging.OpenDirSource(empty, imaging.DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = imaging.Sync(context.Background(), s, dst, imaging.Options{StateDir: filepath.Join(filepath.Dir(dst), "state")})
	if !errors.Is(err, imaging.ErrGuard) {
		t.Fatalf("sync from an empty source: err = %v, want ErrGuard", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "a")); err != nil {
		t.Errorf("file deleted despite the guard: %v", err)
	}
}

func TestSyncMaxDelete(t *testing.T) {
	src, dst := newDirs(t)
	for i := range 10 {
		write(t, filepath.Join(src, "d", string(rune('a'+i))), "x")
	}
	syncDirs(t, src, dst, imaging.Options{})
	os.RemoveAll(filepath.Join(src, "d"))
	write(t, filepath.Join(src, "keep"), "x")
	s, _ := imaging.OpenDirSource(src, imaging.DirSourceOptions{})
	defer s.Close()
	_, err := imaging.Sync(context.Background(), s, dst, imaging.Options{MaxDelete: 5, StateDir: filepath.Join(filepath.Dir(dst), "state")})
	if !errors.Is(err, imaging.ErrGuard) {
		t.Fatalf("err = %v, want ErrGuard", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "d", "a")); err != nil {
		t.Errorf("deleted despite the guard: %v", err)
	}
	syncDirs(t, src, dst, imaging.Options{MaxDelete: -1})
	treetest.Equal(t, treetest.Scan(t, src), treetest.Scan(t, dst), exact)
}

func TestSyncDryRunChangesNothing(t *testing.T) {
	src, dst := newDirs(t)
	treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	syncDirs(t, src, dst, imaging.Options{})
	write(t, filepath.Join(src, "new"), "new")
	os.Chmod(filepath.Join(src, "new"), 0o600)
	before := treetest.Scan(t, dst)
	var changes []string
	syncDirs(t, src, dst, imaging.Options{DryRun: true, Itemize: func(c imaging.Change) { changes = append(changes, c.String()) }})
	treetest.Equal(t, before, treetest.Scan(t, dst), treetest.DiffOptions{})
	want := ">f+++++++++ new"
	found := false
	for _, c := range changes {
		found = found || c == want
	}
	if !found {
		t.Errorf("itemized %q, want it to contain %q", changes, want)
	}
}

// TestManifestRecordsDestinationIdentity: after a sync, every manifest
// entry carries the destination object's current (dev, ino, ctime, nlink):
// a stale ctime would make the next walk re-read the file, a wrong one
// could make it trust a hash it should not.
func TestManifestRecordsDestinationIdentity(t *testing.T) {
	src, dst := newDirs(t)
	treetest.MakeTricky(t, src, treetest.TrickyOptions{})
	check := func(what string) {
		t.Helper()
		m, err := imaging.LoadManifest(imaging.State(filepath.Join(filepath.Dir(dst), "state")).Manifest)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Entries) == 0 {
			t.Fatalf("%s: empty manifest", what)
		}
		for _, e := range m.Entries {
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dst, e.Path), &st); err != nil {
				t.Errorf("%s: %s: %v", what, e.Path, err)
				continue
			}
			if e.Dev != st.Dev || e.Ino != st.Ino || e.Ctime != st.Ctim.Nano() || e.Nlink != uint32(st.Nlink) {
				t.Errorf("%s: %s: manifest has dev %d ino %d ctime %d nlink %d, the image %d %d %d %d",
					what, e.Path, e.Dev, e.Ino, e.Ctime, e.Nlink, st.Dev, st.Ino, st.Ctim.Nano(), st.Nlink)
			}
		}
	}
	syncDirs(t, src, dst, imaging.Options{})
	check("first sync")
	// Change some files, add one, link one more name to a file.
	entries, _ := os.ReadDir(src)
	n := 0
	for _, de := range entries {
		if de.Type().IsRegular() && n < 5 {
			os.WriteFile(filepath.Join(src, de.Name()), []byte("changed "+de.Name()), 0o644)
			n++
		}
	}
	os.WriteFile(filepath.Join(src, "brand-new"), []byte("new"), 0o600)
	os.Link(filepath.Join(src, "brand-new"), filepath.Join(src, "brand-new-link"))
	syncDirs(t, src, dst, imaging.Options{})
	check("second sync")
}

// TestSyncCountsDirectoryMetadata: a directory whose mode, owner or
// xattrs alone changed is a metadata-only change in the result and the
// generation, as a file's is (a newcomer's chmod 700 bin was itemized
// and counted nowhere).
func TestSyncCountsDirectoryMetadata(t *testing.T) {
	src, dst := newDirs(t)
	write(t, filepath.Join(src, "bin", "tool"), "x")
	write(t, filepath.Join(src, "etc", "conf"), "y")
	syncDirs(t, src, dst, imaging.Options{})
	if err := os.Chmod(filepath.Join(src, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	res := syncDirs(t, src, dst, imaging.Options{})
	if res.MetaOnly != 1 || res.Created != 0 || res.Updated != 0 || res.Deleted != 0 {
		t.Errorf("chmod of a directory: %+v, want metadata only 1 and nothing else", res.Stats)
	}
	if st, err := os.Stat(filepath.Join(dst, "bin")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("bin in the image: %v, %v", st, err)
	}
	// A file added to a directory changes that directory's mtime on the
	// source: itemized as .d..t like rsync does, so counted too; the
	// image's other directories are not.
	write(t, filepath.Join(src, "etc", "new"), "z")
	if res := syncDirs(t, src, dst, imaging.Options{}); res.MetaOnly != 1 || res.Created != 1 {
		t.Errorf("a new file: %+v, want created 1 and metadata only 1 (etc's mtime)", res.Stats)
	}
	if res := syncDirs(t, src, dst, imaging.Options{}); res.MetaOnly != 0 || res.Created != 0 {
		t.Errorf("no change: %+v, want nothing", res.Stats)
	}
}

// TestSyncLogsPhases: a run says at debug level when each phase ends, in
// order, so a pull's timeline can be read from `goldsync pull -vv`
// (issue 14: where the critical path goes).
func TestSyncLogsPhases(t *testing.T) {
	src, dst := newDirs(t)
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "f"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	syncDirs(t, src, dst, imaging.Options{Logger: log})
	want := []string{"first source entry", "scan done", "plan done", "directories made", "content fetched",
		"apply done", "manifest saved", "generation recorded"}
	var got []string
	for _, line := range strings.Split(buf.String(), "\n") {
		if _, rest, ok := strings.Cut(line, `msg="sync: `); ok {
			got = append(got, rest[:strings.IndexByte(rest, '"')])
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("phases logged: %q\nwant %q", got, want)
	}
}
