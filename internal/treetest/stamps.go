package treetest

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Stamps records every path under the dirs with what any change to it
// would change: type, mode, size, inode, mtime and ctime (a read changes
// none of them). Two calls' results are equal when nothing under the dirs
// was created, removed, written, chmodded or renamed in between.
func Stamps(t testing.TB, dirs ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			m[p] = fmt.Sprintf("%o %d %d %d.%d %d.%d", st.Mode, st.Size, st.Ino, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return m
}
