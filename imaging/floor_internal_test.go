package imaging

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/treetest"
)

// The work a full pull does per file, counted (issue 14): read and write
// system calls from /proc/self/io, goroutines started from runtime/metrics.
// Wall time is no measure on a shared machine; these counts are.

// ioCalls returns this process's read and write system calls so far.
func ioCalls(t *testing.T) (reads, writes int64) {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "syscr":
			reads = n
		case "syscw":
			writes = n
		}
	}
	return reads, writes
}

// goroutinesCreated returns how many goroutines this process started so far.
func goroutinesCreated() int64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// fetchOnly hides DirSource's local copying, so a pull fetches as it does
// from an agent.
type fetchOnly struct{ Source }

// smallFiles makes n small files in n/50 directories.
func smallFiles(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		d := filepath.Join(dir, fmt.Sprintf("d%03d", i/50))
		if i%50 == 0 {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		body := strings.Repeat(fmt.Sprintf("file %d\n", i), 1+i%300)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%04d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFullPullWorkPerFile: a full pull of 1,000 small files through Fetch
// (the source read in-process, so its reads count too) makes about one
// read and one write system call a file, and starts few goroutines.
// Before: the outcome record of each file was read and written twice
// (pread64 and pwrite64 of 48 bytes: 3.14 writes and 3.21 reads a file
// here, now 1.01 and 1.03), and each completed file started a goroutine of
// its own (1.03 a file, now 0.09).
func TestFullPullWorkPerFile(t *testing.T) {
	const n = 1000
	src, dst, state := t.TempDir(), filepath.Join(t.TempDir(), "img"), filepath.Join(t.TempDir(), "state")
	smallFiles(t, src, n)
	s, err := OpenDirSource(src, DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r0, w0 := ioCalls(t)
	g0 := goroutinesCreated()
	res, err := Sync(context.Background(), fetchOnly{s}, dst, Options{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	r1, w1 := ioCalls(t)
	g1 := goroutinesCreated()
	if res.Stats.Created < n {
		t.Fatalf("created %d, want at least %d", res.Stats.Created, n)
	}
	if d := treetest.Diff(treetest.Scan(t, src), treetest.Scan(t, dst), treetest.DiffOptions{}); len(d) > 0 {
		t.Fatalf("image differs from the source: %v", d)
	}
	reads, writes, gs := float64(r1-r0)/n, float64(w1-w0)/n, float64(g1-g0)/n
	t.Logf("per file: %.2f reads, %.2f writes, %.2f goroutines started", reads, writes, gs)
	if writes > 1.5 {
		t.Errorf("%.2f write calls a file, want at most 1.5 (one for the content)", writes)
	}
	if reads > 1.5 {
		t.Errorf("%.2f read calls a file, want at most 1.5 (one for the source's content)", reads)
	}
	if gs > 0.25 {
		t.Errorf("%.2f goroutines started a file, want at most 0.25", gs)
	}
}

// discardSink takes a file's content and drops it.
type discardSink struct{ n int64 }

func (k *discardSink) Data(_ int64, p []byte) error { k.n += int64(len(p)); return nil }
func (k *discardSink) Reuse(_, n int64) error       { k.n += n; return nil }
func (k *discardSink) Finish(FetchResult) error     { return nil }
func (k *discardSink) Abort(err error)              { panic(err) }

// TestFetchOneFileNoHandoff: a Fetch of a single small file (what an agent
// mostly gets from a receiver's window, a request or two at a time) reads
// it on the caller's goroutine, and holds it as a bare descriptor. Before:
// a feeding goroutine and four workers started per call (5 goroutines),
// and os.NewFile's File, poller state and finalizer (27 allocations a
// call against 17).
func TestFetchOneFileNoHandoff(t *testing.T) {
	src := t.TempDir()
	smallFiles(t, src, 50)
	s, err := OpenDirSource(src, DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var entries []*tree.Entry
	if _, err := s.Scan(context.Background(), ScanRequest{}, func(e *tree.Entry) error {
		if e.Type == tree.TypeRegular {
			entries = append(entries, e.Clone())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	i := 0
	fetch := func() {
		var k discardSink
		e := entries[i%len(entries)]
		i++
		if err := s.Fetch(ctx, []*FetchRequest{{Entry: e}}, func(*FetchRequest) (ContentSink, error) { return &k, nil }); err != nil {
			t.Fatal(err)
		}
		if k.n != e.Size {
			t.Fatalf("%s: got %d bytes, want %d", e.Path, k.n, e.Size)
		}
	}
	fetch()
	g0 := goroutinesCreated()
	for range 100 {
		fetch()
	}
	if g := goroutinesCreated() - g0; g != 0 {
		t.Errorf("100 single-file fetches started %d goroutines, want 0", g)
	}
	allocs := testing.AllocsPerRun(100, fetch)
	t.Logf("%.0f allocations a single-file fetch", allocs)
	if allocs > 20 {
		t.Errorf("%.0f allocations a single-file fetch, want at most 20", allocs)
	}
}

// TestFileOutcomesBatched: outcome records updated in any order read back
// as a model map says, before and after the pending ones are flushed, with
// untouched records zero; and updating each of 3,000 records twice in
// order (as a fetch does) reads and writes the file a few dozen times,
// not 12,000 (a read and a write an update before).
func TestFileOutcomesBatched(t *testing.T) {
	s, err := newFileOutcomes(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	model := map[int32]outcome{}
	check := func(when string) {
		t.Helper()
		for ord := int32(1); ord <= 3100; ord++ {
			if got, want := s.get("", ord), model[ord]; got != want {
				t.Fatalf("%s: record %d = %+v, want %+v", when, ord, got, want)
			}
		}
	}
	outcomeFileOps.Store(0)
	for ord := int32(1); ord <= 3000; ord++ {
		for k := range 2 {
			s.update("", ord, func(o *outcome) {
				o.flags |= outTouched
				if k == 1 {
					o.hash, o.ino, o.nlink = uint64(ord)*7, uint64(ord), 1
				}
			})
		}
		model[ord] = outcome{flags: outTouched, hash: uint64(ord) * 7, ino: uint64(ord), nlink: 1}
	}
	if ops := outcomeFileOps.Load(); ops > 30 {
		t.Errorf("6,000 updates of 3,000 records in order: %d reads and writes of the file, want at most 30", ops)
	}
	check("in order")
	// Out of order, with gaps, some twice: the flags accumulate.
	for i := range 5000 {
		ord := int32(1 + (i*7919)%3100)
		s.update("", ord, func(o *outcome) { o.flags |= outDirChanged; o.ctime++ })
		o := model[ord]
		o.flags |= outDirChanged
		o.ctime++
		model[ord] = o
		if i == 2500 {
			check("mid-way")
		}
	}
	check("scattered, pending")
	s.flush()
	check("scattered, flushed")
	if s.err != nil {
		t.Fatal(s.err)
	}
}

// tokenSource hands out a journal token and, while the receiver fetches,
// records whether the receiver's token file is there.
type tokenSource struct {
	Source
	token     string
	sawToken  bool
	fetchSeen bool
}

func (s *tokenSource) Scan(ctx context.Context, req ScanRequest, fn func(*tree.Entry) error) (ScanResult, error) {
	res, err := s.Source.Scan(ctx, req, fn)
	res.Token = "tok-1"
	return res, err
}

func (s *tokenSource) Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error {
	s.fetchSeen = true
	if _, err := os.Stat(s.token); err == nil {
		s.sawToken = true
	}
	return s.Source.Fetch(ctx, reqs, open)
}

// TestTokenGoneWhileApplying: while a sync changes the image its journal
// token is gone, and a sync that ends saves it again. A run killed while
// applying leaves temp files beside the files it was replacing, and the
// next run, if incremental, walks only its scopes: a rewritten file's
// scope is the file, so its directory's temp was never listed (the
// reliability suite's incremental kill points found one once completed
// files waited for a batch to be finished). Without a token the next run
// walks everything and removes them.
func TestTokenGoneWhileApplying(t *testing.T) {
	src, dst, state := t.TempDir(), filepath.Join(t.TempDir(), "img"), filepath.Join(t.TempDir(), "state")
	smallFiles(t, src, 60)
	ds, err := OpenDirSource(src, DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	s := &tokenSource{Source: ds, token: State(state).Token}
	for i := range 2 {
		if i == 1 {
			if err := os.WriteFile(filepath.Join(src, "d000", "f0007"), []byte("rewritten\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		s.sawToken, s.fetchSeen = false, false
		if _, err := Sync(context.Background(), s, dst, Options{StateDir: state}); err != nil {
			t.Fatal(err)
		}
		if !s.fetchSeen {
			t.Fatalf("run %d fetched nothing", i+1)
		}
		if s.sawToken {
			t.Errorf("run %d: the journal token was there while the image changed", i+1)
		}
		if b, err := os.ReadFile(s.token); err != nil || strings.TrimSpace(string(b)) != "tok-1" {
			t.Errorf("run %d: token after the run: %q, %v; want tok-1", i+1, b, err)
		}
	}
}

// tempWatch wraps a source's sinks: at each file's end it counts the engine
// temp names in the file's destination directory.
type tempWatch struct {
	Source
	dest  string
	temps int
	ends  int
}

type tempWatchSink struct {
	ContentSink
	w *tempWatch
	p string
}

func (k *tempWatchSink) Finish(res FetchResult) error {
	k.w.ends++
	names, _ := filepath.Glob(filepath.Join(k.w.dest, filepath.Dir(k.p), TempPrefix+"*"))
	k.w.temps += len(names)
	return k.ContentSink.Finish(res)
}

func (w *tempWatch) Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error {
	return w.Source.Fetch(ctx, reqs, func(r *FetchRequest) (ContentSink, error) {
		k, err := open(r)
		if err != nil {
			return nil, err
		}
		return &tempWatchSink{ContentSink: k, w: w, p: r.Entry.Path}, nil
	})
}

// TestNewFilesHaveNoTempName: as root, a file new to the image is written
// as an unnamed file (O_TMPFILE) and linked at its name once complete: no
// temp name enters the directory, and a killed run leaves none behind.
// Before, every new file had a temp name from its first byte to its rename
// (here 530 were seen in the directories at the 200 files' ends).
func TestNewFilesHaveNoTempName(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("linkat(AT_EMPTY_PATH) needs root")
	}
	src, dst, state := t.TempDir(), filepath.Join(t.TempDir(), "img"), filepath.Join(t.TempDir(), "state")
	smallFiles(t, src, 200)
	s, err := OpenDirSource(src, DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := &tempWatch{Source: s, dest: dst}
	if _, err := Sync(context.Background(), w, dst, Options{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	if d := treetest.Diff(treetest.Scan(t, src), treetest.Scan(t, dst), treetest.DiffOptions{}); len(d) > 0 {
		t.Fatalf("image differs from the source: %v", d)
	}
	if w.ends != 200 || w.temps != 0 {
		t.Errorf("%d temp names seen at the end of %d new files, want 0 at 200", w.temps, w.ends)
	}
}
