package treetest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// runtimeFDs are the targets of descriptors the Go runtime opens by itself,
// once per process, the first time anything uses its network poller (an
// epoll instance and an eventfd to wake it). TrackFDs tolerates new
// descriptors of these kinds, at most one of each: that is its whole slack.
var runtimeFDs = []string{"anon_inode:[eventpoll]", "anon_inode:[eventfd]"}

// TrackFDs records the descriptors open in the process (/proc/self/fd) and,
// when the test ends (in t.Cleanup, so after the cleanups registered later
// by the test), fails it if more are open than at the start, listing the
// new ones with their targets. It tolerates the Go runtime's own poller
// descriptors (see runtimeFDs), nothing else: a file, pipe, socket or pidfd
// left open by the code under test is reported.
//
// Descriptors are process-wide, so a test that calls TrackFDs must not run
// in parallel with other tests (no t.Parallel in it or beside it). It fails
// the test right away if /proc/self/fd cannot be read.
func TrackFDs(t testing.TB) {
	t.Helper()
	before, err := openFDs()
	if err != nil {
		t.Fatalf("treetest: track fds: %v", err)
	}
	t.Cleanup(func() {
		after, err := openFDs()
		if err != nil {
			t.Errorf("treetest: track fds: %v", err)
			return
		}
		var leaked []string
		tolerated := map[string]bool{}
		for fd, target := range after {
			if before[fd] == target {
				continue
			}
			if slices.Contains(runtimeFDs, target) && !tolerated[target] {
				tolerated[target] = true
				continue
			}
			leaked = append(leaked, fmt.Sprintf("fd %d -> %s", fd, target))
		}
		if len(after)-len(tolerated) > len(before) {
			slices.Sort(leaked)
			t.Errorf("treetest: %d file descriptors open at the start, %d at the end; new ones:\n%s",
				len(before), len(after), strings.Join(leaked, "\n"))
		}
	})
}

// openFDs maps every open descriptor but its own to its /proc target.
func openFDs() (map[int]string, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	self := int(d.Fd())
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/fd: %w", err)
	}
	fds := make(map[int]string, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == self {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + name)
		if err != nil {
			continue // closed since listed
		}
		fds[fd] = target
	}
	return fds, nil
}
