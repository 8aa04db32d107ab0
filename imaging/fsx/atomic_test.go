package fsx

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openRoot(t *testing.T) (*os.Root, string) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, dir
}

func noTemps(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && IsAtomicTemp(d.Name()) {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestWriteFileReplaces(t *testing.T) {
	root, dir := openRoot(t)
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(root, "f", []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "f")); got != "new" {
		t.Errorf("content %q", got)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "f")); fi.Mode() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	noTemps(t, dir)
}

func TestWriteCancelled(t *testing.T) {
	root, dir := openRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteAtomic(ctx, root, "f", strings.NewReader("x"), 0o644); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteAtomic = %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "f")); err == nil {
		t.Error("file written despite cancellation")
	}
	noTemps(t, dir)
}

// TestWriteFailedReaderLeavesNoTemp: a reader that fails part way (a
// producer that found its input damaged) leaves neither the file nor its
// temporary file behind.
func TestWriteFailedReaderLeavesNoTemp(t *testing.T) {
	root, dir := openRoot(t)
	bad := errors.New("input damaged")
	r := io.MultiReader(strings.NewReader("part of it"), iotestErrReader{bad})
	if _, err := WriteAtomic(context.Background(), root, "f", r, 0o644); !errors.Is(err, bad) {
		t.Errorf("WriteAtomic = %v, want %v", err, bad)
	}
	if _, err := os.Lstat(filepath.Join(dir, "f")); err == nil {
		t.Error("file written from a failed reader")
	}
	noTemps(t, dir)
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestWriteDoesNotEscape(t *testing.T) {
	root, dir := openRoot(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(root, "link/f", []byte("x"), 0o644); err == nil {
		t.Error("wrote through a symlink leading outside the root")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("files appeared outside the root: %v", ents)
	}
}

func TestCreate(t *testing.T) {
	root, dir := openRoot(t)
	written, err := CreateAtomic(root, "f", []byte("first"), 0o644)
	if err != nil || !written {
		t.Fatalf("CreateAtomic = %v, %v", written, err)
	}
	written, err = CreateAtomic(root, "f", []byte("second"), 0o644)
	if err != nil || written {
		t.Fatalf("second CreateAtomic = %v, %v; want false, nil", written, err)
	}
	if got := read(t, filepath.Join(dir, "f")); got != "first" {
		t.Errorf("content %q, want the first", got)
	}
	noTemps(t, dir)
}

func TestWriteFiles(t *testing.T) {
	root, dir := openRoot(t)
	if err := os.Mkdir(filepath.Join(dir, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := []AtomicFile{{Name: "a/1", Data: []byte("one")}, {Name: "a/2", Data: []byte("two")}, {Name: "3", Data: []byte("three")}}
	if err := WriteFilesAtomic(root, files, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if got := read(t, filepath.Join(dir, f.Name)); got != string(f.Data) {
			t.Errorf("%s holds %q", f.Name, got)
		}
	}
	// One file that cannot be written: none is replaced.
	bad := []AtomicFile{{Name: "a/1", Data: []byte("ONE")}, {Name: "missing/x", Data: []byte("x")}, {Name: "3", Data: []byte("THREE")}}
	if err := WriteFilesAtomic(root, bad, 0o644); err == nil {
		t.Fatal("no error for a file in a missing directory")
	}
	if got := read(t, filepath.Join(dir, "a/1")) + read(t, filepath.Join(dir, "3")); got != "onethree" {
		t.Errorf("files replaced despite the failure: %q", got)
	}
	noTemps(t, dir)
}

// TestFileReadAtEOF: File reads as os.File does (all of p, or fewer with
// io.EOF at the end), writes at offsets, and a second Close does nothing.
func TestFileReadAtEOF(t *testing.T) {
	r, d := openTestDir(t, t.TempDir())
	f, err := d.CreateFile("f", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("world"), 6); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("hello "), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	g, err := r.OpenFile("f")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	p := make([]byte, 8)
	if n, err := g.ReadAt(p, 0); n != 8 || err != nil || string(p) != "hello wo" {
		t.Fatalf("ReadAt(8, 0) = %d, %v, %q", n, err, p[:n])
	}
	if n, err := g.ReadAt(p, 6); n != 5 || err != io.EOF || string(p[:n]) != "world" {
		t.Fatalf("ReadAt(8, 6) = %d, %v, %q; want 5, EOF, world", n, err, p[:n])
	}
	if g.Name() != filepath.Join(r.Path(), "f") {
		t.Errorf("name %q", g.Name())
	}
}

// openTestDir opens dir as a Root and its top as a Dir, both closed when
// the test ends.
func openTestDir(t *testing.T, dir string) (*Root, *Dir) {
	t.Helper()
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	d, err := r.OpenDir(".")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return r, d
}

// TestCheckPlace: an open directory is in place until it (or an ancestor)
// is renamed away, replaced by another directory or by a symlink to it.
func TestCheckPlace(t *testing.T) {
	top := t.TempDir()
	img := filepath.Join(top, "img")
	if err := os.MkdirAll(filepath.Join(img, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, root := openTestDir(t, img)
	if err := root.CheckPlace(); err != nil {
		t.Fatalf("root: %v", err)
	}
	d, err := r.OpenDir("a/b")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	step := func(what string, moved bool) {
		t.Helper()
		err := d.CheckPlace()
		if moved != errors.Is(err, ErrMoved) || (!moved && err != nil) {
			t.Errorf("%s: %v, moved=%v", what, err, moved)
		}
	}
	step("in place", false)
	mv := func(a, b string) {
		t.Helper()
		if err := os.Rename(a, b); err != nil {
			t.Fatal(err)
		}
	}
	mv(filepath.Join(img, "a"), filepath.Join(top, "a"))
	step("ancestor renamed out of the image", true)
	if err := os.Symlink(filepath.Join(top, "a"), filepath.Join(img, "a")); err != nil {
		t.Fatal(err)
	}
	step("ancestor replaced by a symlink to where it went", true)
	if err := os.Remove(filepath.Join(img, "a")); err != nil {
		t.Fatal(err)
	}
	mv(filepath.Join(top, "a"), filepath.Join(img, "a"))
	step("moved back", false)
	mv(filepath.Join(img, "a", "b"), filepath.Join(img, "a", "c"))
	if err := os.Mkdir(filepath.Join(img, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	step("replaced by another directory", true)
}
