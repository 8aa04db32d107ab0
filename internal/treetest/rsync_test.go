package treetest

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRsyncOracle checks that stock rsync -aHAXS --numeric-ids copies the
// tricky tree with nothing lost, holes included: the fixture and the
// reference agree, so a difference between goldsync and rsync on this tree
// is goldsync's.
func TestRsyncOracle(t *testing.T) {
	needRoot(t, "the tricky tree has devices, foreign owners and security xattrs")
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	want := MakeTricky(t, src, TrickyOptions{})
	RsyncCopy(t, src, dst)
	Equal(t, want, Scan(t, dst), DiffOptions{CheckSparse: true})

	// A second run over the copy changes nothing and --delete removes what
	// the source does not have.
	if err := os.WriteFile(filepath.Join(dst, "files", "extraneous"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	RsyncCopy(t, src, dst)
	Equal(t, want, Scan(t, dst), DiffOptions{CheckSparse: true})
}
