package snapshot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/goldsync/goldsync/imaging"
)

// TestBuildDirMetadataStaysWalked: a snapshot directory whose entries
// change (the image gained a file in it) gets its metadata set again at
// the end of the build. Swapped between the walk and the apply for a
// directory of another user, the swapped-in directory must not become
// root's set-gid directory: the builder hands its walk to the applier,
// which checks the inode. (Before, the builder's Apply had no walk to
// check against: the user's directory became root:root 02775.)
func TestBuildDirMetadataStaysWalked(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to own directories as another user")
	}
	e := newEnv(t, 2)
	logDir := filepath.Join(e.image, "var/log")
	if err := syscall.Chmod(logDir, 0o2775); err != nil { // os.Chmod would drop the set-gid bit
		t.Fatal(err)
	}
	e.build(t)
	writeFile(t, filepath.Join(logDir, "new"), "new in the image\n")
	if err := syscall.Chmod(logDir, 0o2775); err != nil {
		t.Fatal(err)
	}
	testHookBeforeApply = func(host string) {
		if host != "node001" {
			return
		}
		v := e.node(host, "var/log")
		if err := os.Rename(v, v+".old"); err != nil {
			t.Error(err)
		}
		if err := os.Mkdir(v, 0o700); err != nil {
			t.Error(err)
		}
		if err := os.Chown(v, 1000, 1000); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookBeforeApply = nil }()
	res, err := Build(context.Background(), BuildOptions{ImageRoot: e.image, SnapshotDir: e.snap, Nodes: e.nodes, Items: e.items})
	if !errors.Is(err, ErrBuild) || !errors.Is(err, imaging.ErrPartial) {
		t.Errorf("Build with a swapped directory: err %v, want ErrBuild (partial)", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(e.node("node001", "var/log"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Mode&0o7777 != 0o700 {
		t.Errorf("the swapped-in directory is now uid %d mode %#o; want it left as it was (uid 1000, 0700)", st.Uid, st.Mode&0o7777)
	}
	if res != nil && (res.Nodes[0].Failed == 0 || res.Nodes[1].Failed != 0) {
		t.Errorf("failed counts %+v, want a failure on node001 only", res.Nodes)
	}
	if err := syscall.Stat(e.node("node002", "var/log"), &st); err != nil || st.Mode&0o7777 != 0o2775 {
		t.Errorf("node002's var/log mode %#o, %v; want 02775 as in the image", st.Mode&0o7777, err)
	}
}
