package imaging_test

import (
	"context"
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
