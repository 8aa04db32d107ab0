package fsx

import (
	"errors"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Extent is a range of a file that holds data; what lies between extents is
// a hole and reads as zeros.
type Extent struct {
	Off, Len int64
}

// DataExtents lists the data ranges of f's first size bytes using
// SEEK_DATA/SEEK_HOLE. On filesystems without hole reporting the whole file
// is one extent.
func DataExtents(f Handle, size int64) ([]Extent, error) {
	if size == 0 {
		return nil, nil
	}
	fd := int(f.Fd())
	var out []Extent
	off := int64(0)
	for off < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return []Extent{{0, size}}, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "seek data", Path: f.Name(), Err: err}
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, &os.PathError{Op: "seek hole", Path: f.Name(), Err: err}
		}
		if hole > size {
			hole = size
		}
		if hole <= data {
			// Should not happen; treat the rest as data.
			hole = size
		}
		out = append(out, Extent{data, hole - data})
		off = hole
	}
	return out, nil
}

// zeros is a shared all-zero buffer for hashing holes. A global array,
// not a heap buffer: it never counts towards the heap the collector paces
// itself by, and its pages are resident only once read.
var zeros [ZeroChunk]byte

// Zeros returns a read-only slice of n ≤ 256 KiB zero bytes.
func Zeros(n int) []byte { return zeros[:n] }

// ZeroChunk is the largest slice Zeros returns.
const ZeroChunk = 256 << 10

// ReadFullAt reads exactly len(p) bytes at off, or returns an error
// (io.ErrUnexpectedEOF when the file is shorter).
func ReadFullAt(f io.ReaderAt, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := f.ReadAt(p, off)
		p = p[n:]
		off += int64(n)
		if len(p) == 0 {
			return nil
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Clone makes dst share src's blocks (FICLONE), where the filesystem can.
func Clone(dst, src Handle) error {
	return unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
}

// CopyRange copies n bytes at off from src to dst at the same offset with
// copy_file_range, falling back to read/write.
func CopyRange(dst *File, src Handle, off, n int64, buf []byte) error {
	so, do := off, off
	for n > 0 {
		c, err := unix.CopyFileRange(int(src.Fd()), &so, int(dst.Fd()), &do, int(min(n, 1<<30)), 0)
		if err != nil || c == 0 {
			break
		}
		n -= int64(c)
	}
	for n > 0 {
		m := int(min(n, int64(len(buf))))
		if err := ReadFullAt(src, buf[:m], so); err != nil {
			return err
		}
		if _, err := dst.WriteAt(buf[:m], do); err != nil {
			return err
		}
		so += int64(m)
		do += int64(m)
		n -= int64(m)
	}
	return nil
}

// IsZero reports whether p is all zero bytes.
func IsZero(p []byte) bool {
	for len(p) >= 8 {
		if p[0]|p[1]|p[2]|p[3]|p[4]|p[5]|p[6]|p[7] != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, ZeroChunk); return &b }}

// GetBuf returns a 256 KiB scratch buffer; give it back with PutBuf.
func GetBuf() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuf returns a buffer from GetBuf.
func PutBuf(b *[]byte) { bufPool.Put(b) }

// ExtentsOf is DataExtents for a file whose fstat is st: a file with as
// many blocks allocated as its size needs has no holes, which saves the
// SEEK_DATA/SEEK_HOLE calls (a reader elides zeros anyway, so a file with
// preallocated blocks past its end loses nothing).
func ExtentsOf(f Handle, st *unix.Stat_t) ([]Extent, error) {
	if st.Size > 0 && st.Blocks*512 >= st.Size {
		return []Extent{{0, st.Size}}, nil
	}
	return DataExtents(f, st.Size)
}
