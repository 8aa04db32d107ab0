package watch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/tree"
)

// fanotifyMask is what the filesystem marks ask for. FAN_ONDIR extends the
// events to directories.
const fanotifyMask = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_MOVED_FROM | unix.FAN_MOVED_TO |
	unix.FAN_MODIFY | unix.FAN_ATTRIB | unix.FAN_ONDIR

// fanotify watches whole filesystems (FAN_MARK_FILESYSTEM) and gets, for
// every event, the changed directory's file handle and the entry's name
// (FAN_REPORT_DFID_NAME). A handle is resolved to a path with
// open_by_handle_at and /proc/self/fd; events outside the root are dropped.
// Setting up is instant whatever the size of the tree, and no directory
// needs a watch of its own. It needs CAP_SYS_ADMIN and Linux 5.9.
type fanotify struct {
	w     *watcher
	fd    int
	file  *os.File
	fsFDs map[[8]byte]int    // fsid → a descriptor on that filesystem, for open_by_handle_at
	fsDir map[[8]byte]string // fsid → the directory that descriptor was opened on
	// dirs caches resolved directory handles. Directory renames and
	// removals anywhere on a watched filesystem clear it.
	dirs map[string]string
	// open replaces open_by_handle_at when set (tests inject failures).
	open func(mountFD int, h unix.FileHandle, flags int) (int, error)
}

// enomemRetries is how many times a handle's open is tried again after
// ENOMEM, waiting 1, 2, 4... ms in between.
const enomemRetries = 5

// maxDirCache bounds the handle cache.
const maxDirCache = 1 << 16

func newFanotify(w *watcher) (*fanotify, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK|unix.FAN_REPORT_DFID_NAME,
		unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fanotify_init: %w", err)
	}
	b := &fanotify{
		w:     w,
		fd:    fd,
		file:  os.NewFile(uintptr(fd), "fanotify"),
		fsFDs: map[[8]byte]int{},
		fsDir: map[[8]byte]string{},
		dirs:  map[string]string{},
	}
	if err := b.markFS(w.root); err != nil {
		b.close()
		return nil, err
	}
	var vol []string
	for _, m := range w.mounts {
		if w.excludedDir(m.rel) || coveredByAny(vol, m.rel) {
			continue
		}
		err := b.markFS(m.dir)
		switch {
		case err == nil:
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENODEV), errors.Is(err, unix.EXDEV),
			errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
			// A filesystem without file handles (proc, devpts...): no event
			// can name what changed there, so it is reported as dirty in
			// every change set.
			w.log.Info("fanotify cannot watch a mount: it is always reported dirty", "mount", m.dir, "fstype", m.fstype, "err", err)
			vol = append(vol, m.rel)
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EACCES):
			w.log.Warn("mount not reachable, always reported dirty", "mount", m.dir, "err", err)
			vol = append(vol, m.rel)
		default:
			b.close()
			return nil, err
		}
	}
	w.volatile = append(w.volatile, vol...)
	// The barrier folder gets a mark of its own: it may live on another
	// filesystem, and its events must come through this same queue.
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_CREATE|unix.FAN_MOVED_TO, unix.AT_FDCWD, w.barrierDir); err != nil {
		b.close()
		return nil, fmt.Errorf("fanotify: mark %s: %w", w.barrierDir, err)
	}
	if err := b.addFS(w.barrierDir); err != nil {
		b.close()
		return nil, err
	}
	// The root's own removal: the filesystem marks do not ask for self
	// events, so any self event comes from this mark.
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_DELETE_SELF|unix.FAN_MOVE_SELF|unix.FAN_ONDIR, unix.AT_FDCWD, w.root); err != nil {
		w.log.Warn("fanotify cannot watch the root's own removal", "err", err)
	}
	return b, nil
}

func coveredByAny(scopes []string, p string) bool {
	for _, s := range scopes {
		if tree.IsWithin(p, s) {
			return true
		}
	}
	return false
}

// markFS marks the whole filesystem holding path.
func (b *fanotify) markFS(path string) error {
	if err := unix.FanotifyMark(b.fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, fanotifyMask, unix.AT_FDCWD, path); err != nil {
		return fmt.Errorf("fanotify: mark filesystem of %s: %w", path, err)
	}
	return b.addFS(path)
}

// addFS keeps a descriptor on path's filesystem to resolve its handles.
func (b *fanotify) addFS(path string) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		return fmt.Errorf("fanotify: statfs %s: %w", path, err)
	}
	key := fsidKey(sfs.Fsid.Val[0], sfs.Fsid.Val[1])
	if _, ok := b.fsFDs[key]; ok {
		return nil
	}
	// Not O_PATH: open_by_handle_at refuses such a descriptor.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fanotify: open %s: %w", path, err)
	}
	b.fsFDs[key] = fd
	b.fsDir[key] = path
	return nil
}

// reopenFS opens the directory a filesystem descriptor was made from
// again, checking it is still on the filesystem with that fsid.
func (b *fanotify) reopenFS(fsid [8]byte) (int, error) {
	fd, err := unix.Open(b.fsDir[fsid], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || fsidKey(sfs.Fsid.Val[0], sfs.Fsid.Val[1]) != fsid {
		unix.Close(fd)
		return -1, fmt.Errorf("fanotify: %s is no longer on the watched filesystem", b.fsDir[fsid])
	}
	return fd, nil
}

func fsidKey(a, b int32) [8]byte {
	var k [8]byte
	binary.NativeEndian.PutUint32(k[0:], uint32(a))
	binary.NativeEndian.PutUint32(k[4:], uint32(b))
	return k
}

func (b *fanotify) name() string { return BackendFanotify }

func (b *fanotify) close() {
	b.file.Close()
	for _, fd := range b.fsFDs {
		unix.Close(fd)
	}
	b.fsFDs = nil
}

func (b *fanotify) run(ctx context.Context) error {
	return b.w.loop(ctx, b.file, make([]byte, 256<<10), b.handleBuf)
}

// fanEvent is one decoded event: its mask and the directory-and-name record.
type fanEvent struct {
	mask   uint64
	fsid   [8]byte
	htype  int32
	handle []byte
	name   string
	hasFID bool
}

const fanMetaLen = 24 // sizeof(struct fanotify_event_metadata)

// parseFanotify decodes a buffer of events, calling fn for each.
func parseFanotify(buf []byte, fn func(fanEvent) error) error {
	for len(buf) > 0 {
		if len(buf) < fanMetaLen {
			return errors.New("fanotify: truncated event")
		}
		evLen := int(binary.NativeEndian.Uint32(buf[0:]))
		vers := buf[4]
		metaLen := int(binary.NativeEndian.Uint16(buf[6:]))
		if vers != unix.FANOTIFY_METADATA_VERSION {
			return fmt.Errorf("fanotify: metadata version %d, want %d", vers, unix.FANOTIFY_METADATA_VERSION)
		}
		if evLen < fanMetaLen || metaLen < fanMetaLen || metaLen > evLen || evLen > len(buf) {
			return fmt.Errorf("fanotify: bad event lengths %d/%d", evLen, metaLen)
		}
		ev := fanEvent{mask: binary.NativeEndian.Uint64(buf[8:])}
		if fd := int32(binary.NativeEndian.Uint32(buf[16:])); fd >= 0 {
			unix.Close(int(fd))
		}
		info := buf[metaLen:evLen]
		for len(info) >= 4 {
			typ := info[0]
			l := int(binary.NativeEndian.Uint16(info[2:]))
			if l < 4 || l > len(info) {
				return fmt.Errorf("fanotify: bad info record length %d", l)
			}
			rec := info[:l]
			info = info[l:]
			if ev.hasFID {
				continue
			}
			switch typ {
			case unix.FAN_EVENT_INFO_TYPE_DFID_NAME, unix.FAN_EVENT_INFO_TYPE_DFID, unix.FAN_EVENT_INFO_TYPE_FID:
			default:
				continue
			}
			if len(rec) < 20 {
				return errors.New("fanotify: short fid record")
			}
			copy(ev.fsid[:], rec[4:12])
			hlen := int(binary.NativeEndian.Uint32(rec[12:]))
			ev.htype = int32(binary.NativeEndian.Uint32(rec[16:]))
			if hlen > len(rec)-20 {
				return errors.New("fanotify: short file handle")
			}
			ev.handle = rec[20 : 20+hlen]
			if typ == unix.FAN_EVENT_INFO_TYPE_DFID_NAME {
				name := rec[20+hlen:]
				if i := bytes.IndexByte(name, 0); i >= 0 {
					name = name[:i]
				}
				ev.name = string(name)
			}
			ev.hasFID = true
		}
		if err := fn(ev); err != nil {
			return err
		}
		buf = buf[evLen:]
	}
	return nil
}

func (b *fanotify) handleBuf(buf []byte) error { return parseFanotify(buf, b.handle) }

// handle records one event.
func (b *fanotify) handle(ev fanEvent) error {
	s := b.w.sink
	if ev.mask&unix.FAN_Q_OVERFLOW != 0 {
		if err := s.commit(); err != nil {
			return err
		}
		return b.w.j.MarkFullRescan("fanotify event queue overflowed: changes were lost")
	}
	if ev.mask&(unix.FAN_DELETE_SELF|unix.FAN_MOVE_SELF) != 0 {
		return errRootGone
	}
	isDir := ev.mask&unix.FAN_ONDIR != 0
	if isDir && ev.mask&(unix.FAN_MOVED_FROM|unix.FAN_MOVED_TO|unix.FAN_DELETE) != 0 {
		// Cached directory paths may be stale from here on.
		clear(b.dirs)
	}
	if !ev.hasFID {
		return nil
	}
	dir, err := b.resolve(ev)
	if err != nil {
		// The change is real but cannot be placed: better a full rescan
		// than a silent loss.
		b.w.log.Warn("cannot resolve a changed directory", "err", err)
		return b.w.j.MarkFullRescan(fmt.Sprintf("fanotify: cannot resolve a changed directory: %v", err))
	}
	if dir == "" {
		return nil
	}
	if dir == b.w.barrierDir {
		if ev.mask&(unix.FAN_CREATE|unix.FAN_MOVED_TO) != 0 {
			return b.w.barrier(ev.name)
		}
		return nil
	}
	rel, ok := relPath(b.w.root, dir)
	if !ok {
		return nil
	}
	p := rel
	if ev.name != "" && ev.name != "." {
		p = tree.Join(rel, ev.name)
	}
	const dirent = unix.FAN_CREATE | unix.FAN_DELETE | unix.FAN_MOVED_FROM | unix.FAN_MOVED_TO
	switch m := ev.mask & dirent; {
	case m != 0 && p != rel:
		// The kernel merges a queued event with later ones for the same
		// name (CREATE|MODIFY|MOVED_FROM), which hides their order: "created
		// then moved away" cannot be told from "moved away then created
		// again", so only an unmerged create or removal is used to cancel
		// a temporary name.
		kind := kindOther
		switch {
		case m == unix.FAN_CREATE:
			kind = kindBorn
		case m&^(unix.FAN_DELETE|unix.FAN_MOVED_FROM) == 0:
			kind = kindGone
		}
		s.entry(p, isDir, kind)
	case ev.mask&(unix.FAN_MODIFY|unix.FAN_ATTRIB|dirent) != 0:
		s.add(p, isDir || p == rel)
	}
	return nil
}

// openHandle opens the event's directory by its handle, trying again
// after ENOMEM. The kernel's handle decoding (exportfs) turns every failure
// to find or reconnect a dentry into ESTALE except ENOMEM, which it passes
// on as the transient failure it is; it was seen in tests under memory
// pressure (TestPushYumLikeChangesExactly, with 64 Ps), where each one
// had cost a full rescan of the tree. It is still an error after
// enomemRetries tries, and then a full rescan.
func (b *fanotify) openHandle(mountFD int, ev fanEvent) (int, error) {
	open := b.open
	if open == nil {
		open = unix.OpenByHandleAt
	}
	h := unix.NewFileHandle(ev.htype, ev.handle)
	wait := time.Millisecond
	for try := 0; ; try++ {
		fd, err := open(mountFD, h, unix.O_PATH|unix.O_CLOEXEC)
		if !errors.Is(err, unix.ENOMEM) || try == enomemRetries {
			if try > 0 {
				b.w.log.Debug("fanotify: open_by_handle_at failed with ENOMEM", "tries", try+1, "err", err)
			}
			return fd, err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

// resolve returns the absolute path of the event's directory now, or ""
// when it is gone or on a filesystem not watched here.
func (b *fanotify) resolve(ev fanEvent) (string, error) {
	key := string(ev.fsid[:]) + strconv.Itoa(int(ev.htype)) + ":" + string(ev.handle)
	if p, ok := b.dirs[key]; ok {
		return p, nil
	}
	mfd, ok := b.fsFDs[ev.fsid]
	if !ok {
		return "", nil
	}
	fd, err := b.openHandle(mfd, ev)
	if errors.Is(err, unix.EBADF) {
		// The descriptor on the filesystem is no longer open (seen once
		// under load, cause unknown): open it again and retry, rather than
		// lose every later event of the filesystem to full rescans. Events
		// resolved before it was noticed cannot be vouched for: full rescan.
		if rfd, rerr := b.reopenFS(ev.fsid); rerr == nil {
			b.w.log.Warn("fanotify: the filesystem descriptor was closed under us; reopened, full rescan marked", "dir", b.fsDir[ev.fsid], "fd", mfd)
			b.fsFDs[ev.fsid] = rfd
			if ferr := b.w.j.MarkFullRescan("fanotify lost its filesystem descriptor"); ferr != nil {
				return "", ferr
			}
			fd, err = b.openHandle(rfd, ev)
		}
	}
	if errors.Is(err, unix.ESTALE) || errors.Is(err, unix.ENOENT) {
		// Removed since. Whatever happened inside it inside the root is
		// covered by the removal (or move) of it or of an ancestor, which
		// a surviving directory reports.
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("open_by_handle_at: %w", err)
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", fmt.Errorf("readlink: %w", err)
	}
	if strings.HasSuffix(p, " (deleted)") {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Nlink == 0 {
			return "", nil
		}
	}
	if len(b.dirs) >= maxDirCache {
		clear(b.dirs)
	}
	b.dirs[key] = p
	return p, nil
}
