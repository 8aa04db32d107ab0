package fsx

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Handle is what the readers of this package need of an open file; *os.File
// and *File both are one.
type Handle interface {
	io.ReaderAt
	Fd() uintptr
	Name() string
}

// File is an open regular file held as a bare descriptor. os.NewFile costs
// an fcntl per file to learn the descriptor's flags and, for one opened
// O_NONBLOCK (as a read that must never block on a fifo is), an epoll_ctl
// that fails for a regular file, and it sets a finalizer: two of the ~25
// system calls a file of a full pull (issue 14). A File is used by one
// goroutine at a time; Close it exactly once.
type File struct {
	fd   int
	name string
}

// NewFile takes ownership of fd.
func NewFile(fd int, name string) *File { return &File{fd: fd, name: name} }

// Fd returns the descriptor.
func (f *File) Fd() uintptr { return uintptr(f.fd) }

// Name returns the name the file was opened by, for messages.
func (f *File) Name() string { return f.name }

func (f *File) perr(op string, err error) error { return &os.PathError{Op: op, Path: f.name, Err: err} }

// ReadAt reads len(p) bytes at off, as os.File.ReadAt does: fewer only with
// an error, io.EOF at the end of the file.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		m, err := unix.Pread(f.fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, f.perr("read", err)
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
		p = p[m:]
		off += int64(m)
	}
	return n, nil
}

// WriteAt writes all of p at off.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		m, err := unix.Pwrite(f.fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, f.perr("write", err)
		}
		n += m
		p = p[m:]
		off += int64(m)
	}
	return n, nil
}

// Truncate sets the file's size.
func (f *File) Truncate(size int64) error {
	return f.call("truncate", func() error { return unix.Ftruncate(f.fd, size) })
}

// Sync flushes the file to stable storage.
func (f *File) Sync() error {
	return f.call("sync", func() error { return unix.Fsync(f.fd) })
}

// call runs a system call on the file again while it is interrupted
// (EINTR) and names the file and op in its error.
func (f *File) call(op string, sys func() error) error {
	for {
		err := sys()
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return f.perr(op, err)
		}
		return nil
	}
}

// Close closes the descriptor; a second Close does nothing (never closes a
// number reused since).
func (f *File) Close() error {
	if f.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return f.perr("close", err)
	}
	return nil
}

// CreateUnnamed creates an unnamed regular file in the directory
// (O_TMPFILE): no name in the directory until LinkFile gives it one, and
// nothing left behind when the process dies first. Filesystems without it
// fail with EOPNOTSUPP (or EISDIR, EINVAL on old kernels).
func (d *Dir) CreateUnnamed(mode uint32) (*File, error) {
	fd, err := unix.Openat(d.FD, ".", unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, mode)
	if err != nil {
		return nil, d.perr("create unnamed file in", ".", err)
	}
	return NewFile(fd, d.root.full(d.rel("(unnamed)"))), nil
}

// LinkFile gives the unnamed file f (from CreateUnnamed) the name name in d;
// it fails with EEXIST when name exists. It needs CAP_DAC_READ_SEARCH
// (linkat with AT_EMPTY_PATH).
func (d *Dir) LinkFile(f *File, name string) error {
	if err := unix.Linkat(f.fd, "", d.FD, name, unix.AT_EMPTY_PATH); err != nil {
		return d.perr("link", name, err)
	}
	return nil
}
