package reliability

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
)

func setxattr(path, name, value string) error {
	return unix.Lsetxattr(path, name, []byte(value), 0)
}

// watcher counts the changes a sync makes at real names beneath a
// destination, with inotify: a name renamed into place, created, deleted,
// or whose attributes changed. Temp names do not count. It lets a test stop
// a sync "after the k-th change" whatever the machine's speed: a kill point
// measured in progress, not in time.
//
// New directories are watched as they appear; a change made in a new
// directory before its watch is added is missed, so counts are a lower
// bound and vary a little between runs. That is fine for choosing kill
// points.
type watcher struct {
	t      testing.TB
	fd     int
	mu     sync.Mutex
	dirs   map[int32]string
	count  atomic.Int64
	at     int64  // fire when count reaches at (0: never)
	fire   func() // called once, from the watcher's goroutine
	fired  atomic.Bool
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

const watchMask = unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_DELETE | unix.IN_ATTRIB | unix.IN_ONLYDIR

// watchTree starts watching every directory beneath root (which must
// exist). fire, if set, is called once when the count reaches at.
func watchTree(t testing.TB, root string, at int64, fire func()) *watcher {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	w := &watcher{t: t, fd: fd, dirs: map[int32]string{}, at: at, fire: fire,
		stop: make(chan struct{}), done: make(chan struct{})}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && !strings.HasPrefix(d.Name(), imaging.TempPrefix) {
			w.add(p)
		}
		return nil
	})
	go w.loop()
	t.Cleanup(func() { w.close() })
	return w
}

func (w *watcher) add(dir string) {
	wd, err := unix.InotifyAddWatch(w.fd, dir, watchMask)
	if err != nil {
		return // gone already, or a temp dir renamed away
	}
	w.mu.Lock()
	w.dirs[int32(wd)] = dir
	w.mu.Unlock()
}

// close stops the watcher and returns the count.
func (w *watcher) close() int64 {
	if !w.closed {
		w.closed = true
		close(w.stop)
		<-w.done
		unix.Close(w.fd)
	}
	return w.count.Load()
}

func (w *watcher) loop() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		n, err := unix.Poll(fds, 20)
		if err != nil || n == 0 {
			continue
		}
		n, err = unix.Read(w.fd, buf)
		if err != nil || n <= 0 {
			continue
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(raw), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			w.event(ev, name)
		}
	}
}

func (w *watcher) event(ev *unix.InotifyEvent, name string) {
	if ev.Mask&unix.IN_IGNORED != 0 {
		w.mu.Lock()
		delete(w.dirs, ev.Wd)
		w.mu.Unlock()
		return
	}
	if ev.Mask&(unix.IN_MOVED_TO|unix.IN_CREATE|unix.IN_DELETE|unix.IN_ATTRIB) == 0 {
		return
	}
	if strings.HasPrefix(name, imaging.TempPrefix) {
		return
	}
	if ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
		w.mu.Lock()
		dir := w.dirs[ev.Wd]
		w.mu.Unlock()
		if dir != "" {
			w.add(filepath.Join(dir, name))
		}
	}
	if c := w.count.Add(1); w.at > 0 && c >= w.at && w.fire != nil && w.fired.CompareAndSwap(false, true) {
		w.fire()
	}
}

// sleepOrDone waits d or until ch is closed.
func sleepOrDone(d time.Duration, ch <-chan struct{}) {
	select {
	case <-time.After(d):
	case <-ch:
	}
}
