package imaging_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
)

type discard struct{}

func (discard) Data(int64, []byte) error         { return nil }
func (discard) Reuse(int64, int64) error         { return nil }
func (discard) Finish(imaging.FetchResult) error { return nil }
func (discard) Abort(error)                      {}

func scanAll(t *testing.T, s *imaging.DirSource) map[string]*tree.Entry {
	t.Helper()
	out := map[string]*tree.Entry{}
	if _, err := s.Scan(context.Background(), imaging.ScanRequest{}, func(e *tree.Entry) error {
		out[e.Path] = e.Clone()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A fetch-only source (an extra stream of a pull) saves the hashes it
// learned into the cache, and never the bare entries it made them from:
// a later scan must still see the file's xattrs.
func TestHashCacheMergeKeepsXattrs(t *testing.T) {
	src := t.TempDir()
	write(t, filepath.Join(src, "f"), "content")
	if err := unix.Lsetxattr(filepath.Join(src, "f"), "user.keep", []byte("me"), 0); err != nil {
		t.Skipf("user xattrs not supported here: %v", err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	open := func() *imaging.DirSource {
		s, err := imaging.OpenDirSource(src, imaging.DirSourceOptions{CacheFile: cache})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The scanning stream closes first, without the hash; then the
	// fetching stream closes with it.
	primary := open()
	scanned := scanAll(t, primary)
	fetcher := open()
	if err := fetcher.Fetch(context.Background(), []*imaging.FetchRequest{{Entry: scanned["f"]}},
		func(*imaging.FetchRequest) (imaging.ContentSink, error) { return discard{}, nil }); err != nil {
		t.Fatal(err)
	}
	if err := primary.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fetcher.Close(); err != nil {
		t.Fatal(err)
	}
	again := scanAll(t, open())
	f := again["f"]
	if len(f.Xattrs) != 1 || f.Xattrs[0].Name != "user.keep" {
		t.Errorf("after the cache merge the scan lost the xattrs: %+v", f.Xattrs)
	}
	if !f.Hashed() {
		t.Errorf("the hash learned by the fetching stream was not cached")
	}
}

// Hashes that fetches compute reach the cache, however many: from the
// stream that scanned (merged into its record at Close), and from a
// fetch-only stream that learned more than a log update holds (a new base
// written a block at a time), more than the source holds in memory (the
// rest spilled to sorted runs and merged back at Close). The next scan
// then finds every file vouched for, as a no-change pull needs.
func TestSourceRecordsLearnedHashes(t *testing.T) {
	src := t.TempDir()
	const files = 9000 // more than maxLearnedPaths (4096) and learnedSpillAt (8192)
	for i := range files {
		d := filepath.Join(src, fmt.Sprintf("d%02d", i%50))
		if i < 50 {
			mkdir(t, d)
		}
		write(t, filepath.Join(d, fmt.Sprintf("f%04d", i)), fmt.Sprint(i))
	}
	fetchAll := func(s *imaging.DirSource, scanned map[string]*tree.Entry) {
		t.Helper()
		var reqs []*imaging.FetchRequest
		for _, e := range scanned {
			if e.Type == tree.TypeRegular {
				reqs = append(reqs, &imaging.FetchRequest{Entry: e})
			}
		}
		if err := s.Fetch(context.Background(), reqs, func(*imaging.FetchRequest) (imaging.ContentSink, error) { return discard{}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	hashed := func(cache string) int {
		t.Helper()
		s, err := imaging.OpenDirSource(src, imaging.DirSourceOptions{CacheFile: cache})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		n := 0
		for _, e := range scanAll(t, s) {
			if e.Type == tree.TypeRegular && e.Hashed() {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		name      string
		fetchOnly bool
	}{{name: "scanning stream"}, {name: "fetch-only stream", fetchOnly: true}} {
		t.Run(c.name, func(t *testing.T) {
			cache := filepath.Join(t.TempDir(), "cache")
			s, err := imaging.OpenDirSource(src, imaging.DirSourceOptions{CacheFile: cache})
			if err != nil {
				t.Fatal(err)
			}
			scanned := scanAll(t, s)
			fetcher := s
			if c.fetchOnly {
				if err := s.Close(); err != nil { // records the scan, no hashes
					t.Fatal(err)
				}
				if n := hashed(cache); n != 0 {
					t.Fatalf("%d files hashed before any fetch", n)
				}
				if fetcher, err = imaging.OpenDirSource(src, imaging.DirSourceOptions{CacheFile: cache}); err != nil {
					t.Fatal(err)
				}
			}
			fetchAll(fetcher, scanned)
			if err := fetcher.Close(); err != nil {
				t.Fatal(err)
			}
			if n := hashed(cache); n != files {
				t.Errorf("the next scan found %d of %d files hashed", n, files)
			}
		})
	}
}
