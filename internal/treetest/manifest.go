package treetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Type is the kind of a filesystem object. The names are the ones goldsync's
// tree package prints, so messages read the same on both sides.
type Type string

// The object types a Manifest records.
const (
	TypeFile     Type = "file"
	TypeDir      Type = "dir"
	TypeSymlink  Type = "symlink"
	TypeCharDev  Type = "chardev"
	TypeBlockDev Type = "blockdev"
	TypeFIFO     Type = "fifo"
	TypeSocket   Type = "socket"
)

// Xattr is one extended attribute, as llistxattr/lgetxattr return it. POSIX
// ACLs appear as system.posix_acl_access and system.posix_acl_default.
type Xattr struct {
	Name  string
	Value []byte
}

// Node is what a Manifest records about one path: every attribute an rsync
// -aHAXS --numeric-ids copy is expected to keep, plus the allocation needed
// to check that holes were kept.
type Node struct {
	Type   Type
	Mode   uint32 // st_mode & 07777
	UID    uint32
	GID    uint32
	Size   int64   // regular files only; zero for every other type
	Mtime  int64   // ns since the epoch, for every type (symlinks and dirs too)
	Target string  // symlinks: the target, verbatim bytes
	Rdev   uint64  // devices: st_rdev (unix.Mkdev form); zero otherwise
	Xattrs []Xattr // every attribute llistxattr lists, sorted by name

	// Hash is, for regular files, the hex SHA-256 of the content in a
	// canonical sparse form (see contentHash): two files have the same Hash
	// exactly when their sizes and bytes are equal, however their holes are
	// laid out. Empty for other types.
	Hash string
	// Blocks is st_blocks (512-byte units) for regular files. Diff compares
	// it only with DiffOptions.CheckSparse, and only one way: a copy must
	// not allocate much more than the original.
	Blocks int64
	// Links is, for a regular file that shares its inode with other names
	// inside the scanned tree, the sorted paths of all those names
	// (including this one). Nil when the file is the only name of its inode
	// in the tree, whatever its link count (names outside the tree do not
	// count).
	Links []string
}

// Manifest records a whole tree: one Node per path relative to the scanned
// directory, "." for the directory itself, "/" separated, bytes verbatim
// (nothing assumes UTF-8).
type Manifest map[string]Node

// Paths returns the manifest's paths in byte order.
func (m Manifest) Paths() []string {
	ps := make([]string, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// TryScan is Scan returning the error: for a tree that may be changing
// under the scan (a receiver still writing), where the caller retries.
func TryScan(dir string) (Manifest, error) { return scan(dir) }

// Scan records the tree at dir without following any symlink (dir itself
// may be reached through one) and without opening anything but directories
// and regular files. It fails the test on any error.
func Scan(t testing.TB, dir string) Manifest {
	t.Helper()
	m, err := scan(dir)
	if err != nil {
		t.Fatalf("treetest: scan %s: %v", dir, err)
	}
	return m
}

type devIno struct{ dev, ino uint64 }

type scanner struct {
	m      Manifest
	inodes map[devIno][]string
	buf    []byte
}

func scan(dir string) (Manifest, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	s := &scanner{m: Manifest{}, inodes: map[devIno][]string{}, buf: make([]byte, 1<<20)}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat: %w", err)
	}
	root := nodeFromStat(&st)
	root.Xattrs, err = readXattrs(
		func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("xattrs of .: %w", err)
	}
	s.m["."] = root
	if err := s.walk(fd, "."); err != nil { // walk closes fd
		return nil, err
	}
	for _, names := range s.inodes {
		if len(names) < 2 {
			continue
		}
		slices.Sort(names)
		for _, p := range names {
			n := s.m[p]
			n.Links = slices.Clone(names)
			s.m[p] = n
		}
	}
	return s.m, nil
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// procPath names the entry name of the directory open as fd through
// /proc/self/fd, so that path-based calls (the l*xattr family, bind) work
// whatever the length of the directory's own path. The final component is
// not a magic link, so the l* calls do not follow it.
func procPath(fd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + name
}

// walk records the children of the directory open as fd (path rel) and
// recurses into subdirectories. It closes fd.
func (s *scanner) walk(fd int, rel string) error {
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read dir %q: %w", rel, err)
	}
	slices.Sort(names)
	for _, name := range names {
		p := join(rel, name)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("lstat %q: %w", p, err)
		}
		n := nodeFromStat(&st)
		pp := procPath(fd, name)
		n.Xattrs, err = readXattrs(
			func(b []byte) (int, error) { return unix.Llistxattr(pp, b) },
			func(x string, b []byte) (int, error) { return unix.Lgetxattr(pp, x, b) })
		if err != nil {
			return fmt.Errorf("xattrs of %q: %w", p, err)
		}
		switch n.Type {
		case TypeSymlink:
			if n.Target, err = readlinkat(fd, name); err != nil {
				return fmt.Errorf("readlink %q: %w", p, err)
			}
		case TypeFile:
			if n.Hash, err = s.hashFile(fd, name, &st); err != nil {
				return fmt.Errorf("hash %q: %w", p, err)
			}
			if st.Nlink > 1 {
				k := devIno{st.Dev, st.Ino}
				s.inodes[k] = append(s.inodes[k], p)
			}
		}
		s.m[p] = n
		if n.Type == TypeDir {
			sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open dir %q: %w", p, err)
			}
			if err := s.walk(sub, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func nodeFromStat(st *unix.Stat_t) Node {
	n := Node{
		Mode:  st.Mode & 0o7777,
		UID:   st.Uid,
		GID:   st.Gid,
		Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type, n.Size, n.Blocks = TypeFile, st.Size, st.Blocks
	case unix.S_IFDIR:
		n.Type = TypeDir
	case unix.S_IFLNK:
		n.Type = TypeSymlink
	case unix.S_IFCHR:
		n.Type, n.Rdev = TypeCharDev, st.Rdev
	case unix.S_IFBLK:
		n.Type, n.Rdev = TypeBlockDev, st.Rdev
	case unix.S_IFIFO:
		n.Type = TypeFIFO
	case unix.S_IFSOCK:
		n.Type = TypeSocket
	default:
		n.Type = Type(fmt.Sprintf("unknown(%#o)", st.Mode&unix.S_IFMT))
	}
	return n
}

func readlinkat(fd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(fd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// readXattrs lists and reads every extended attribute through the given
// list and get calls (the l* or f* family), sorted by name.
func readXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]Xattr, error) {
	names, err := growRead(list)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var xs []Xattr
	for name := range bytes.SplitSeq(names, []byte{0}) {
		if len(name) == 0 {
			continue
		}
		v, err := growRead(func(b []byte) (int, error) { return get(string(name), b) })
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
		xs = append(xs, Xattr{Name: string(name), Value: v})
	}
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return xs, nil
}

// growRead calls read with a buffer large enough for the answer: it asks for
// the size first and retries while the value grows under it.
func growRead(read func([]byte) (int, error)) ([]byte, error) {
	for range 10 {
		n, err := read(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return []byte{}, nil
		}
		b := make([]byte, n)
		n, err = read(b)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
	return nil, errors.New("value keeps growing")
}

// hashFile opens the regular file name in the directory fd and returns its
// contentHash. O_NOFOLLOW and O_NONBLOCK, plus a check that the opened inode
// is the one stat saw, make sure nothing but that regular file is read.
func (s *scanner) hashFile(dirfd int, name string, want *unix.Stat_t) (string, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}
	if st.Dev != want.Dev || st.Ino != want.Ino || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", errors.New("file replaced while scanned")
	}
	return contentHash(fd, st.Size, s.buf)
}

const hashBlock = 4096

var zeroBlock [hashBlock]byte

// contentHash returns the hex SHA-256 of the file's content in a canonical
// sparse form: the size as 8 little-endian bytes, then, for every
// hashBlock-aligned block that is not all zeros, in order, its offset as 8
// little-endian bytes and its bytes (the last block may be short). The form
// depends only on the size and bytes of the file, never on where its holes
// are, and it lets a 1 GiB sparse file be hashed by reading only its data
// extents (SEEK_DATA/SEEK_HOLE). buf's length must be a multiple of
// hashBlock.
func contentHash(fd int, size int64, buf []byte) (string, error) {
	h := sha256.New()
	var num [8]byte
	binary.LittleEndian.PutUint64(num[:], uint64(size))
	h.Write(num[:])
	var next int64 // first offset not hashed yet; always block aligned
	for next < size {
		data, err := unix.Seek(fd, next, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return "", fmt.Errorf("seek data: %w", err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return "", fmt.Errorf("seek hole: %w", err)
		}
		start := max(data&^(hashBlock-1), next)
		end := min((hole+hashBlock-1)&^(hashBlock-1), size)
		for pos := start; pos < end; {
			b := buf[:min(int64(len(buf)), end-pos)]
			if err := preadFull(fd, b, pos); err != nil {
				return "", err
			}
			for i := 0; i < len(b); i += hashBlock {
				blk := b[i:min(i+hashBlock, len(b))]
				if bytes.Equal(blk, zeroBlock[:len(blk)]) {
					continue
				}
				binary.LittleEndian.PutUint64(num[:], uint64(pos+int64(i)))
				h.Write(num[:])
				h.Write(blk)
			}
			pos += int64(len(b))
		}
		next = (hole + hashBlock - 1) &^ (hashBlock - 1)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func preadFull(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pread(fd, b, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if n == 0 {
			return fmt.Errorf("read at %d: file shrank while hashed", off)
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}
