package imaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// TestScanRecordsOnlyDifferences: a full scan whose entries are the hash
// cache's, all of them (a no-change pull), writes no record: the cache is
// its record, and fetches look files up in it. A scan that differs writes
// one, the cache's blocks before the first difference copied as they are
// (checked again) and the rest encoded, and the cache it leaves is the
// tree's, as a scan without a cache records it: after a change in the
// middle, after the tree's last files are removed (the scan ends before
// the cache), with a damaged block in the cache. Before, every full scan
// encoded and wrote its whole record (~0.1 s of the golden node's CPU at
// 225k entries, issue #14), and a no-change pull deleted it. Work counts:
// blocks encoded and copied, bytes written.
func TestScanRecordsOnlyDifferences(t *testing.T) {
	src := t.TempDir()
	smallFiles(t, src, 3000) // 60 directories of 50 files: ~14 blocks
	// Hard links (the group lends its hash to its other names) and a
	// symlink, spread over the tree.
	for i := 0; i < 3000; i += 700 {
		d := filepath.Join(src, fmt.Sprintf("d%03d", i/50))
		if err := os.Link(filepath.Join(d, fmt.Sprintf("f%04d", i)), filepath.Join(d, "zlink")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d000/f0000", filepath.Join(src, "d030", "sym")); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	type work struct{ copied, encoded, written int64 }
	// scan makes a full scan and closes the source; fetch, when set,
	// fetches that file after the scan.
	scan := func(fetch string) (w work, same bool) {
		t.Helper()
		c0, e0, w0 := recordWork.copied.Load(), recordWork.encoded.Load(), recordWork.written.Load()
		s, err := OpenDirSource(src, DirSourceOptions{CacheFile: cache, LendEntries: true})
		if err != nil {
			t.Fatal(err)
		}
		var req *FetchRequest
		if _, err := s.Scan(context.Background(), ScanRequest{Hash: true}, func(e *tree.Entry) error {
			if e.Path == fetch {
				c := *e
				req = &FetchRequest{Entry: &c}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		same = s.recordIsCache
		if fetch != "" {
			want, err := os.ReadFile(filepath.Join(src, fetch))
			if err != nil {
				t.Fatal(err)
			}
			sink := &discardSink{}
			if err := s.Fetch(context.Background(), []*FetchRequest{req}, func(*FetchRequest) (ContentSink, error) { return sink, nil }); err != nil {
				t.Fatalf("fetch after the scan: %v", err)
			}
			if sink.n != int64(len(want)) {
				t.Fatalf("fetched %d bytes of %s, want %d", sink.n, fetch, len(want))
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return work{recordWork.copied.Load() - c0, recordWork.encoded.Load() - e0, recordWork.written.Load() - w0}, same
	}
	// check says whether the cache holds the tree as a scan without a
	// cache records it, and returns its block count.
	check := func(when string) int {
		t.Helper()
		root, err := fsx.OpenRoot(src)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		res, err := Walk(context.Background(), root, WalkOptions{Hash: true})
		if err != nil {
			t.Fatal(err)
		}
		m, err := LoadManifest(cache)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if len(m.Entries) != len(res.Entries) {
			t.Fatalf("%s: the cache holds %d entries, the tree %d", when, len(m.Entries), len(res.Entries))
		}
		for i, e := range res.Entries {
			g := m.Entries[i]
			if g.Path != e.Path || g.Type != e.Type || g.Mode != e.Mode || g.Size != e.Size || g.Mtime != e.Mtime ||
				g.Ino != e.Ino || g.Ctime != e.Ctime || g.Nlink != e.Nlink || g.Target != e.Target || g.LinkTo != e.LinkTo ||
				g.Flags != e.Flags || g.Hash != e.Hash {
				t.Fatalf("%s: the cache's entry %d is\n%+v, the tree's\n%+v", when, i, *g, *e)
			}
		}
		r, err := openManifestReader(cache)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return r.bi.blocks.len()
	}

	first, _ := scan("")
	blocks := check("first scan")
	if blocks < 8 || first.encoded != int64(blocks) || first.copied != 0 {
		t.Fatalf("first scan: %d blocks in the cache, %+v", blocks, first)
	}
	st0, err := os.Stat(cache)
	if err != nil {
		t.Fatal(err)
	}

	// No change: nothing encoded or written, the cache left as it is,
	// and a fetch finds its file in it.
	w, same := scan("d040/f2000")
	if !same || w != (work{}) {
		t.Fatalf("no-change scan: the record is the cache %v, work %+v, want nothing written", same, w)
	}
	st1, err := os.Stat(cache)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(st0, st1) || st0.ModTime() != st1.ModTime() || st0.Size() != st1.Size() {
		t.Fatal("a no-change scan rewrote the cache")
	}
	check("no-change scan")

	// A file changed in the middle: the blocks before it are copied.
	if err := os.WriteFile(filepath.Join(src, "d030", "f1520"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, same = scan("d030/f1520")
	blocks = check("a file changed")
	if same || w.copied == 0 || w.copied+w.encoded != int64(blocks) || w.copied >= int64(blocks) {
		t.Fatalf("a file changed in the middle: %+v for %d blocks, want some copied, the rest encoded", w, blocks)
	}
	if w, same = scan(""); !same || w != (work{}) {
		t.Fatalf("no-change scan after the change: %v %+v", same, w)
	}

	// The tree's last files removed: the scan ends before the cache.
	for i := 2990; i < 3000; i++ {
		if err := os.Remove(filepath.Join(src, "d059", fmt.Sprintf("f%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
	w, _ = scan("")
	blocks = check("the last files removed")
	if w.copied == 0 || w.copied+w.encoded != int64(blocks) {
		t.Fatalf("the last files removed: %+v for %d blocks", w, blocks)
	}

	// A damaged block in the cache: the scan records the tree all the
	// same (the block's entries are read again).
	r, err := openManifestReader(cache)
	if err != nil {
		t.Fatal(err)
	}
	mid := r.bi.blocks.get(r.bi.blocks.len() / 2)
	r.Close()
	f, err := os.OpenFile(cache, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, int64(mid.off+mid.len/2)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w, same = scan("d001/f0060")
	blocks = check("a damaged block")
	if same || w.copied+w.encoded != int64(blocks) {
		t.Fatalf("a damaged block: %v %+v for %d blocks", same, w, blocks)
	}
	if w, same = scan(""); !same || w != (work{}) {
		t.Fatalf("no-change scan after the damage: %v %+v", same, w)
	}
}
