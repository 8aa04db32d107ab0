package imaging

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/internal/treetest"
)

// nodesAtFetch is a source whose Fetch first waits until want's paths
// exist in dst (each of them not a regular file), then notes what dst
// holds at the paths of kept, then fetches: in a pull that makes the new
// symlinks and devices only after the content, the wait ends at its
// deadline (a deadlock breaker, not a measure) with seen false.
type nodesAtFetch struct {
	Source
	dst        string
	want, kept []string
	seen       bool
	keptTypes  map[string]uint32 // S_IFMT of each path of kept at the first Fetch
	calls      int
}

func (s *nodesAtFetch) Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error {
	s.calls++
	if s.calls == 1 {
		deadline := time.Now().Add(time.Minute)
		for !s.seen && time.Now().Before(deadline) && ctx.Err() == nil {
			s.seen = true
			for _, p := range s.want {
				var st unix.Stat_t
				if unix.Lstat(filepath.Join(s.dst, p), &st) != nil || st.Mode&unix.S_IFMT == unix.S_IFREG {
					s.seen = false
					time.Sleep(time.Millisecond)
					break
				}
			}
		}
		s.keptTypes = map[string]uint32{}
		for _, p := range s.kept {
			var st unix.Stat_t
			if unix.Lstat(filepath.Join(s.dst, p), &st) == nil {
				s.keptTypes[p] = st.Mode & unix.S_IFMT
			}
		}
	}
	return s.Source.Fetch(ctx, reqs, open)
}

// TestNewNodesDuringFetch: a pull makes the symlinks, devices and fifos
// new to the image while the content arrives (issue 14: they were made
// after the last file, on the pull's critical path), and what replaces an
// object the image has still waits for the content. The source's Fetch
// holds the content back until the new nodes exist: the old order never
// gets there (its wait ends at the deadline, and the test fails).
func TestNewNodesDuringFetch(t *testing.T) {
	src, dst, state := t.TempDir(), filepath.Join(t.TempDir(), "img"), filepath.Join(t.TempDir(), "state")
	for _, d := range []string{"a", "a/b", "c"} {
		if err := os.Mkdir(filepath.Join(src, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range []string{"f", "a/f", "a/b/f", "c/f", "c/was-file"} {
		if err := os.WriteFile(filepath.Join(src, p), []byte(p+string(rune('0'+i))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("f", filepath.Join(src, "a/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../c", filepath.Join(src, "a/b/up")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(src, "c/fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	// A first pull, then the source turns a file into a symlink: that
	// replacement waits for the content.
	s, err := OpenDirSource(src, DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Sync(context.Background(), fetchOnly{s}, dst, Options{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a/link", "a/b/up", "c/fifo"} {
		if err := os.Remove(filepath.Join(dst, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(src, "c/was-file")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(src, "c/was-file")); err != nil {
		t.Fatal(err)
	}
	// Content to fetch in the second pull.
	if err := os.WriteFile(filepath.Join(src, "a/b/new"), []byte("new content"), 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenDirSource(src, DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	na := &nodesAtFetch{Source: fetchOnly{s2}, dst: dst, want: []string{"a/link", "a/b/up", "c/fifo"}, kept: []string{"c/was-file"}}
	res, err := Sync(context.Background(), na, dst, Options{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	if na.calls == 0 {
		t.Fatal("nothing fetched")
	}
	if !na.seen {
		t.Errorf("the new symlinks and the fifo were not made before the content arrived")
	}
	if got := na.keptTypes["c/was-file"]; got != unix.S_IFREG {
		t.Errorf("c/was-file at the first fetch: type %o, want a regular file (a replacement waits for the content)", got)
	}
	if res.Stats.Created < 4 {
		t.Errorf("created %d, want at least 4 (3 nodes, 1 file)", res.Stats.Created)
	}
	if d := treetest.Diff(treetest.Scan(t, src), treetest.Scan(t, dst), treetest.DiffOptions{}); len(d) > 0 {
		t.Fatalf("image differs from the source: %v", d)
	}
}

// TestSourceDoneAfterContent: Options.SourceDone is called once, when the
// content is in place and before the manifest is written (the caller
// lets the source's session end beside the run's last steps, issue 14);
// not in a dry run.
func TestSourceDoneAfterContent(t *testing.T) {
	src, dst, state := t.TempDir(), filepath.Join(t.TempDir(), "img"), filepath.Join(t.TempDir(), "state")
	smallFiles(t, src, 120)
	s, err := OpenDirSource(src, DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dry := 0
	if _, err := Sync(context.Background(), fetchOnly{s}, dst, Options{StateDir: state, DryRun: true, SourceDone: func() { dry++ }}); err != nil {
		t.Fatal(err)
	}
	if dry != 0 {
		t.Errorf("SourceDone called %d times in a dry run", dry)
	}
	calls := 0
	var missing []string
	manifestThen := true
	done := func() {
		calls++
		for _, p := range []string{"d000/f0000", "d001/f0099", "d002/f0119"} {
			if _, err := os.Lstat(filepath.Join(dst, p)); err != nil {
				missing = append(missing, p)
			}
		}
		_, err := os.Lstat(State(state).Manifest)
		manifestThen = err == nil
	}
	if _, err := Sync(context.Background(), fetchOnly{s}, dst, Options{StateDir: state, SourceDone: done}); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Fatalf("SourceDone called %d times, want 1", calls)
	}
	if len(missing) > 0 {
		t.Errorf("SourceDone called before the content was in place: %v missing", missing)
	}
	if manifestThen {
		t.Errorf("SourceDone called after the manifest was written")
	}
}
