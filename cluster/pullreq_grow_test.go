package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/imaging/tree"
)

// receiveGrown runs a Receive of the directory src (served over a pipe, as
// a replica push is) into a new destination and returns how many times
// its Grown hook was called.
func receiveGrown(t *testing.T, src string) int {
	t.Helper()
	ds, err := imaging.OpenDirSource(src, imaging.DirSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	recv, serve := socketPair(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		proto.Serve(t.Context(), serve, func(context.Context, string) (imaging.Source, error) { return ds, nil }, proto.ServeOptions{})
		serve.Close()
	})
	var mu sync.Mutex
	grown := 0
	r := PullRequest{Source: "test", Dest: filepath.Join(t.TempDir(), "image"), Grown: func() {
		mu.Lock()
		grown++
		mu.Unlock()
	}}
	r.StateDir = filepath.Join(t.TempDir(), "state")
	_, err = r.Receive(t.Context(), recv)
	recv.Close()
	wg.Wait()
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return grown
}

// socketPair returns the two ends of a unix socket pair.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

// TestReceiveGrown: a receive leaves the small run (goldsync receive's
// gctune.SmallRun) once, when the push lists more than SmallEntries
// entries or asks for more than SmallBytes of files, and never for a
// small push.
func TestReceiveGrown(t *testing.T) {
	put := func(dir string, files int, size int64) string {
		if size == 0 { // entries only: symlinks are the cheapest to apply
			for i := range files {
				if err := os.Symlink("x", filepath.Join(dir, fmt.Sprintf("l%05d", i))); err != nil {
					t.Fatal(err)
				}
			}
			return dir
		}
		for i := range files {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%05d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(size); err != nil { // sparse: cheap to send
				t.Fatal(err)
			}
			f.Close()
		}
		return dir
	}
	for _, tc := range []struct {
		name  string
		files int
		size  int64
		want  int
	}{
		{"small", 10, 100, 0},
		{"more entries", SmallEntries, 0, 1}, // and the root
		{"more bytes", 2, SmallBytes/2 + 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := receiveGrown(t, put(t.TempDir(), tc.files, tc.size)); got != tc.want {
				t.Errorf("Grown called %d times, want %d", got, tc.want)
			}
		})
	}
}

// countSource lists that many empty files and fetches nothing.
type countSource struct {
	imaging.Source
	entries int
}

func (c countSource) Scan(ctx context.Context, req imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
	for i := range c.entries {
		if err := fn(&tree.Entry{Path: fmt.Sprintf("f%05d", i), Type: tree.TypeRegular}); err != nil {
			return imaging.ScanResult{}, err
		}
	}
	return imaging.ScanResult{}, nil
}

func (c countSource) Fetch(context.Context, []*imaging.FetchRequest, func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	return nil
}

// TestGrowWatchBounds: exactly SmallEntries entries, and exactly
// SmallBytes of files over several fetches, are still a small push; one
// more of either is not.
func TestGrowWatchBounds(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		entries int
		fetches []int64
		want    int
	}{
		{"SmallEntries", SmallEntries, nil, 0},
		{"one more entry", SmallEntries + 1, nil, 1},
		{"twice as many", 2 * SmallEntries, nil, 1},
		{"SmallBytes", 0, []int64{SmallBytes / 2, SmallBytes / 2}, 0},
		{"one more byte", 0, []int64{SmallBytes / 2, SmallBytes/2 + 1, 5}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grown := 0
			g := &growWatch{Source: countSource{entries: tc.entries}, grown: func() { grown++ }}
			if _, err := g.Scan(ctx, imaging.ScanRequest{}, func(*tree.Entry) error { return nil }); err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.fetches {
				req := &imaging.FetchRequest{Entry: &tree.Entry{Path: "f", Type: tree.TypeRegular, Size: n}}
				if err := g.Fetch(ctx, []*imaging.FetchRequest{req}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if grown != tc.want {
				t.Errorf("grown called %d times, want %d", grown, tc.want)
			}
		})
	}
}
