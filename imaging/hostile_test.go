package imaging_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/internal/treetest"
)

// hostile is a Source that sends whatever the test tells it to: entries as
// given, and for each fetched path the content (and lies) configured.
type hostile struct {
	entries []*tree.Entry
	scope   []tree.Scope
	content map[string][]byte
	// lie about the result of a fetch
	declaredSize map[string]int64
	declaredHash map[string]uint64
	extraData    map[string]bool // send bytes past the size
	unchanged    map[string]bool // claim "unchanged"
}

func (h *hostile) Scan(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
	for _, e := range h.entries {
		if err := fn(e); err != nil {
			return imaging.ScanResult{}, err
		}
	}
	return imaging.ScanResult{Scope: h.scope, Entries: len(h.entries)}, nil
}

func (h *hostile) Fetch(ctx context.Context, reqs []*imaging.FetchRequest, open func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	for _, r := range reqs {
		p := r.Entry.Path
		sink, err := open(r)
		if err != nil {
			return err
		}
		data := h.content[p]
		if h.unchanged[p] {
			if err := sink.Finish(imaging.FetchResult{Size: r.Entry.Size, Hash: r.Entry.Hash, Unchanged: true, Mtime: r.Entry.Mtime}); err != nil {
				return err
			}
			continue
		}
		if len(data) > 0 {
			if err := sink.Data(0, data); err != nil {
				return err
			}
		}
		if h.extraData[p] {
			if err := sink.Data(int64(len(data)), []byte("overflow")); err != nil {
				return err
			}
		}
		size, hash := int64(len(data)), xxhash.Sum64(data)
		if s, ok := h.declaredSize[p]; ok {
			size = s
		}
		if s, ok := h.declaredHash[p]; ok {
			hash = s
		}
		if err := sink.Finish(imaging.FetchResult{Size: size, Hash: hash, Mtime: r.Entry.Mtime}); err != nil {
			return err
		}
	}
	return nil
}

func (h *hostile) Close() error { return nil }

func dirE(p string) *tree.Entry {
	return &tree.Entry{Path: p, Type: tree.TypeDir, Mode: 0o755, Mtime: 1e18}
}

func fileE(p string, data string) *tree.Entry {
	e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644, Mtime: 1e18, Size: int64(len(data))}
	e.SetHash(xxhash.Sum64String(data))
	return e
}

func TestHostileSender(t *testing.T) {
	type setup struct {
		h     *hostile
		image string
	}
	cases := []struct {
		name string
		// build returns the hostile source; image holds "keep" (content
		// "old") and "evil" -> OUTSIDE (a symlink to the canary dir).
		build func(s *setup)
		// wantErr: the sync must fail (else it may succeed but must not
		// touch anything outside).
		wantErr bool
		// untouched: refused before anything is applied (the image is as
		// it was, not only "keep").
		untouched bool
	}{
		{name: "absolute name", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("/etc/passwd", "x")}
		}},
		{name: "dot-dot component", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("../outside/canary", "x")}
		}},
		{name: "empty component", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), dirE("a"), fileE("a//b", "x")}
		}},
		{name: "NUL in name", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("a\x00b", "x")}
		}},
		{name: "over-long name", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE(strings.Repeat("n", 256), "x")}
		}},
		{name: "over-long path", wantErr: true, build: func(s *setup) {
			p := strings.Repeat(strings.Repeat("d", 200)+"/", 21) + "f"
			s.h.entries = []*tree.Entry{dirE("."), fileE(p, "x")}
		}},
		{name: "duplicate entry", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("a", "x"), fileE("a", "y")}
		}},
		{name: "out of order", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("b", "x"), fileE("a", "y")}
		}},
		{name: "child under a non-directory", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("f", "x"), fileE("f/child", "y")}
		}},
		{name: "symlink then a child through it, same run", wantErr: true, build: func(s *setup) {
			l := &tree.Entry{Path: "l", Type: tree.TypeSymlink, Target: "../outside", Mtime: 1}
			s.h.entries = []*tree.Entry{dirE("."), l, fileE("l/canary", "pwned")}
		}},
		{name: "child through a symlink left by an earlier run (scoped)", build: func(s *setup) {
			// "evil" is already a symlink to the outside in the image.
			s.h.entries = []*tree.Entry{fileE("evil/canary", "pwned")}
			s.h.scope = []tree.Scope{{Path: "evil/canary"}}
			s.h.content = map[string][]byte{"evil/canary": []byte("pwned")}
		}},
		{name: "entry outside the declared scope", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{fileE("a", "x"), fileE("keep", "new")}
			s.h.scope = []tree.Scope{{Path: "a"}}
		}},
		{name: "hard link to an undeclared target", wantErr: true, untouched: true, build: func(s *setup) {
			l := fileE("b", "x")
			l.LinkTo = "nothere"
			s.h.entries = []*tree.Entry{dirE("."), l}
		}},
		{name: "hard link to a later entry", wantErr: true, untouched: true, build: func(s *setup) {
			l := fileE("a", "x")
			l.LinkTo = "z"
			s.h.entries = []*tree.Entry{dirE("."), l, fileE("z", "x")}
		}},
		{name: "hard link to a directory", wantErr: true, untouched: true, build: func(s *setup) {
			l := fileE("b", "x")
			l.LinkTo = "a"
			s.h.entries = []*tree.Entry{dirE("."), dirE("a"), l}
		}},
		{name: "hard link to a symlink", wantErr: true, untouched: true, build: func(s *setup) {
			l := fileE("b", "x")
			l.LinkTo = "a"
			s.h.entries = []*tree.Entry{dirE("."), {Path: "a", Type: tree.TypeSymlink, Target: "keep", Mtime: 1}, l, fileE("c", "x")}
		}},
		{name: "hard link outside", wantErr: true, untouched: true, build: func(s *setup) {
			l := fileE("b", "x")
			l.LinkTo = "../outside/canary"
			s.h.entries = []*tree.Entry{dirE("."), l}
		}},
		{name: "metadata aimed through a symlink", build: func(s *setup) {
			// The image has evil -> ../outside; the source says evil is a
			// symlink with another owner and mtime: only the link changes.
			l := &tree.Entry{Path: "evil", Type: tree.TypeSymlink, Target: "../outside", Mtime: 12345, UID: 4242}
			s.h.entries = []*tree.Entry{dirE("."), l, fileE("keep", "old")}
		}},
		{name: "declared size differs from the bytes sent", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("keep", "new!")}
			s.h.content = map[string][]byte{"keep": []byte("new!")}
			s.h.declaredSize = map[string]int64{"keep": 100}
		}},
		{name: "bytes beyond the declared size", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("keep", "new!")}
			s.h.content = map[string][]byte{"keep": []byte("new!")}
			s.h.extraData = map[string]bool{"keep": true}
		}},
		{name: "hash differs from the declared hash", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("keep", "new!")}
			s.h.content = map[string][]byte{"keep": []byte("evil")}
		}},
		{name: "false unchanged claim", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE("."), fileE("keep", "new")}
			s.h.unchanged = map[string]bool{"keep": true}
		}},
		{name: "xattr bomb", wantErr: true, build: func(s *setup) {
			f := fileE("a", "x")
			for i := range tree.MaxXattrs + 1 {
				f.Xattrs = append(f.Xattrs, tree.Xattr{Name: "user." + strings.Repeat("x", 3) + string(rune('a'+i%26)) + strings.Repeat("y", i/26), Value: []byte("v")})
			}
			s.h.entries = []*tree.Entry{dirE("."), f}
		}},
		{name: "empty source root", wantErr: true, build: func(s *setup) {
			s.h.entries = []*tree.Entry{dirE(".")}
		}},
		{name: "no root at all", wantErr: true, build: func(s *setup) {
			s.h.entries = nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			image, outside := filepath.Join(base, "image"), filepath.Join(base, "outside")
			os.MkdirAll(image, 0o755)
			os.MkdirAll(outside, 0o755)
			write(t, filepath.Join(outside, "canary"), "canary")
			write(t, filepath.Join(image, "keep"), "old")
			for i := range 3 {
				write(t, filepath.Join(image, "pad", string(rune('a'+i))), "pad")
			}
			if err := os.Symlink("../outside", filepath.Join(image, "evil")); err != nil {
				t.Fatal(err)
			}
			beforeOutside := treetest.Scan(t, outside)
			beforeImage := treetest.Scan(t, image)
			beforeKeep := beforeImage["keep"]
			s := &setup{h: &hostile{content: map[string][]byte{}}, image: image}
			tc.build(s)
			_, err := imaging.Sync(context.Background(), s.h, image, imaging.Options{StateDir: filepath.Join(base, "state")})
			if tc.wantErr && err == nil {
				t.Errorf("sync accepted the hostile input")
			}
			if err != nil {
				t.Logf("error (as it should read to an admin): %v", err)
			}
			treetest.Equal(t, beforeOutside, treetest.Scan(t, outside), treetest.DiffOptions{})
			if tc.untouched {
				treetest.Equal(t, beforeImage, treetest.Scan(t, image), treetest.DiffOptions{})
			}
			if tc.wantErr && !errors.Is(err, imaging.ErrPartial) {
				if got := treetest.Scan(t, image)["keep"]; got.Hash != beforeKeep.Hash {
					t.Errorf("keep was changed by a refused run")
				}
			}
			for p := range treetest.Scan(t, image) {
				if strings.Contains(tree.Base(p), imaging.TempPrefix) {
					t.Errorf("temp file left: %s", p)
				}
			}
		})
	}
}

// validatedHostile is a hostile source that says its entries were
// validated where they entered the process, as proto.Client does.
type validatedHostile struct{ *hostile }

func (validatedHostile) EntriesValidated() bool { return true }

// TestSyncValidatesOnce: Sync checks each entry's fields itself unless
// the source says they were validated where they entered (proto.Client:
// the wire's decoder), and then only their place in the stream: one
// validation an entry, not three (issue #14). A source that does not
// say so is checked as before.
func TestSyncValidatesOnce(t *testing.T) {
	bad := fileE("f", "x")
	bad.Mode = 0o100644 // beyond 07777: Validate refuses it
	for _, tc := range []struct {
		name      string
		src       imaging.Source
		wantRefus bool
	}{
		{"plain source", &hostile{entries: []*tree.Entry{dirE("."), bad}}, true},
		{"validated source", validatedHostile{&hostile{entries: []*tree.Entry{dirE("."), bad}}}, false},
		{"validated source, out of order", validatedHostile{&hostile{entries: []*tree.Entry{dirE("."), fileE("b", "x"), fileE("a", "x")}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			_, err := imaging.Sync(t.Context(), tc.src, dst, imaging.Options{StateDir: t.TempDir(), DryRun: true})
			if got := errors.Is(err, imaging.ErrBadSource); got != tc.wantRefus {
				t.Errorf("err = %v; refused as a bad source: %v, want %v", err, got, tc.wantRefus)
			}
		})
	}
}
