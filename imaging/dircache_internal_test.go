package imaging

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging/fsx"
)

// moveAway wraps a source's sinks: when the first file of dir has been
// received, it renames the image's dir to away (outside the image, on the
// same filesystem), as a local user who may write to the directory's
// parent can.
type moveAway struct {
	Source
	img, dir, away string
	moved          bool
}

type moveAwaySink struct {
	ContentSink
	m *moveAway
	p string
}

func (k *moveAwaySink) Finish(res FetchResult) error {
	err := k.ContentSink.Finish(res)
	if m := k.m; !m.moved && strings.HasPrefix(k.p, m.dir+"/") {
		m.moved = true
		if rerr := os.Rename(filepath.Join(m.img, m.dir), m.away); rerr != nil {
			return rerr
		}
	}
	return err
}

func (m *moveAway) Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error {
	return m.Source.Fetch(ctx, reqs, func(r *FetchRequest) (ContentSink, error) {
		k, err := open(r)
		if err != nil {
			return nil, err
		}
		return &moveAwaySink{ContentSink: k, m: m, p: r.Entry.Path}, nil
	})
}

// TestFetchDirMovedAwayFails: a directory the fetch holds open (dirCache)
// renamed out of the image in the middle of its files fails the sync with
// fsx.ErrMoved naming it. The files after the rename went where the
// directory went (the descriptor follows it); before the check the sync
// ended as a partial transfer ("1 paths not applied": d001's own metadata)
// with no word of the 49 files written outside the image.
func TestFetchDirMovedAwayFails(t *testing.T) {
	top := t.TempDir()
	src, dst, state := filepath.Join(top, "src"), filepath.Join(top, "img"), filepath.Join(top, "state")
	away := filepath.Join(top, "away")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	smallFiles(t, src, 150) // d000, d001, d002: 50 files each
	s, err := OpenDirSource(src, DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := &moveAway{Source: s, img: dst, dir: "d001", away: away}
	_, err = Sync(context.Background(), m, dst, Options{StateDir: state})
	if !m.moved {
		t.Fatal("the directory was never moved: the test did not run its case")
	}
	if !errors.Is(err, fsx.ErrMoved) {
		t.Fatalf("sync with d001 moved out of the image mid-fetch: %v, want fsx.ErrMoved", err)
	}
	if !strings.Contains(err.Error(), "d001") {
		t.Errorf("error does not name the directory: %v", err)
	}
}

// TestCheckPlaceInPlace: a directory nobody moved passes, through the
// dirCache as through fsx, so a normal fetch is not failed by the check.
func TestCheckPlaceInPlace(t *testing.T) {
	dst := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dst, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := fsx.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := &dirCache{root: r}
	for _, p := range []string{"f", "a/f", "a/b/f", "a/b/g"} {
		e, _, err := c.parent(p)
		if err != nil {
			t.Fatal(err)
		}
		c.put(e)
	}
	if err := c.close(); err != nil {
		t.Fatalf("nothing moved: %v", err)
	}
	// A directory replaced at its path by another one is not in place.
	c = &dirCache{root: r}
	e, _, err := c.parent("a/b/f")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dst, "a", "b"), filepath.Join(dst, "b-old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dst, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.put(e)
	if err := c.close(); !errors.Is(err, fsx.ErrMoved) {
		t.Fatalf("a/b replaced by another directory: %v, want fsx.ErrMoved", err)
	}
}
