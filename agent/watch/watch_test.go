package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/tree"
)

var backends = []string{BackendInotify, BackendFanotify}

// requireBackend skips, loudly, when the kernel or privileges do not
// offer the backend.
func requireBackend(t *testing.T, backend string) {
	t.Helper()
	if backend != BackendFanotify {
		return
	}
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_REPORT_DFID_NAME, unix.O_RDONLY)
	if err == nil {
		err = unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, fanotifyMask, unix.AT_FDCWD, os.TempDir())
		unix.Close(fd)
	}
	switch {
	case errors.Is(err, unix.EPERM):
		t.Skipf("SKIPPING FANOTIFY TESTS: needs CAP_SYS_ADMIN (root): %v", err)
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENODEV):
		t.Skipf("SKIPPING FANOTIFY TESTS: kernel or filesystem of %s lacks FAN_REPORT_DFID_NAME/FAN_MARK_FILESYSTEM: %v", os.TempDir(), err)
	case err != nil:
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// running is a Watch in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
	err    error
	exited bool
}

func startWatch(t *testing.T, backend, root string, j *Journal, opts WatchOptions) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	opts.Backend = backend
	opts.Ready = func() { close(ready) }
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if opts.hooks == nil {
		opts.hooks = &testHooks{}
	}
	opts.hooks.backend = func(name string) {
		if name != backend {
			t.Errorf("backend %q in use, want %q", name, backend)
		}
	}
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Watch(ctx, root, j, opts) }()
	select {
	case <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("Watch ended before ready: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("Watch not ready after 20 s")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the watch and returns what Watch returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	if r.exited {
		return r.err
	}
	r.cancel()
	select {
	case r.err = <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("Watch did not stop within 20 s of cancellation")
	}
	r.exited = true
	return r.err
}

// settle waits until the watcher recorded everything done so far.
func settle(t *testing.T, j *Journal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := j.Barrier(ctx); err != nil {
		t.Fatalf("Barrier: %v", err)
	}
}

func write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantScopes checks that cs names every scope in want, possibly some of
// maybe, and nothing else.
func wantScopes(t *testing.T, cs ChangeSet, want, maybe []string) {
	t.Helper()
	if cs.Full {
		t.Fatalf("Since: Full (%s), want %q", cs.Reason, want)
	}
	got := scopes(cs.Scopes)
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) && !slices.Contains(maybe, g) {
			extra = append(extra, g)
		}
	}
	if missing != nil || extra != nil {
		t.Errorf("scopes %q:\n missing %q\n unexpected %q", got, missing, extra)
	}
}

type testExcluder struct{}

// Excluded leaves out what "/proc/*" and "*.log" would.
func (testExcluder) Excluded(p string, isDir bool) bool {
	return strings.HasPrefix(p, "proc/") || strings.HasSuffix(p, ".log")
}

type watchStep struct {
	change      func(t *testing.T, root, outside string)
	want, maybe []string
}

func TestWatch(t *testing.T) {
	tests := []struct {
		name    string
		before  func(t *testing.T, root, outside string)
		exclude bool
		steps   []watchStep
	}{
		{
			name: "files created, written, deleted, renamed, chmod, xattr, links",
			before: func(t *testing.T, root, _ string) {
				for _, f := range []string{"mod.txt", "del.txt", "old.txt", "perm.txt", "xattr.txt", "target", "same.txt"} {
					write(t, filepath.Join(root, f), "x")
				}
			},
			steps: []watchStep{{
				change: func(t *testing.T, root, _ string) {
					write(t, filepath.Join(root, "new.txt"), "new")
					f, err := os.OpenFile(filepath.Join(root, "mod.txt"), os.O_WRONLY|os.O_APPEND, 0)
					check(t, err)
					f.WriteString("more")
					f.Close()
					check(t, os.Remove(filepath.Join(root, "del.txt")))
					check(t, os.Rename(filepath.Join(root, "old.txt"), filepath.Join(root, "renamed.txt")))
					check(t, os.Chmod(filepath.Join(root, "perm.txt"), 0o4755))
					check(t, unix.Setxattr(filepath.Join(root, "xattr.txt"), "user.test", []byte("v"), 0))
					check(t, os.Symlink("target", filepath.Join(root, "sym")))
					check(t, os.Link(filepath.Join(root, "target"), filepath.Join(root, "hard")))
				},
				want:  []string{".", "del.txt", "hard", "mod.txt", "new.txt", "old.txt", "perm.txt", "renamed.txt", "sym", "xattr.txt"},
				maybe: []string{"target"}, // its link count changed
			}},
		},
		{
			name: "mkdir -p with files is one tree",
			steps: []watchStep{{
				change: func(t *testing.T, root, _ string) {
					write(t, filepath.Join(root, "a/b/c/f"), "f")
					write(t, filepath.Join(root, "a/b/g"), "g")
					write(t, filepath.Join(root, "a/x"), "x")
				},
				want: []string{".", "a/**"},
			}, {
				change: func(t *testing.T, root, _ string) {
					write(t, filepath.Join(root, "a/b/c/f2"), "f")
				},
				want: []string{"a/b/c", "a/b/c/f2"},
			}},
		},
		{
			name: "directory renamed in from outside the root",
			before: func(t *testing.T, _, outside string) {
				write(t, filepath.Join(outside, "sub/x"), "x")
				write(t, filepath.Join(outside, "sub/deep/y"), "y")
			},
			steps: []watchStep{{
				change: func(t *testing.T, root, outside string) {
					check(t, os.Rename(filepath.Join(outside, "sub"), filepath.Join(root, "in")))
				},
				want: []string{".", "in/**"},
			}, {
				change: func(t *testing.T, root, outside string) {
					write(t, filepath.Join(root, "in/deep/z"), "z")
					write(t, filepath.Join(outside, "ignored"), "o")
				},
				want: []string{"in/deep", "in/deep/z"},
			}},
		},
		{
			name: "directory renamed out of the root",
			before: func(t *testing.T, root, _ string) {
				write(t, filepath.Join(root, "leaving/x"), "x")
			},
			steps: []watchStep{{
				change: func(t *testing.T, root, outside string) {
					check(t, os.Rename(filepath.Join(root, "leaving"), filepath.Join(outside, "left")))
				},
				want: []string{".", "leaving/**"},
			}, {
				change: func(t *testing.T, root, outside string) {
					write(t, filepath.Join(outside, "left/y"), "y")
					write(t, filepath.Join(root, "stay"), "s")
				},
				want: []string{".", "stay"},
			}},
		},
		{
			name: "directory renamed within the root",
			before: func(t *testing.T, root, _ string) {
				write(t, filepath.Join(root, "d1/f"), "f")
				write(t, filepath.Join(root, "d1/sub/g"), "g")
				check(t, os.Mkdir(filepath.Join(root, "p"), 0o755))
			},
			steps: []watchStep{{
				change: func(t *testing.T, root, _ string) {
					check(t, os.Rename(filepath.Join(root, "d1"), filepath.Join(root, "p/d2")))
				},
				want: []string{".", "d1/**", "p", "p/d2/**"},
			}, {
				change: func(t *testing.T, root, _ string) {
					write(t, filepath.Join(root, "p/d2/sub/h"), "h")
				},
				want: []string{"p/d2/sub", "p/d2/sub/h"},
			}},
		},
		{
			name: "rm -rf",
			before: func(t *testing.T, root, _ string) {
				write(t, filepath.Join(root, "gone/a/b/f"), "f")
				write(t, filepath.Join(root, "gone/g"), "g")
			},
			steps: []watchStep{{
				change: func(t *testing.T, root, _ string) {
					check(t, os.RemoveAll(filepath.Join(root, "gone")))
				},
				want: []string{".", "gone/**"},
			}},
		},
		{
			name: "directory attributes",
			before: func(t *testing.T, root, _ string) {
				check(t, os.MkdirAll(filepath.Join(root, "d/e"), 0o755))
			},
			steps: []watchStep{{
				change: func(t *testing.T, root, _ string) {
					check(t, os.Chmod(filepath.Join(root, "d/e"), 0o700))
					check(t, os.Chown(filepath.Join(root, "d"), 123, 456))
				},
				want: []string{"d", "d/e"},
			}},
		},
		{
			name: "replace by rename over",
			before: func(t *testing.T, root, _ string) {
				write(t, filepath.Join(root, "etc/conf"), "old")
			},
			steps: []watchStep{{
				change: func(t *testing.T, root, _ string) {
					write(t, filepath.Join(root, "etc/conf.tmp"), "new")
					check(t, os.Rename(filepath.Join(root, "etc/conf.tmp"), filepath.Join(root, "etc/conf")))
				},
				want:  []string{"etc", "etc/conf"},
				maybe: []string{"etc/conf.tmp"}, // only if a batch boundary fell in between
			}},
		},
		{
			name:    "excluded paths are not recorded",
			exclude: true,
			before: func(t *testing.T, root, _ string) {
				check(t, os.MkdirAll(filepath.Join(root, "proc"), 0o755))
				check(t, os.MkdirAll(filepath.Join(root, "keep"), 0o755))
				write(t, filepath.Join(root, "proc/old/status"), "s")
			},
			steps: []watchStep{{
				change: func(t *testing.T, root, _ string) {
					write(t, filepath.Join(root, "proc/1/status"), "s")
					write(t, filepath.Join(root, "proc/old/status"), "t")
					write(t, filepath.Join(root, "app.log"), "l")
					write(t, filepath.Join(root, "keep/x"), "x")
				},
				want: []string{".", "keep", "keep/x", "proc"},
			}},
		},
	}
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					root, outside := t.TempDir(), t.TempDir()
					if tc.before != nil {
						tc.before(t, root, outside)
					}
					j := openTest(t, t.TempDir(), JournalOptions{})
					before := token(t, j)
					var opts WatchOptions
					if tc.exclude {
						opts.Exclude = testExcluder{}
					}
					startWatch(t, backend, root, j, opts)
					cs := since(t, j, before)
					wantFull(t, cs, StartReason)
					tok := cs.Token
					for i, st := range tc.steps {
						st.change(t, root, outside)
						settle(t, j)
						cs := since(t, j, tok)
						t.Logf("step %d: %q", i, scopes(cs.Scopes))
						wantScopes(t, cs, st.want, st.maybe)
						tok = cs.Token
					}
				})
			}
		})
	}
}

// TestWatchBurst: an rpm-style transaction (write a temporary name, rename
// it into place) of a thousand files coalesces to about one scope per file.
func TestWatchBurst(t *testing.T) {
	const n = 1000
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			root := t.TempDir()
			check(t, os.MkdirAll(filepath.Join(root, "usr/lib/pkg"), 0o755))
			j := openTest(t, t.TempDir(), JournalOptions{})
			startWatch(t, backend, root, j, WatchOptions{})
			tok := token(t, j)
			finals := map[string]bool{"usr/lib/pkg": true}
			for i := range n {
				tmp := filepath.Join(root, "usr/lib/pkg", fmt.Sprintf("f%d;5f3a%d", i, i))
				write(t, tmp, strings.Repeat("x", i))
				final := fmt.Sprintf("usr/lib/pkg/f%d", i)
				check(t, os.Rename(tmp, filepath.Join(root, final)))
				finals[final] = true
			}
			settle(t, j)
			cs := since(t, j, tok)
			if cs.Full {
				t.Fatalf("Full: %s", cs.Reason)
			}
			var strays []string
			for _, s := range cs.Scopes {
				if !finals[s.Path] || s.Tree {
					strays = append(strays, s.Path)
				}
			}
			for f := range finals {
				if !tree.Covers(cs.Scopes, f) {
					t.Errorf("%s not covered", f)
				}
			}
			t.Logf("%d files: %d scopes, %d of them temporary names left", n, len(cs.Scopes), len(strays))
			for _, s := range strays {
				if !strings.Contains(s, ";") {
					t.Errorf("scope %q is neither a final name nor a temporary one", s)
				}
			}
			// inotify keeps event order, so a temporary name created and
			// renamed away within one batch leaves nothing; only a batch
			// boundary during the burst (every second at most, or every
			// 8192 paths) can leave one or two behind. fanotify merges a
			// name's queued events (CREATE|MODIFY|MOVED_FROM), which hides
			// whether it was created or removed first: such names are
			// kept, to be safe, so how many remain depends on how far the
			// reader lags.
			if backend == BackendInotify && len(strays) > 10 {
				t.Errorf("%d scopes for %d files: %d temporary names were not coalesced away", len(cs.Scopes), n, len(strays))
			}
		})
	}
}

// TestWatchRestart: a stopped watcher makes Since Full, a restarted one
// marks the gap, and two watchers cannot feed one journal.
func TestWatchRestart(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			root, state := t.TempDir(), t.TempDir()
			j := openTest(t, state, JournalOptions{})
			r := startWatch(t, backend, root, j, WatchOptions{})
			tok := token(t, j)
			write(t, filepath.Join(root, "a"), "a")
			settle(t, j)
			wantScopes(t, since(t, j, tok), []string{".", "a"}, nil)

			// A second watcher, even through another handle, is refused.
			k := openTest(t, state, JournalOptions{})
			err := Watch(t.Context(), root, k, WatchOptions{Backend: backend})
			if !errors.Is(err, ErrWatcherRunning) {
				t.Errorf("second Watch: %v, want ErrWatcherRunning", err)
			}
			// ...and the other handle sees the first watcher's marks.
			wantScopes(t, since(t, k, tok), []string{".", "a"}, nil)

			if err := r.stop(t); err != nil {
				t.Fatalf("Watch: %v", err)
			}
			tok = token(t, j)
			write(t, filepath.Join(root, "b"), "unseen")
			cs := since(t, j, tok)
			wantFull(t, cs, "no watcher")

			// Close and reopen the journal too, as a reboot would.
			check(t, j.Close())
			j = openTest(t, state, JournalOptions{})
			startWatch(t, backend, root, j, WatchOptions{})
			wantFull(t, since(t, j, cs.Token), StartReason)
			tok = token(t, j)
			write(t, filepath.Join(root, "c"), "c")
			settle(t, j)
			wantScopes(t, since(t, j, tok), []string{".", "c"}, nil)
		})
	}
}

// TestWatchStateDirInsideRoot: the journal's own writes are not changes,
// so a state directory inside the watched tree causes no feedback loop.
func TestWatchStateDirInsideRoot(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			root := t.TempDir()
			check(t, os.MkdirAll(filepath.Join(root, "var/lib"), 0o755))
			j := openTest(t, filepath.Join(root, "var/lib/goldsync"), JournalOptions{})
			startWatch(t, backend, root, j, WatchOptions{})
			tok := token(t, j)
			write(t, filepath.Join(root, "x"), "x")
			settle(t, j)
			cs := since(t, j, tok)
			wantScopes(t, cs, []string{".", "x"}, nil)
			for range 3 {
				settle(t, j)
				cs = since(t, j, cs.Token)
				wantScopes(t, cs, nil, nil)
			}
		})
	}
}

// TestInotifyOverflow: a real queue overflow (the reader held back while
// more events than fs.inotify.max_queued_events arrive) makes Since Full,
// and the watcher goes on recording afterwards.
func TestInotifyOverflow(t *testing.T) {
	maxq := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			maxq = v
		}
	}
	if maxq > 1<<20 {
		t.Skipf("SKIPPING: fs.inotify.max_queued_events is %d, too many events to overflow in a test", maxq)
	}
	root := t.TempDir()
	write(t, filepath.Join(root, "a"), "")
	write(t, filepath.Join(root, "b"), "")
	var paused atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	hooks := &testHooks{beforeRead: func() {
		if paused.Load() {
			close(entered)
			<-release
			paused.Store(false)
		}
	}}
	j := openTest(t, t.TempDir(), JournalOptions{})
	startWatch(t, BackendInotify, root, j, WatchOptions{hooks: hooks})
	tok := token(t, j)

	paused.Store(true)
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("reader never paused")
	}
	fa, err := os.OpenFile(filepath.Join(root, "a"), os.O_WRONLY, 0)
	check(t, err)
	defer fa.Close()
	fb, err := os.OpenFile(filepath.Join(root, "b"), os.O_WRONLY, 0)
	check(t, err)
	defer fb.Close()
	// Alternate files so the kernel cannot merge consecutive events.
	for i := range maxq + 100 {
		f := fa
		if i%2 == 1 {
			f = fb
		}
		if _, err := f.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
	}
	// A directory created while events are lost must still get a watch.
	write(t, filepath.Join(root, "late/x"), "x")
	close(release)
	settle(t, j)
	cs := since(t, j, tok)
	wantFull(t, cs, "overflow")

	write(t, filepath.Join(root, "late/y"), "y")
	settle(t, j)
	wantScopes(t, since(t, j, cs.Token), []string{"late", "late/y"}, nil)
}

// TestFanotifyReopensClosedFilesystemFD: when the descriptor used to
// resolve handles stops being valid (seen once in a benchmark under load:
// every event failed with EBADF and became a full rescan), the watcher
// opens it again and keeps reporting exact paths.
func TestFanotifyReopensClosedFilesystemFD(t *testing.T) {
	requireBackend(t, BackendFanotify)
	root := t.TempDir()
	write(t, filepath.Join(root, "d/a"), "a")
	j := openTest(t, t.TempDir(), JournalOptions{})
	hooks := &testHooks{fanotify: func(b *fanotify) {
		for k, fd := range b.fsFDs {
			unix.Close(fd)
			b.fsFDs[k] = 1 << 20 // never a valid descriptor: EBADF
		}
	}}
	startWatch(t, BackendFanotify, root, j, WatchOptions{hooks: hooks})
	settle(t, j)
	tok := token(t, j)
	write(t, filepath.Join(root, "d/b"), "b")
	settle(t, j)
	wantScopes(t, since(t, j, tok), []string{"d", "d/b"}, nil)
}

// TestFanotifyRetriesENOMEM: a handle whose open fails with ENOMEM (the
// kernel's one transient answer when it decodes a handle; seen under
// memory pressure) is opened again, and the change keeps its exact path;
// one that fails every try is a full rescan, never a lost change.
func TestFanotifyRetriesENOMEM(t *testing.T) {
	requireBackend(t, BackendFanotify)
	for _, tc := range []struct {
		name  string
		fails int
	}{{"transient", enomemRetries}, {"lasting", enomemRetries + 1}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, filepath.Join(root, "d/a"), "a")
			j := openTest(t, t.TempDir(), JournalOptions{})
			var mu sync.Mutex
			left, failed := 0, 0
			hooks := &testHooks{fanotify: func(b *fanotify) {
				b.open = func(fd int, h unix.FileHandle, flags int) (int, error) {
					mu.Lock()
					defer mu.Unlock()
					if left > 0 {
						left--
						failed++
						return -1, unix.ENOMEM
					}
					return unix.OpenByHandleAt(fd, h, flags)
				}
			}}
			startWatch(t, BackendFanotify, root, j, WatchOptions{hooks: hooks})
			settle(t, j)
			tok := token(t, j)
			mu.Lock()
			left = tc.fails // the next opens fail: the first is d's
			mu.Unlock()
			write(t, filepath.Join(root, "d/b"), "b")
			settle(t, j)
			cs := since(t, j, tok)
			mu.Lock()
			n := failed
			mu.Unlock()
			if n != tc.fails {
				t.Fatalf("%d opens failed, want %d", n, tc.fails)
			}
			if tc.fails > enomemRetries {
				wantFull(t, cs, "cannot allocate memory")
				return
			}
			wantScopes(t, cs, []string{"d", "d/b"}, nil)
		})
	}
}

// TestFanotifyOverflowEvent: the overflow notice, decoded from the bytes
// the kernel sends, marks a full rescan.
func TestFanotifyOverflowEvent(t *testing.T) {
	j := openTest(t, t.TempDir(), manual())
	w := &watcher{root: "/nonexistent", j: j, log: slog.New(slog.DiscardHandler)}
	w.sink = newSink(w)
	b := &fanotify{w: w, dirs: map[string]string{}}
	tok := token(t, j)
	ev := make([]byte, fanMetaLen)
	binary.NativeEndian.PutUint32(ev[0:], fanMetaLen)
	ev[4] = unix.FANOTIFY_METADATA_VERSION
	binary.NativeEndian.PutUint16(ev[6:], fanMetaLen)
	binary.NativeEndian.PutUint64(ev[8:], unix.FAN_Q_OVERFLOW)
	binary.NativeEndian.PutUint32(ev[16:], uint32(0xffffffff)) // FAN_NOFD
	check(t, b.handleBuf(ev))
	wantFull(t, since(t, j, tok), "overflow")
}

// TestParseFanotifyMalformed: bad buffers are errors, not panics.
func TestParseFanotifyMalformed(t *testing.T) {
	good := make([]byte, fanMetaLen+24)
	binary.NativeEndian.PutUint32(good[0:], uint32(len(good)))
	good[4] = unix.FANOTIFY_METADATA_VERSION
	binary.NativeEndian.PutUint16(good[6:], fanMetaLen)
	binary.NativeEndian.PutUint32(good[16:], uint32(0xffffffff))
	info := good[fanMetaLen:]
	info[0] = unix.FAN_EVENT_INFO_TYPE_DFID_NAME
	binary.NativeEndian.PutUint16(info[2:], 24)
	binary.NativeEndian.PutUint32(info[12:], 2) // handle bytes
	copy(info[20:], "hhn\x00")
	var got fanEvent
	check(t, parseFanotify(good, func(ev fanEvent) error { got = ev; return nil }))
	if !got.hasFID || string(got.handle) != "hh" || got.name != "n" {
		t.Errorf("parsed %+v, want handle hh and name n", got)
	}
	tests := []struct {
		name string
		mut  func(b []byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:10] }},
		{"event longer than buffer", func(b []byte) []byte { binary.NativeEndian.PutUint32(b, 1000); return b }},
		{"metadata longer than event", func(b []byte) []byte { binary.NativeEndian.PutUint16(b[6:], 100); return b }},
		{"bad version", func(b []byte) []byte { b[4] = 99; return b }},
		{"info longer than event", func(b []byte) []byte { binary.NativeEndian.PutUint16(b[fanMetaLen+2:], 200); return b }},
		{"handle longer than info", func(b []byte) []byte { binary.NativeEndian.PutUint32(b[fanMetaLen+12:], 200); return b }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mut(slices.Clone(good))
			if err := parseFanotify(b, func(fanEvent) error { return nil }); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestParseMountInfo(t *testing.T) {
	tests := []struct {
		name, line string
		want       mount
		ok         bool
	}{
		{
			name: "plain",
			line: "36 35 98:0 / /boot rw,noatime master:1 - xfs /dev/sda1 rw",
			want: mount{dir: "/boot", fstype: "xfs"}, ok: true,
		},
		{
			name: "no optional fields, escaped space",
			line: `40 35 0:5 / /mnt/my\040disk rw - devpts devpts rw`,
			want: mount{dir: "/mnt/my disk", fstype: "devpts"}, ok: true,
		},
		{name: "garbage", line: "hello", ok: false},
		{name: "no separator", line: "1 2 3:4 / /x rw a b c", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseMountInfo(tc.line)
			if ok != tc.ok || got != tc.want {
				t.Errorf("parseMountInfo = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
