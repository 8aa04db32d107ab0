// Package fsx holds the Linux system calls goldsync's engine is built on:
// a directory Root through which every path is resolved with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, so nothing escapes the root and no
// symlink is ever followed), xattrs, device nodes, nanosecond times, and
// sparse-aware reading and copying.
//
// It knows nothing of entries, plans or the wire; package imaging calls it.
// os.Root was the first candidate, but it follows symlinks inside the root,
// cannot mknod and has no xattr calls; this package does what the engine
// needs and nothing more.
package fsx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Root is an open directory beneath which all paths are resolved. Paths are
// relative and slash-separated ("." is the root itself). A Root is safe for
// concurrent use.
type Root struct {
	fd   int
	path string
}

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// OpenRoot opens the directory at path. The path itself may contain
// symlinks (it is the user's choice); nothing beneath it may.
func OpenRoot(path string) (*Root, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &Root{fd: fd, path: path}, nil
}

// OpenDirNoFollow is OpenRoot for a directory that must not be a symlink
// itself (the last component is not followed: ELOOP or ENOTDIR).
func OpenDirNoFollow(path string) (*Root, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return &Root{fd: fd, path: path}, nil
}

// Close releases the root's descriptor.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Path is the path the root was opened with.
func (r *Root) Path() string { return r.path }

// FD is the root directory's descriptor.
func (r *Root) FD() int { return r.fd }

func (r *Root) perr(op, rel string, err error) error {
	return &os.PathError{Op: op, Path: r.full(rel), Err: err}
}

func (r *Root) full(rel string) string {
	if rel == "." {
		return r.path
	}
	return strings.TrimSuffix(r.path, "/") + "/" + rel
}

// Open opens rel beneath the root with openat2; flags get O_NOFOLLOW and
// O_CLOEXEC added. No component may be a symlink.
func (r *Root) Open(rel string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC), Resolve: resolve}
	if flags&unix.O_CREAT != 0 {
		how.Mode = uint64(mode)
	}
	for {
		fd, err := unix.Openat2(r.fd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, r.perr("open", rel, err)
		}
		return fd, nil
	}
}

// OpenFile opens a file for reading (never blocking on a fifo) as a bare
// descriptor (see File).
func (r *Root) OpenFile(rel string) (*File, error) {
	fd, err := r.Open(rel, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return NewFile(fd, r.full(rel)), nil
}

// Dir is an open directory beneath a Root, used for *at calls on its
// children. Close it when done.
type Dir struct {
	FD   int
	Path string // relative to the root
	root *Root
	// unread: FD is an open file description of the Dir's own that
	// nothing has read yet (OpenDir but ".", Sub), at offset 0, so
	// listing it needs no seek to the start.
	unread bool
}

// OpenDir opens the directory rel.
func (r *Root) OpenDir(rel string) (*Dir, error) {
	if rel == "." {
		fd, err := unix.Dup(r.fd)
		if err != nil {
			return nil, r.perr("dup", rel, err)
		}
		unix.CloseOnExec(fd)
		return &Dir{FD: fd, Path: rel, root: r}, nil
	}
	fd, err := r.Open(rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	return &Dir{FD: fd, Path: rel, root: r, unread: true}, nil
}

// OpenParent opens the directory holding rel and returns it with rel's last
// component.
func (r *Root) OpenParent(rel string) (*Dir, string, error) {
	if rel == "." || rel == "" {
		return nil, "", r.perr("open parent", rel, unix.EINVAL)
	}
	dir, name := ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	d, err := r.OpenDir(dir)
	if err != nil {
		return nil, "", err
	}
	return d, name, nil
}

// ErrMoved means an open directory is no longer at the path it was opened
// at beneath its root: somebody renamed it (or an ancestor) away.
var ErrMoved = errors.New("directory moved while in use")

// CheckPlace reports whether d is still the directory at its path beneath
// the root: the path is resolved again (openat2, beneath, no symlinks) and
// the two must be the same inode. A descriptor follows its directory when
// a local user renames it; work done through d while it was elsewhere
// went where it went, and this is how a caller finds out (ErrMoved). The
// root itself (".") is always in place.
func (d *Dir) CheckPlace() error {
	if d.Path == "." {
		return nil
	}
	var held, now unix.Stat_t
	if err := fstatRetry(d.FD, &held); err != nil {
		return d.root.perr("fstat", d.Path, err)
	}
	fd, err := d.root.Open(d.Path, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) {
			return d.root.perr("check", d.Path, fmt.Errorf("%w: the path now resolves to nothing usable: %w", ErrMoved, err))
		}
		return err
	}
	err = fstatRetry(fd, &now)
	unix.Close(fd)
	if err != nil {
		return d.root.perr("fstat", d.Path, err)
	}
	if held.Dev != now.Dev || held.Ino != now.Ino {
		return d.root.perr("check", d.Path, ErrMoved)
	}
	return nil
}

func fstatRetry(fd int, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if err != unix.EINTR {
			return err
		}
	}
}

// Close closes the directory.
func (d *Dir) Close() error {
	if d.FD < 0 {
		return nil // closed already: never close a number reused since
	}
	err := unix.Close(d.FD)
	d.FD = -1
	return err
}

func (d *Dir) rel(name string) string {
	if d.Path == "." {
		return name
	}
	return d.Path + "/" + name
}

func (d *Dir) perr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: d.root.full(d.rel(name)), Err: err}
}

// procPath names a child of d for the path-based xattr calls. The kernel
// resolves /proc/self/fd/N to the directory itself, and the l*xattr calls
// do not follow a final symlink, so the name is anchored to d.
func (d *Dir) procPath(name string) string {
	return "/proc/self/fd/" + strconv.Itoa(d.FD) + "/" + name
}

// Lstat stats a child without following it.
//
// A walk stats every entry of its tree: a name that fits nameBuf goes to
// the kernel from a buffer on the stack (fstatatName), not from the heap
// copy unix.Fstatat makes of each (issue #14).
func (d *Dir) Lstat(name string, st *unix.Stat_t) error {
	if err := fstatatName(d.FD, name, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return d.perr("lstat", name, err)
	}
	return nil
}

// Names lists the directory's children (not "." or ".."), unsorted.
//
// It reads the directory's own descriptor from the start with getdents64
// into a pooled DirentBuf buffer (one call for a directory of up to ~800
// names, and one to see the end), not through a dup'ed os.File: that cost
// a dup, an fcntl, a seek and a close more per directory, and 8 KiB reads
// (a walk lists every directory of the tree). It seeks to the start
// only where the descriptor may have been read: a directory opened by
// OpenDir (but ".", a dup of the root's) or Sub and not listed yet is
// read as it is (one lseek a directory less: 13,332 in a walk of 225k
// entries). A caller that reads FD itself must not list it after.
func (d *Dir) Names() ([]string, error) { return d.names(nil) }

// dirSeeks counts the seeks names made (a work count for tests).
var dirSeeks atomic.Int64

// NameBuf is the storage NamesInto lists names into, reused from one
// directory to the next. The zero value is ready.
type NameBuf struct {
	blob  []byte
	names []string
}

// maxNameBuf bounds the names' bytes a NameBuf keeps for its next use
// (and a sixteenth of it the names): ~4,000 names of 16 bytes.
const maxNameBuf = 64 << 10

// NamesInto is Names into buf's storage: the names are valid until buf's
// next use. A walk's worker lists every directory of its tree, and each
// list was two new allocations (the names' bytes and the slice), ~7 MB of
// the golden node's no-change pull of 225k entries (issue #14).
func (d *Dir) NamesInto(buf *NameBuf) ([]string, error) { return d.names(buf) }

func (d *Dir) names(into *NameBuf) ([]string, error) {
	if !d.unread {
		dirSeeks.Add(1)
		if _, err := unix.Seek(d.FD, 0, io.SeekStart); err != nil {
			return nil, d.perr("seek", ".", err)
		}
	}
	d.unread = false
	bp := direntPool.Get().(*[]byte)
	defer direntPool.Put(bp)
	buf := *bp
	var (
		names []string
		blob  []byte // nil: a new one each call (Names)
	)
	if into != nil {
		names, blob = into.names[:0], into.blob[:0]
	}
	for {
		n, err := unix.Getdents(d.FD, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read directory %s: %w", d.root.full(d.Path), &os.SyscallError{Syscall: "getdents64", Err: err})
		}
		if n <= 0 {
			if into != nil {
				into.names, into.blob = names, blob
				if cap(blob) > maxNameBuf || cap(names) > maxNameBuf/16 {
					// A huge directory's storage is not kept (the
					// names returned stay valid): a walk's workers would
					// each hold their largest directory's.
					into.names, into.blob = nil, nil
				}
			}
			return names, nil
		}
		names, blob = appendNames(names, blob, into != nil, buf[:n])
	}
}

// appendNames appends the names of the dirent records in buf (but "."
// and "..") to names, all of them slices of one string: one allocation a
// getdents64 call, not one a name as unix.ParseDirent makes (a walk lists
// every name of its tree; issue #14).
//
// With reuse the names' bytes are appended to blob (what is in it already
// is never written again; when it grows, the earlier names keep the old
// array), else to a new one; the blob is returned either way.
func appendNames(names []string, blob []byte, reuse bool, buf []byte) ([]string, []byte) {
	each := func(fn func(name []byte)) {
		for b := buf; len(b) >= direntNameOff; {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < direntNameOff || reclen > len(b) {
				return // a short or broken record: the kernel never sends one
			}
			name := b[direntNameOff:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			if len(name) == 0 || string(name) == "." || string(name) == ".." {
				continue
			}
			fn(name)
		}
	}
	total, count := 0, 0
	each(func(name []byte) { total += len(name); count++ })
	if count == 0 {
		return names, blob
	}
	start := len(blob)
	if reuse {
		blob = slices.Grow(blob, total)
	} else {
		blob, start = make([]byte, 0, total), 0
	}
	each(func(name []byte) { blob = append(blob, name...) })
	// What is in blob is never written again (until a NameBuf's next use).
	all := unsafe.String(&blob[start], len(blob)-start)
	names = slices.Grow(names, count)
	off := 0
	each(func(name []byte) {
		names = append(names, all[off:off+len(name)])
		off += len(name)
	})
	return names, blob
}

// direntNameOff is where a linux_dirent64's name starts: after d_ino (8
// bytes), d_off (8), d_reclen (2, little-endian on the architectures
// goldsync runs on) and d_type (1).
const direntNameOff = 19

// DirentBuf is the size of the buffer Names reads directory entries into:
// 32 KiB, as glibc's readdir, holds ~800 entries of 20-byte names per
// getdents64 call. The walk's workers each list a directory at once, and
// the 256 KiB scratch buffers they used were the largest part of the
// golden node's live heap after its entries (issue #14); a directory of
// more entries takes a few more calls.
const DirentBuf = 32 << 10

var direntPool = sync.Pool{New: func() any { b := make([]byte, DirentBuf); return &b }}

// Readlink reads a symlink child.
func (d *Dir) Readlink(name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(d.FD, name, buf)
		if err != nil {
			return "", d.perr("readlink", name, err)
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, len(buf)*2)
	}
}

// Xattr is a name/value pair, as in tree.Xattr (kept separate so this
// package stays a leaf).
type Xattr struct {
	Name  string
	Value []byte
}

// ListXattrs reads all extended attributes of a child without following it,
// sorted by name. Filesystems without xattr support yield none.
func (d *Dir) ListXattrs(name string) ([]Xattr, error) {
	buf := make([]byte, 1024)
	var n int
	for {
		var err error
		n, err = d.listxattr(name, buf)
		if err == unix.ERANGE {
			sz, err2 := d.listxattr(name, nil)
			if err2 != nil {
				return nil, d.perr("llistxattr", name, err2)
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		if err != nil {
			return nil, d.perr("llistxattr", name, err)
		}
		break
	}
	if n == 0 {
		return nil, nil
	}
	var out []Xattr
	val := make([]byte, 256)
	for _, xn := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if xn == "" {
			continue
		}
		for {
			m, err := d.getxattr(name, xn, val)
			if err == unix.ERANGE {
				sz, err2 := d.getxattr(name, xn, nil)
				if err2 != nil {
					return nil, d.perr("lgetxattr "+xn, name, err2)
				}
				val = make([]byte, sz+64)
				continue
			}
			if err == unix.ENODATA {
				break // removed meanwhile
			}
			if err != nil {
				return nil, d.perr("lgetxattr "+xn, name, err)
			}
			out = append(out, Xattr{Name: xn, Value: append([]byte(nil), val[:m]...)})
			break
		}
	}
	sortXattrs(out)
	return out, nil
}

// noXattrAt is set once listxattrat or getxattrat said ENOSYS (a kernel
// before 6.13): the path-based calls through procPath are used from then on.
var noXattrAt atomic.Bool

// procXattrCalls counts the xattr calls made through procPath (for tests).
var procXattrCalls atomic.Int64

// xattrAtUnusable reports whether err from an *xattrat call means the call
// itself is unavailable (ENOSYS; EPERM from a seccomp filter that does
// not know it), so the path-based call must answer instead.
func xattrAtUnusable(err error) bool {
	if err == unix.ENOSYS {
		noXattrAt.Store(true)
		return true
	}
	return err == unix.EPERM
}

// listxattr is llistxattr on a child of d: listxattrat on the directory's
// descriptor where the kernel has it (a walk lists each new entry's
// xattrs, and resolving /proc/self/fd/N/name cost 3-4 µs an entry against
// 1 µs for the name alone), else through procPath.
func (d *Dir) listxattr(name string, buf []byte) (int, error) {
	if !noXattrAt.Load() {
		n, err := listxattrAt(d.FD, name, buf)
		if !xattrAtUnusable(err) {
			return n, err
		}
	}
	procXattrCalls.Add(1)
	return unix.Llistxattr(d.procPath(name), buf)
}

// getxattr is lgetxattr on a child of d, as listxattr.
func (d *Dir) getxattr(name, attr string, buf []byte) (int, error) {
	if !noXattrAt.Load() {
		n, err := getxattrAt(d.FD, name, attr, buf)
		if !xattrAtUnusable(err) {
			return n, err
		}
	}
	procXattrCalls.Add(1)
	return unix.Lgetxattr(d.procPath(name), attr, buf)
}

func sortXattrs(x []Xattr) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && x[j].Name < x[j-1].Name; j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}

// SetXattrs makes a child's xattrs equal to want, given that it has have
// now: removes the extra ones and sets the missing or different ones.
func (d *Dir) SetXattrs(name string, have, want []Xattr) error {
	p := d.procPath(name)
	wantSet := make(map[string][]byte, len(want))
	for _, x := range want {
		wantSet[x.Name] = x.Value
	}
	for _, x := range have {
		if _, ok := wantSet[x.Name]; !ok {
			if err := unix.Lremovexattr(p, x.Name); err != nil && err != unix.ENODATA {
				return d.perr("lremovexattr "+x.Name, name, err)
			}
		}
	}
	haveSet := make(map[string][]byte, len(have))
	for _, x := range have {
		haveSet[x.Name] = x.Value
	}
	for _, x := range want {
		if old, ok := haveSet[x.Name]; ok && string(old) == string(x.Value) {
			continue
		}
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
			return d.perr("lsetxattr "+x.Name, name, err)
		}
	}
	return nil
}

// Lchown sets a child's owner without following it.
func (d *Dir) Lchown(name string, uid, gid uint32) error {
	if err := unix.Fchownat(d.FD, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return d.perr("lchown", name, err)
	}
	return nil
}

// Chmod sets a child's mode. It must not be called on symlinks (Linux cannot
// change a symlink's mode); the child is checked through an O_PATH handle so
// a symlink swapped in is never followed.
func (d *Dir) Chmod(name string, mode uint32) error {
	fd, err := unix.Openat(d.FD, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return d.perr("chmod", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return d.perr("chmod", name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return d.perr("chmod", name, unix.ELOOP)
	}
	if err := unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode); err != nil {
		return d.perr("chmod", name, err)
	}
	return nil
}

// SetMtime sets a child's modification time (ns) without following it; the
// access time is left alone.
func (d *Dir) SetMtime(name string, mtime int64) error {
	ts := []unix.Timespec{{Sec: 0, Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime)}
	if err := unix.UtimesNanoAt(d.FD, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return d.perr("utimensat", name, err)
	}
	return nil
}

// Mkdir creates a child directory.
func (d *Dir) Mkdir(name string, mode uint32) error {
	if err := unix.Mkdirat(d.FD, name, mode); err != nil {
		return d.perr("mkdir", name, err)
	}
	return nil
}

// Symlink creates a child symlink.
func (d *Dir) Symlink(target, name string) error {
	if err := unix.Symlinkat(target, d.FD, name); err != nil {
		return d.perr("symlink", name, err)
	}
	return nil
}

// Mknod creates a device, fifo or socket node. mode includes the S_IF type.
func (d *Dir) Mknod(name string, mode uint32, dev uint64) error {
	if err := unix.Mknodat(d.FD, name, mode, int(dev)); err != nil {
		return d.perr("mknod", name, err)
	}
	return nil
}

// Link makes name a hard link to the file at rel (relative to the root).
func (d *Dir) Link(src *Dir, srcName, name string) error {
	if err := unix.Linkat(src.FD, srcName, d.FD, name, 0); err != nil {
		return d.perr("link", name, err)
	}
	return nil
}

// Rename renames a child of d to a child of to, replacing what is there.
func (d *Dir) Rename(name string, to *Dir, newName string) error {
	if err := unix.Renameat(d.FD, name, to.FD, newName); err != nil {
		return d.perr("rename", name, err)
	}
	return nil
}

// Exchange atomically swaps two children (renameat2 RENAME_EXCHANGE).
func (d *Dir) Exchange(a, b string) error {
	if err := unix.Renameat2(d.FD, a, d.FD, b, unix.RENAME_EXCHANGE); err != nil {
		return d.perr("rename exchange", b, err)
	}
	return nil
}

// Unlink removes a non-directory child.
func (d *Dir) Unlink(name string) error {
	if err := unix.Unlinkat(d.FD, name, 0); err != nil {
		return d.perr("unlink", name, err)
	}
	return nil
}

// Rmdir removes an empty child directory.
func (d *Dir) Rmdir(name string) error {
	if err := unix.Unlinkat(d.FD, name, unix.AT_REMOVEDIR); err != nil {
		return d.perr("rmdir", name, err)
	}
	return nil
}

// Sub opens a child directory.
func (d *Dir) Sub(name string) (*Dir, error) {
	fd, err := unix.Openat(d.FD, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.perr("open", name, err)
	}
	return &Dir{FD: fd, Path: d.rel(name), root: d.root, unread: true}, nil
}

// CreateFile creates a new child file exclusively for writing, as a bare
// descriptor (see File).
func (d *Dir) CreateFile(name string, mode uint32) (*File, error) {
	fd, err := unix.Openat(d.FD, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, d.perr("create", name, err)
	}
	return NewFile(fd, d.root.full(d.rel(name))), nil
}

// OpenFile opens a child regular file for reading, never following a
// symlink and never blocking on a fifo.
func (d *Dir) OpenFile(name string) (*os.File, error) {
	fd, err := unix.Openat(d.FD, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.perr("open", name, err)
	}
	return os.NewFile(uintptr(fd), d.root.full(d.rel(name))), nil
}

// RemoveAll removes a child and, if it is a directory, everything beneath
// it, never following symlinks. before, if set, is called for each object
// about to be removed, directories too (to keep a regular file's inode
// alive elsewhere, or to count what goes).
func (d *Dir) RemoveAll(name string, before func(d *Dir, name string, st *unix.Stat_t)) error {
	var st unix.Stat_t
	if err := d.Lstat(name, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if before != nil {
			before(d, name, &st)
		}
		return d.Unlink(name)
	}
	sub, err := d.Sub(name)
	if err != nil {
		return err
	}
	names, err := sub.Names()
	if err == nil {
		for _, n := range names {
			if err = sub.RemoveAll(n, before); err != nil {
				break
			}
		}
	}
	sub.Close()
	if err != nil {
		return err
	}
	if before != nil {
		before(d, name, &st)
	}
	return d.Rmdir(name)
}

// StatMode converts a file type from st_mode to a name, for messages.
func StatMode(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "chardev"
	case unix.S_IFBLK:
		return "blockdev"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "unknown"
}

// StatMtime returns st's mtime in ns.
func StatMtime(st *unix.Stat_t) int64 { return st.Mtim.Sec*1e9 + st.Mtim.Nsec }

// StatCtime returns st's ctime in ns.
func StatCtime(st *unix.Stat_t) int64 { return st.Ctim.Sec*1e9 + st.Ctim.Nsec }

// OpenDirOrParent is OpenParent, except that for the root itself it returns
// the root directory and the name ".", so *at calls act on the root.
func (r *Root) OpenDirOrParent(rel string) (*Dir, string, error) {
	if rel == "." {
		d, err := r.OpenDir(".")
		return d, ".", err
	}
	return r.OpenParent(rel)
}

// Futimens sets an open file's modification time (ns since the epoch),
// leaving its access time.
func Futimens(f Handle, mtime int64) error {
	ts := [2]unix.Timespec{{Sec: 0, Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime)}
	// utimensat(fd, NULL, ...) is futimens: no path lookup.
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return &os.PathError{Op: "futimens", Path: f.Name(), Err: e}
	}
	return nil
}
