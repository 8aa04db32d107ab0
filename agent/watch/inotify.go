package watch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/tree"
)

// errRootGone stops a watch whose root was removed or moved.
var errRootGone = errors.New("the watched root was removed or moved")

// loop reads the kernel queue f into buf and hands what it read to handle,
// committing the sink's batch once it is due. It returns nil when ctx is
// done.
func (w *watcher) loop(ctx context.Context, f *os.File, buf []byte, handle func([]byte) error) error {
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		if ctx.Err() != nil {
			return nil
		}
		due, at := w.sink.due()
		if due {
			if err := w.sink.commit(); err != nil {
				return err
			}
			at = time.Time{}
		}
		// Wake at least every quarter second to notice ctx even if the
		// deadline set by AfterFunc was overwritten here.
		deadline := time.Now().Add(250 * time.Millisecond)
		if !at.IsZero() && at.Before(deadline) {
			deadline = at
		}
		f.SetReadDeadline(deadline)
		w.beforeRead()
		n, err := f.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read events: %w", err)
		}
		if err := handle(buf[:n]); err != nil {
			return err
		}
	}
}

// inotifyMask is what every directory watch asks for. IN_ONLYDIR and
// IN_DONT_FOLLOW make a watch refuse anything but a real directory.
const inotifyMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_ATTRIB |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW | unix.IN_EXCL_UNLINK

// inotify watches every directory of the tree with its own watch. A
// directory created or moved in gets watches for its whole subtree, and is
// marked Tree-dirty after they are set, since content may have arrived
// before them.
type inotify struct {
	w         *watcher
	fd        int
	file      *os.File
	nodes     map[int32]*wnode
	root      *wnode
	barrierWD int32
	skip      map[string]bool // mount points not descended into (pseudo filesystems)
}

// wnode is a watched directory. Paths are computed from the parent chain, so
// a directory renamed within the tree needs no rewriting of its subtree.
type wnode struct {
	wd       int32
	name     string
	parent   *wnode
	children map[string]*wnode
}

func newInotify(w *watcher) (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	b := &inotify{
		w:         w,
		fd:        fd,
		file:      os.NewFile(uintptr(fd), "inotify"),
		nodes:     map[int32]*wnode{},
		barrierWD: -1,
		skip:      map[string]bool{},
	}
	for _, m := range w.mounts {
		if pseudoFS[m.fstype] && !b.skip[m.rel] {
			b.skip[m.rel] = true
			if !w.excludedDir(m.rel) {
				w.volatile = append(w.volatile, m.rel)
			}
		}
	}
	if err := b.addTree(nil, tree.Root); err != nil {
		b.close()
		return nil, err
	}
	if b.root == nil {
		b.close()
		return nil, fmt.Errorf("inotify: cannot watch %s", w.root)
	}
	wd, err := unix.InotifyAddWatch(fd, w.barrierDir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ONLYDIR|unix.IN_DONT_FOLLOW)
	if err != nil {
		b.close()
		return nil, fmt.Errorf("inotify: watch %s: %w", w.barrierDir, err)
	}
	b.barrierWD = int32(wd)
	return b, nil
}

func (b *inotify) name() string { return BackendInotify }

func (b *inotify) close() { b.file.Close() }

func (b *inotify) run(ctx context.Context) error {
	return b.w.loop(ctx, b.file, make([]byte, 64<<10), b.handleBuf)
}

func (b *inotify) abs(rel string) string {
	if rel == tree.Root {
		return b.w.root
	}
	if b.w.root == "/" {
		return "/" + rel
	}
	return b.w.root + "/" + rel
}

// path returns the tree path of a watched directory.
func (n *wnode) path() string {
	if n.parent == nil {
		return tree.Root
	}
	var names []string
	for ; n.parent != nil; n = n.parent {
		names = append(names, n.name)
	}
	slices.Reverse(names)
	p := names[0]
	for _, s := range names[1:] {
		p += "/" + s
	}
	return p
}

// addTree watches the directory rel (a child of parent, or the root) and
// every directory beneath it. Each directory is watched before it is listed,
// so a subdirectory created meanwhile is either listed or reported.
func (b *inotify) addTree(parent *wnode, rel string) error {
	type job struct {
		parent *wnode
		rel    string
	}
	stack := []job{{parent, rel}}
	for len(stack) > 0 {
		jb := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		abs := b.abs(jb.rel)
		wd, err := unix.InotifyAddWatch(b.fd, abs, inotifyMask)
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
			continue // gone or replaced: its parent reports it
		case errors.Is(err, unix.ENOSPC):
			return fmt.Errorf("inotify: watch %s: too many watches (raise fs.inotify.max_user_watches): %w", abs, err)
		case err != nil:
			return fmt.Errorf("inotify: watch %s: %w", abs, err)
		}
		n := b.attach(jb.parent, jb.rel, int32(wd))
		if jb.parent == nil {
			b.root = n
		}
		d, err := os.Open(abs)
		if err != nil {
			continue // vanished; its removal is reported
		}
		ents, err := d.ReadDir(-1)
		d.Close()
		if err != nil && len(ents) == 0 {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			c := tree.Join(jb.rel, e.Name())
			if b.skip[c] || b.w.excludedDir(c) {
				continue
			}
			stack = append(stack, job{n, c})
		}
	}
	return nil
}

// attach records the watch wd for directory rel under parent. A wd already
// known is the same directory reached again (after an overflow re-walk):
// the node moves to its new place.
func (b *inotify) attach(parent *wnode, rel string, wd int32) *wnode {
	name := tree.Base(rel)
	n := b.nodes[wd]
	if n == nil {
		n = &wnode{wd: wd, children: map[string]*wnode{}}
		b.nodes[wd] = n
	} else if n.parent != nil && n.parent.children[n.name] == n {
		delete(n.parent.children, n.name)
	}
	n.name, n.parent = name, parent
	if parent != nil {
		if old := parent.children[name]; old != nil && old != n {
			b.drop(old)
		}
		parent.children[name] = n
	}
	return n
}

// drop forgets a watched subtree and removes its watches.
func (b *inotify) drop(n *wnode) {
	if n.parent != nil && n.parent.children[n.name] == n {
		delete(n.parent.children, n.name)
	}
	stack := []*wnode{n}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if b.nodes[x.wd] == x {
			delete(b.nodes, x.wd)
			unix.InotifyRmWatch(b.fd, uint32(x.wd)) // already gone for a deleted directory
		}
		for _, c := range x.children {
			stack = append(stack, c)
		}
		x.children = nil
	}
}

// inotifyEvent is one decoded event.
type inotifyEvent struct {
	wd     int32
	mask   uint32
	cookie uint32
	name   string
}

func (b *inotify) handleBuf(buf []byte) error {
	for len(buf) >= unix.SizeofInotifyEvent {
		ev := inotifyEvent{
			wd:     int32(binary.NativeEndian.Uint32(buf[0:])),
			mask:   binary.NativeEndian.Uint32(buf[4:]),
			cookie: binary.NativeEndian.Uint32(buf[8:]),
		}
		nameLen := int(binary.NativeEndian.Uint32(buf[12:]))
		end := unix.SizeofInotifyEvent + nameLen
		if end > len(buf) {
			return fmt.Errorf("inotify: truncated event")
		}
		name := buf[unix.SizeofInotifyEvent:end]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		ev.name = string(name)
		buf = buf[end:]
		if err := b.handle(ev); err != nil {
			return err
		}
	}
	return nil
}

// handle records one event.
func (b *inotify) handle(ev inotifyEvent) error {
	s := b.w.sink
	if ev.mask&unix.IN_Q_OVERFLOW != 0 {
		return b.overflow()
	}
	if ev.wd == b.barrierWD {
		if ev.mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
			return b.w.barrier(ev.name)
		}
		if ev.mask&unix.IN_IGNORED != 0 {
			return errors.New("inotify: the journal's barrier directory was removed")
		}
		return nil
	}
	n := b.nodes[ev.wd]
	if n == nil {
		return nil // a watch already dropped
	}
	if ev.mask&unix.IN_IGNORED != 0 {
		if n == b.root {
			return errRootGone
		}
		b.drop(n)
		return nil
	}
	if ev.name == "" {
		// The watched directory itself.
		switch {
		case ev.mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0:
			if n == b.root {
				return errRootGone
			}
		case ev.mask&unix.IN_UNMOUNT != 0:
			s.entry(n.path(), true, kindOther)
		case ev.mask&(unix.IN_ATTRIB|unix.IN_MODIFY) != 0:
			s.add(n.path(), true)
		}
		return nil
	}
	p := tree.Join(n.path(), ev.name)
	if b.skip[p] {
		return nil
	}
	isDir := ev.mask&unix.IN_ISDIR != 0
	switch {
	case ev.mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		kind := kindOther
		if ev.mask&unix.IN_CREATE != 0 {
			kind = kindBorn
		}
		if isDir && !b.w.excludedDir(p) {
			if err := b.addTree(n, p); err != nil {
				return err
			}
		}
		// Marked after the watches are set: what arrived before them is
		// covered by the Tree mark, what arrives after by events.
		s.entry(p, isDir, kind)
	case ev.mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
		if c := n.children[ev.name]; c != nil {
			b.drop(c)
		}
		s.entry(p, isDir, kindGone)
	case ev.mask&(unix.IN_MODIFY|unix.IN_ATTRIB) != 0:
		s.add(p, isDir)
	}
	return nil
}

// overflow handles a lost-events notice: directories created meanwhile may
// lack watches, so the whole tree is walked again (existing watches are
// found again, not duplicated) before the full rescan is marked.
func (b *inotify) overflow() error {
	if err := b.w.sink.commit(); err != nil {
		return err
	}
	if err := b.addTree(nil, tree.Root); err != nil {
		return err
	}
	return b.w.j.MarkFullRescan("inotify event queue overflowed: changes were lost")
}
