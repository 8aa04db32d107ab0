package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/internal/treetest"
)

// carried returns what a protocol 27 pull of want through the export
// (stock rsync -aH --numeric-ids) is expected to produce: everything but
//
//   - extended attributes and POSIX ACLs (security.capability included):
//     protocol 27 has no field for them (-X and -A need protocol 30; the
//     client refuses them);
//   - sub-second mtimes: protocol 27 sends whole seconds (rounded down);
//   - mtimes outside 1970..2106: the 32-bit field is read as unsigned
//     seconds since 1970, so 1969-12-31T23:59:58.5 arrives as
//     2106-02-07T06:28:14 and 2200 wraps to 2063.
func carried(want treetest.Manifest) treetest.Manifest {
	out := treetest.Manifest{}
	for p, n := range want {
		n.Xattrs = nil
		n.Mtime = wireMtime(n.Mtime)
		out[p] = n
	}
	return out
}

// wireMtime is the mtime in ns a protocol 27 client sets for a file whose
// mtime is ns: the library sends int32(floor(seconds)), the client reads
// it as uint32.
func wireMtime(ns int64) int64 {
	sec := ns / 1e9
	if ns < 0 && ns%1e9 != 0 {
		sec-- // floor, as time.Time.Unix
	}
	return int64(uint32(int32(sec))) * 1e9
}

func TestWireMtime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ns     int64
		wantNs int64
	}{
		{name: "whole second", ns: 1_600_000_000e9, wantNs: 1_600_000_000e9},
		{name: "sub-second dropped", ns: 1_600_000_000_999_999_999, wantNs: 1_600_000_000e9},
		{name: "after 2038 fits unsigned", ns: 3_000_000_000e9, wantNs: 3_000_000_000e9},
		{name: "pre-epoch wraps to 2106", ns: -1_500_000_000, wantNs: 4294967294e9},
		{name: "2200 wraps", ns: 7258118400e9, wantNs: (7258118400 - 1<<32) * 1e9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := wireMtime(tc.ns); got != tc.wantNs {
				t.Errorf("wireMtime(%d) = %d, want %d", tc.ns, got, tc.wantNs)
			}
		})
	}
}

// TestPullTricky pulls the tricky tree with stock rsync and checks the
// copy holds exactly what protocol 27 carries: types, contents, sizes,
// modes with set-id and sticky bits, numeric owners, symlink targets,
// devices, fifos, sockets, hard links, odd names, 4000-byte paths, whole
// second mtimes (directories and symlinks too), and holes with -S.
func TestPullTricky(t *testing.T) {
	img := mkImage(t, "img")
	// The tricky tree's 1 GiB sparse files would cross the wire whole
	// (the library sends holes as zeros; only the client's -S makes them
	// holes again), which takes seconds: a 16 MiB one shows the same.
	treetest.MakeTricky(t, img, treetest.TrickyOptions{NoSparse: true})
	sparse := filepath.Join(img, "files", "sparse-16m")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("tail"), 16<<20-4); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Dir(sparse), time.Unix(1_700_000_000, 5), time.Unix(1_700_000_000, 5)); err != nil {
		t.Fatal(err)
	}
	want := treetest.Scan(t, img)
	_, addr := serve(t, []Image{{Name: "img", Root: img}}, serveRootOnly)
	dst := filepath.Join(t.TempDir(), "dst")
	out, code := rsyncRun(t, "-aHS", "--numeric-ids", "rsync://"+addr+"/img/", dst+"/")
	if code != 0 {
		t.Fatalf("rsync exit %d:\n%s", code, out)
	}
	got := treetest.Scan(t, dst)
	treetest.Equal(t, carried(want), got, treetest.DiffOptions{CheckSparse: true})

	// And nothing else differs from the original: the losses are exactly
	// the ones carried() lists.
	for _, d := range treetest.Diff(want, got, treetest.DiffOptions{}) {
		_, what, _ := strings.Cut(d, ": ")
		if !strings.HasPrefix(what, "mtime ") && !strings.HasPrefix(what, "xattr ") {
			t.Errorf("unexpected loss: %s", d)
		}
	}
}

// TestPullOptions pulls with the option sets clients commonly use; each
// one changes which fields the file list has, which the child's fixer
// must follow.
func TestPullOptions(t *testing.T) {
	img := mkImage(t, "img")
	files := map[string]string{"etc/motd": "hello\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\n", "usr/bin/tool": "#!/bin/sh\n"}
	for name, data := range files {
		p := filepath.Join(img, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(img, "usr/bin/tool"), 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../etc/motd", filepath.Join(img, "usr/motd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(img, "etc/motd"), filepath.Join(img, "etc/motd.hard")); err != nil {
		t.Fatal(err)
	}
	_, addr := serve(t, []Image{{Name: "img", Root: img}}, serveRootOnly)
	for _, tc := range []struct {
		name string
		args []string
		path string            // requested below the module
		want map[string]string // copy's file -> image's file
	}{
		{name: "archive", args: []string{"-a"}, want: map[string]string{"etc/motd": "etc/motd", "usr/bin/tool": "usr/bin/tool", "etc/motd.hard": "etc/motd"}},
		{name: "archive numeric ids", args: []string{"-a", "--numeric-ids"}, want: map[string]string{"etc/motd": "etc/motd", "usr/bin/tool": "usr/bin/tool"}},
		{name: "no owners", args: []string{"-rlt"}, want: map[string]string{"etc/passwd": "etc/passwd"}},
		{name: "owner only", args: []string{"-rlo"}, want: map[string]string{"etc/motd": "etc/motd"}},
		{name: "group only numeric", args: []string{"-rlg", "--numeric-ids"}, want: map[string]string{"etc/motd": "etc/motd"}},
		{name: "checksum", args: []string{"-ac", "--numeric-ids"}, want: map[string]string{"etc/motd": "etc/motd", "usr/bin/tool": "usr/bin/tool"}},
		{name: "hard links sparse", args: []string{"-aHS", "--numeric-ids"}, want: map[string]string{"etc/motd": "etc/motd", "etc/motd.hard": "etc/motd"}},
		{name: "no devices", args: []string{"-rt", "--no-D"}, want: map[string]string{"etc/motd": "etc/motd"}},
		{name: "subdirectory contents", args: []string{"-a"}, path: "etc/", want: map[string]string{"motd": "etc/motd", "passwd": "etc/passwd"}},
		{name: "subdirectory itself", args: []string{"-a"}, path: "usr", want: map[string]string{"usr/bin/tool": "usr/bin/tool"}},
		{name: "single file", args: []string{"-a"}, path: "etc/motd", want: map[string]string{"motd": "etc/motd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			args := append(append([]string(nil), tc.args...), "rsync://"+addr+"/img/"+tc.path, dst+"/")
			out, code := rsyncRun(t, args...)
			if code != 0 {
				t.Fatalf("rsync %v: exit %d:\n%s", args, code, out)
			}
			for name, src := range tc.want {
				got, err := os.ReadFile(filepath.Join(dst, name))
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if want := files[src]; string(got) != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestPullHugeFileList pulls an image whose file list is larger than a
// multiplexed frame can say (16 MiB), which the library alone sends as a
// broken frame ("unexpected tag").
func TestPullHugeFileList(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPED in -short: builds an image with a 17 MiB file list")
	}
	img := mkImage(t, "img")
	// 4800 files of 3625-byte paths: about 17.5 MB of file list with few
	// files, so the test stays quick. (Absolute paths stay below
	// PATH_MAX.)
	dir := img
	for i := range 14 {
		dir = filepath.Join(dir, strings.Repeat(fmt.Sprintf("d%02d", i), 80))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 4800
	pad := strings.Repeat("f", 245)
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%05d%s", i, pad)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, addr := serve(t, []Image{{Name: "img", Root: img}}, serveRootOnly)
	// --list-only: the client reads the whole file list and writes
	// nothing, which keeps the test quick.
	out, code := rsyncRun(t, "-a", "--numeric-ids", "--list-only", "rsync://"+addr+"/img/")
	if code != 0 {
		t.Fatalf("rsync exit %d:\n%s", code, truncate(out))
	}
	if got := strings.Count(out, pad+"\n"); got != n {
		t.Errorf("listed %d files, want %d", got, n)
	}
}
