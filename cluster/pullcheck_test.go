package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPullChecks(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "golden")
	file := filepath.Join(dir, "file")
	for _, p := range []string{filepath.Join(src, "srv"), filepath.Join(dir, "images")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
		bad  bool
	}{
		{name: "new DEST in a directory", err: CheckDest(filepath.Join(dir, "images/new"))},
		{name: "DEST a file", err: CheckDest(file), bad: true},
		{name: "DEST's parent missing", err: CheckDest(filepath.Join(dir, "no/such")), bad: true},
		{name: "SRC a file", err: func() error { _, err := CheckSource(file); return err }(), bad: true},
		{name: "SRC missing", err: func() error { _, err := CheckSource(filepath.Join(dir, "none")); return err }(), bad: true},
		{name: "remote SRC", err: func() error { _, err := CheckSource("node004:/"); return err }()},
		{name: "apart", err: CheckOverlap(src, filepath.Join(dir, "images/root"), "", nil)},
		{name: "DEST is SRC", err: CheckOverlap(src, src, filepath.Join(dir, "state"), nil), bad: true},
		{name: "SRC inside DEST", err: CheckOverlap(src, dir, filepath.Join(dir, "images/state"), nil), bad: true},
		{name: "DEST inside SRC", err: CheckOverlap(src, filepath.Join(src, "srv/root"), filepath.Join(dir, "state"), nil), bad: true},
		{name: "DEST inside SRC, excluded", err: CheckOverlap(src, filepath.Join(src, "srv/root"), filepath.Join(dir, "state"), []string{"/srv/*"})},
		{name: "state dir inside SRC", err: CheckOverlap(src, filepath.Join(dir, "images/root"), filepath.Join(src, "srv/state"), nil), bad: true},
	} {
		switch {
		case c.bad && !errors.Is(c.err, ErrSelection):
			t.Errorf("%s: error %v, want one wrapping ErrSelection", c.name, c.err)
		case !c.bad && c.err != nil:
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
}
