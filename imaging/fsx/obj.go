package fsx

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Obj is one object beneath a Dir held by an O_PATH descriptor: its
// metadata calls reach exactly the inode that was opened (and checked with
// Stat), whatever happens to the name meanwhile. For a symlink (which
// cannot be opened through its descriptor) the mode cannot be set, and
// xattrs and the mtime go through the name with the l* calls.
type Obj struct {
	fd   int
	d    *Dir
	name string
	st   unix.Stat_t
}

// OpenObj opens a child without following it (O_PATH|O_NOFOLLOW) and
// stats it.
func (d *Dir) OpenObj(name string) (*Obj, error) {
	fd, err := unix.Openat(d.FD, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, d.perr("open", name, err)
	}
	o := &Obj{fd: fd, d: d, name: name}
	if err := unix.Fstat(fd, &o.st); err != nil {
		unix.Close(fd)
		return nil, d.perr("fstat", name, err)
	}
	return o, nil
}

// Close releases the descriptor.
func (o *Obj) Close() error { return unix.Close(o.fd) }

// Stat is the object's fstat when it was opened.
func (o *Obj) Stat() *unix.Stat_t { return &o.st }

func (o *Obj) symlink() bool { return o.st.Mode&unix.S_IFMT == unix.S_IFLNK }

// proc names the inode itself through the descriptor's magic link.
func (o *Obj) proc() string { return "/proc/self/fd/" + strconv.Itoa(o.fd) }

func (o *Obj) perr(op string, err error) error { return o.d.perr(op, o.name, err) }

// Chown sets the owner (of a symlink itself, for a symlink).
func (o *Obj) Chown(uid, gid uint32) error {
	if err := unix.Fchownat(o.fd, "", int(uid), int(gid), unix.AT_EMPTY_PATH); err != nil {
		return o.perr("fchownat", err)
	}
	return nil
}

// Chmod sets the mode; symlinks have none (ELOOP).
func (o *Obj) Chmod(mode uint32) error {
	if o.symlink() {
		return o.perr("chmod", unix.ELOOP)
	}
	if err := unix.Chmod(o.proc(), mode); err != nil {
		return o.perr("chmod", err)
	}
	return nil
}

// SetXattrs makes the xattrs equal to want, given have (see Dir.SetXattrs).
func (o *Obj) SetXattrs(have, want []Xattr) error {
	if o.symlink() {
		return o.d.SetXattrs(o.name, have, want)
	}
	p := o.proc()
	wantSet := make(map[string][]byte, len(want))
	for _, x := range want {
		wantSet[x.Name] = x.Value
	}
	haveSet := make(map[string][]byte, len(have))
	for _, x := range have {
		haveSet[x.Name] = x.Value
		if _, ok := wantSet[x.Name]; !ok {
			if err := unix.Removexattr(p, x.Name); err != nil && err != unix.ENODATA {
				return o.perr("removexattr "+x.Name, err)
			}
		}
	}
	for _, x := range want {
		if old, ok := haveSet[x.Name]; ok && string(old) == string(x.Value) {
			continue
		}
		if err := unix.Setxattr(p, x.Name, x.Value, 0); err != nil {
			return o.perr("setxattr "+x.Name, err)
		}
	}
	return nil
}

// SetMtime sets the modification time (ns since the epoch).
func (o *Obj) SetMtime(mtime int64) error {
	if o.symlink() {
		return o.d.SetMtime(o.name, mtime)
	}
	ts := []unix.Timespec{{Sec: 0, Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, o.proc(), ts, 0); err != nil {
		return &os.PathError{Op: "utimensat", Path: o.d.root.full(o.d.rel(o.name)), Err: err}
	}
	return nil
}
