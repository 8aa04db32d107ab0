package treetest

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TrickyOptions select parts of MakeTricky's tree. The zero value builds
// everything the current user is able to build.
type TrickyOptions struct {
	// Unprivileged leaves out what only root can make: device nodes, owners
	// other than the caller, trusted.* and security.* xattrs. It is implied
	// when the process is not root.
	Unprivileged bool
	// NoSparse leaves out the sparse files (the largest is 1 GiB apparent,
	// a few KiB allocated). MakeTricky fails the test if the filesystem does
	// not keep their holes, so set it on filesystems that cannot.
	NoSparse bool
	// NoLongPath leaves out the file whose path is about 4000 bytes long.
	NoLongPath bool
}

// Owner ids used for files of the tricky tree that are not root's. No user
// or group of a normal system has them, so a copy that maps owners by name
// (no --numeric-ids) gets them wrong.
const (
	TrickyUID = 4242
	TrickyGID = 4343
)

// LongPathLen is the length in bytes of the longest path of the tricky tree,
// relative to its root.
const LongPathLen = 3999

// The tricky tree, relative to its root. MakeTricky's tests check each.
const (
	PathSparse    = "sparse/big"         // 1 GiB, data at 0, 300 MiB and 700 MiB+123, hole at the end
	PathCap       = "xattr/cap-net-raw"  // security.capability = cap_net_raw+ep (root)
	PathUserXattr = "xattr/user"         // user.foo (binary), user.empty, user.big
	PathTrusted   = "xattr/trusted"      // trusted.goldsync (root)
	PathACLFile   = "xattr/acl-file"     // access ACL
	PathACLDir    = "xattr/acl-default"  // default ACL; children inherit it
	PathSetuid    = "modes/setuid"       // 04755
	PathSetgidDir = "modes/setgid"       // 02755, group TrickyGID (root)
	PathStickyDir = "modes/sticky"       // 01777
	PathFIFO      = "special/fifo"       // named pipe
	PathCharDev   = "special/null"       // char 1:3 (root)
	PathBlockDev  = "special/loop0"      // block 7:0 (root)
	PathSocket    = "special/socket"     // unix socket node
	PathDangling  = "symlinks/dangling"  // -> ../does/not/exist
	PathAbsLink   = "symlinks/absolute"  // -> /etc/passwd
	PathDirLink   = "symlinks/to-dir"    // -> ../dirs/a
	PathOwned     = "owners/file"        // TrickyUID:TrickyGID (root)
	PathEmptyDir  = "dirs/empty"         // empty directory
	PathRandom    = "files/random-1m"    // 1 MiB of seeded random bytes
	PathLinkOf3   = "links/one/group3"   // hard link group of three ...
	PathLinkOf3b  = "links/two/group3"   // ... across three ...
	PathLinkOf3c  = "files/group3-third" // ... directories
	PathLinkOf2   = "links/pair-a"       // hard link group of two
	PathLinkOf2b  = "links/pair-b"       //
	PathLatin1    = "names/caf\xe9"      // non-UTF-8 name
	PathBadUTF8   = "names/\xff\xfe"     // non-UTF-8 directory name
	PathNewline   = "names/with space\nand newline"
	PathPreEpoch  = "times/pre-epoch" // mtime 1969-12-31T23:59:58.5Z
	PathFarFuture = "times/y2200"     // mtime in 2200
)

var (
	// CapNetRaw is the security.capability value of PathCap:
	// VFS_CAP_REVISION_2 with the effective flag, cap_net_raw (13)
	// permitted, nothing inheritable ("cap_net_raw=ep").
	CapNetRaw = capV2(1<<13, 0)
	// ACLAccess is the system.posix_acl_access value of PathACLFile:
	// user::rw- user:4242:r-- group::r-- group:4343:rw- mask::rw- other::---.
	ACLAccess = aclXattr(
		aclEntry{aclUserObj, 6, aclUndefinedID},
		aclEntry{aclUser, 4, TrickyUID},
		aclEntry{aclGroupObj, 4, aclUndefinedID},
		aclEntry{aclGroup, 6, TrickyGID},
		aclEntry{aclMask, 6, aclUndefinedID},
		aclEntry{aclOther, 0, aclUndefinedID})
	// ACLDefault is the system.posix_acl_default value of PathACLDir:
	// user::rwx user:4242:r-x group::r-x group:4343:rwx mask::rwx other::r-x.
	ACLDefault = aclXattr(
		aclEntry{aclUserObj, 7, aclUndefinedID},
		aclEntry{aclUser, 5, TrickyUID},
		aclEntry{aclGroupObj, 5, aclUndefinedID},
		aclEntry{aclGroup, 7, TrickyGID},
		aclEntry{aclMask, 7, aclUndefinedID},
		aclEntry{aclOther, 5, aclUndefinedID})
	// UserFoo is the binary value of user.foo on PathUserXattr.
	UserFoo = []byte{0, 1, 0xff, 0xfe, 'x', 0}
)

// capV2 encodes a struct vfs_cap_data, revision 2, effective flag set.
func capV2(permitted, inheritable uint32) []byte {
	const vfsCapRevision2, vfsCapFlagsEffective = 0x02000000, 0x000001
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], vfsCapRevision2|vfsCapFlagsEffective)
	binary.LittleEndian.PutUint32(b[4:], permitted)
	binary.LittleEndian.PutUint32(b[8:], inheritable)
	return b // the upper 32 capabilities stay zero
}

// POSIX ACL xattr format (linux/posix_acl_xattr.h): a version 2 header,
// then entries {tag u16, perm u16, id u32}, little endian, sorted by tag
// then id.
const (
	aclVersion     = 2
	aclUserObj     = 0x01
	aclUser        = 0x02
	aclGroupObj    = 0x04
	aclGroup       = 0x08
	aclMask        = 0x10
	aclOther       = 0x20
	aclUndefinedID = 0xffffffff
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

func aclXattr(entries ...aclEntry) []byte {
	b := binary.LittleEndian.AppendUint32(nil, aclVersion)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// MakeTricky builds beneath dir, which must exist (and should be empty), a
// tree holding everything a faithful copy must keep and a naive one loses;
// the Path* constants name its notable entries:
//
//   - nested and empty directories; regular files of 0, 1, 4095, 4096
//     bytes and 1 MiB of seeded random bytes;
//   - hard-link groups: three names in three directories, two in one;
//   - sparse files: 1 GiB apparent with three small data extents and a
//     trailing hole, one all hole, one with data only at its end;
//   - xattrs: security.capability (cap_net_raw+ep), user.* with a binary,
//     an empty and a 1000-byte value, trusted.* on a file, a directory and
//     a symlink, a POSIX access ACL on a file, a default ACL on a directory
//     with a file and a directory created in it (which inherit it);
//   - modes 04755 (file), 02755 and 01777 (directories), files created in
//     the setgid directory;
//   - a fifo, a unix socket, char device 1:3 and block device 7:0;
//   - a dangling relative symlink, an absolute one, one to a directory, one
//     with a non-UTF-8 target;
//   - names with non-UTF-8 bytes, spaces and a newline; a file whose path
//     is LongPathLen bytes long (19 directories of 200-byte names);
//   - owners TrickyUID:TrickyGID on a file, a directory and a symlink;
//   - nanosecond mtimes on every entry, symlinks and directories included
//     (directories set last, deepest first; "." too), one before 1970 and
//     one in 2200.
//
// Root-only parts are left out when opts.Unprivileged is set or the process
// is not root. Contents, modes and times are the same on every run; only
// what the filesystem decides (inode numbers, allocation) varies. It
// returns Scan(t, dir).
func MakeTricky(t testing.TB, dir string, opts TrickyOptions) Manifest {
	t.Helper()
	if os.Geteuid() != 0 {
		opts.Unprivileged = true
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("treetest: open %s: %v", dir, err)
	}
	defer unix.Close(fd)
	b := &builder{t: t, root: fd, dir: dir}
	b.build(opts)
	b.setTimes()
	return Scan(t, dir)
}

type builder struct {
	t     testing.TB
	root  int
	dir   string
	paths []string // every non-directory entry made, for setTimes
	dirs  []string // every directory made, for setTimes
	fixed map[string]int64
}

func (b *builder) build(o TrickyOptions) {
	root := !o.Unprivileged

	// Directories and plain files.
	for _, d := range []string{"dirs", "dirs/a", "dirs/a/b", "dirs/a/b/c", PathEmptyDir, "dirs/empty2", "dirs/empty2/sub"} {
		b.mkdir(d, 0o755)
	}
	b.file("dirs/a/b/c/deep.txt", []byte("deep\n"), 0o644)
	b.mkdir("files", 0o755)
	b.file("files/empty", nil, 0o644)
	b.file("files/one", []byte{'1'}, 0o644)
	b.file("files/f4095", random("f4095", 4095), 0o644)
	b.file("files/f4096", random("f4096", 4096), 0o600)
	b.file(PathRandom, random("1m", 1<<20), 0o644)

	// Hard links.
	b.mkdir("links", 0o755)
	b.mkdir("links/one", 0o755)
	b.mkdir("links/two", 0o755)
	b.file(PathLinkOf3, []byte("three names, one inode\n"), 0o640)
	if root {
		b.chown(PathLinkOf3, TrickyUID, TrickyGID)
		b.chmod(PathLinkOf3, 0o640)
	}
	b.link(PathLinkOf3, PathLinkOf3b)
	b.link(PathLinkOf3, PathLinkOf3c)
	b.file(PathLinkOf2, []byte("two names, one inode\n"), 0o644)
	b.link(PathLinkOf2, PathLinkOf2b)

	// Sparse files.
	if !o.NoSparse {
		b.mkdir("sparse", 0o755)
		b.sparse(PathSparse, 1<<30, map[int64][]byte{
			0:             random("sparse 0", 4096),
			300 << 20:     random("sparse 300M", 8192),
			700<<20 + 123: random("sparse 700M", 100),
		})
		b.sparse("sparse/all-hole", 10<<20, nil)
		b.sparse("sparse/tail-data", 64<<20, map[int64][]byte{64<<20 - 10: []byte("tail data\n")})
	}

	// Extended attributes and ACLs.
	b.mkdir("xattr", 0o755)
	b.setxattr("xattr", "user.dir", []byte("on a directory"))
	b.file(PathUserXattr, []byte("has user xattrs\n"), 0o644)
	b.setxattr(PathUserXattr, "user.foo", UserFoo)
	b.setxattr(PathUserXattr, "user.empty", nil)
	b.setxattr(PathUserXattr, "user.big", random("user.big", 1000))
	b.file(PathACLFile, []byte("has an access ACL\n"), 0o644)
	b.setxattr(PathACLFile, "system.posix_acl_access", ACLAccess) // sets mode 0660
	b.mkdir(PathACLDir, 0o755)
	b.setxattr(PathACLDir, "system.posix_acl_default", ACLDefault)
	// Children of a default-ACL directory inherit it, whatever the umask;
	// their modes are left as the kernel derives them.
	b.fileInherit(PathACLDir+"/inherited", []byte("inherits the default ACL\n"))
	b.mkdirInherit(PathACLDir + "/subdir")
	if root {
		b.file(PathCap, []byte("#!/bin/sh\necho ping\n"), 0o755)
		b.setxattr(PathCap, "security.capability", CapNetRaw)
		b.file(PathTrusted, []byte("has a trusted xattr\n"), 0o644)
		b.setxattr(PathTrusted, "trusted.goldsync", []byte("trusted value"))
		b.setxattr("xattr", "trusted.dir", []byte{1, 2, 3})
	}

	// Special modes.
	b.mkdir("modes", 0o755)
	b.file(PathSetuid, []byte("#!/bin/sh\n"), 0o755)
	b.chmod(PathSetuid, 0o4755)
	b.file("modes/setgid-file", []byte("setgid, not group-executable\n"), 0o644)
	b.chmod("modes/setgid-file", 0o2644)
	b.mkdir(PathSetgidDir, 0o755)
	if root {
		b.chown(PathSetgidDir, 0, TrickyGID)
	}
	b.chmod(PathSetgidDir, 0o2755)
	b.file(PathSetgidDir+"/file", []byte("group inherited from the directory\n"), 0o644)
	b.mkdir(PathSetgidDir+"/sub", 0o755)
	b.chmod(PathSetgidDir+"/sub", 0o2755) // inherited, made explicit against the umask
	b.mkdir(PathStickyDir, 0o755)
	b.chmod(PathStickyDir, 0o1777)
	b.file(PathStickyDir+"/file", []byte("in a sticky dir\n"), 0o666)

	// Special files.
	b.mkdir("special", 0o755)
	b.mknod(PathFIFO, unix.S_IFIFO, 0o644, 0)
	b.socket(PathSocket, 0o755)
	if root {
		b.mknod(PathCharDev, unix.S_IFCHR, 0o666, unix.Mkdev(1, 3))
		b.mknod(PathBlockDev, unix.S_IFBLK, 0o660, unix.Mkdev(7, 0))
	}

	// Symlinks.
	b.mkdir("symlinks", 0o755)
	b.symlink("../does/not/exist", PathDangling)
	b.symlink("/etc/passwd", PathAbsLink)
	b.symlink("../dirs/a", PathDirLink)
	b.symlink("caf\xe9", "symlinks/latin1-target")
	if root {
		b.setxattr(PathAbsLink, "trusted.link", []byte("on a symlink"))
	}

	// Names.
	b.mkdir("names", 0o755)
	b.file(PathLatin1, []byte("latin-1 name\n"), 0o644)
	b.mkdir(PathBadUTF8, 0o755)
	b.file(PathBadUTF8+"/inside", []byte("in a non-UTF-8 dir\n"), 0o644)
	b.file(PathNewline, []byte("spaces and a newline\n"), 0o644)
	b.file("names/ leading and trailing ", nil, 0o644)
	b.file(`names/back\slash:colon*star?`, nil, 0o644)
	if !o.NoLongPath {
		p := "long"
		b.mkdir(p, 0o755)
		for i := range 19 {
			name := strings.Repeat(string(rune('a'+i)), 200)
			p += "/" + name
			b.mkdir(p, 0o755)
		}
		p += "/" + strings.Repeat("f", LongPathLen-len(p)-1)
		b.file(p, []byte("a long way down\n"), 0o644)
	}

	// Owners nobody has.
	if root {
		b.mkdir("owners", 0o755)
		b.file(PathOwned, []byte("owned by 4242:4343\n"), 0o640)
		b.chown(PathOwned, TrickyUID, TrickyGID)
		b.chmod(PathOwned, 0o640)
		b.file("owners/group-only", []byte("root:4343\n"), 0o664)
		b.chown("owners/group-only", 0, TrickyGID)
		b.chmod("owners/group-only", 0o664)
		b.mkdir("owners/dir", 0o750)
		b.chown("owners/dir", TrickyUID, TrickyGID)
		b.symlink("file", "owners/symlink")
		b.chown("owners/symlink", TrickyUID, TrickyGID)
	}

	// Times outside the usual range.
	b.mkdir("times", 0o755)
	b.file(PathPreEpoch, []byte("before 1970\n"), 0o644)
	b.file(PathFarFuture, []byte("after 2038\n"), 0o644)
	b.fixed = map[string]int64{
		PathPreEpoch:  -1_500_000_000,            // 1969-12-31T23:59:58.5Z
		PathFarFuture: 7_258_118_400_000_000_001, // 2200-01-01T00:00:00.000000001Z
	}
}

// setTimes gives every entry its nanosecond mtime: everything that is not
// a directory first, then directories deepest first, "." last, so that no
// later change inside a directory moves its mtime again.
func (b *builder) setTimes() {
	for _, p := range b.paths {
		b.utimes(p)
	}
	dirs := slices.Clone(b.dirs)
	slices.SortStableFunc(dirs, func(x, y string) int { return strings.Count(y, "/") - strings.Count(x, "/") })
	for _, p := range dirs {
		b.utimes(p)
	}
	b.utimes(".")
}

// mtimeOf is a path's deterministic mtime: a nanosecond-precise instant
// between 2020 and 2029 derived from the path.
func (b *builder) mtimeOf(p string) int64 {
	if ns, ok := b.fixed[p]; ok {
		return ns
	}
	h := fnv.New64a()
	h.Write([]byte(p))
	return 1_580_000_000_000_000_000 + int64(h.Sum64()%300_000_000_000_000_000)
}

// random returns n bytes of a random stream seeded by label, the same on
// every run.
func random(label string, n int) []byte {
	var seed [32]byte
	copy(seed[:], "goldsync treetest "+label)
	p := make([]byte, n)
	rand.NewChaCha8(seed).Read(p)
	return p
}

func (b *builder) fail(op, p string, err error) {
	b.t.Helper()
	b.t.Fatalf("treetest: make tricky tree in %s: %s %q: %v", b.dir, op, p, err)
}

// at runs fn with a descriptor of p's parent directory (opened component by
// component, never following a symlink) and p's last component. For "." it
// passes the root and ".".
func (b *builder) at(op, p string, fn func(dirfd int, name string) error) {
	b.t.Helper()
	dirfd, name := b.root, p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		name = p[i+1:]
		fd := b.root
		for comp := range strings.SplitSeq(p[:i], "/") {
			next, err := unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if fd != b.root {
				unix.Close(fd)
			}
			if err != nil {
				b.fail(op, p, err)
			}
			fd = next
		}
		dirfd = fd
		defer unix.Close(dirfd)
	}
	if err := fn(dirfd, name); err != nil {
		b.fail(op, p, err)
	}
}

func (b *builder) mkdir(p string, mode uint32) {
	b.t.Helper()
	b.mkdirInherit(p)
	b.chmod(p, mode) // exact, whatever the umask
}

func (b *builder) mkdirInherit(p string) {
	b.t.Helper()
	b.at("mkdir", p, func(fd int, name string) error { return unix.Mkdirat(fd, name, 0o755) })
	b.dirs = append(b.dirs, p)
}

func (b *builder) file(p string, data []byte, mode uint32) {
	b.t.Helper()
	b.fileInherit(p, data)
	b.chmod(p, mode)
}

func (b *builder) fileInherit(p string, data []byte) {
	b.t.Helper()
	b.at("create", p, func(dirfd int, name string) error {
		fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		for len(data) > 0 {
			n, err := unix.Write(fd, data)
			if err != nil {
				unix.Close(fd)
				return err
			}
			data = data[n:]
		}
		return unix.Close(fd)
	})
	b.paths = append(b.paths, p)
}

// sparse makes a file of the given size holding only the given extents,
// and fails if the filesystem allocated much more than they need.
func (b *builder) sparse(p string, size int64, extents map[int64][]byte) {
	b.t.Helper()
	var st unix.Stat_t
	b.at("create sparse", p, func(dirfd int, name string) error {
		fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Ftruncate(fd, size); err != nil {
			return err
		}
		for off, data := range extents {
			if n, err := unix.Pwrite(fd, data, off); err != nil || n != len(data) {
				return errors.Join(err, errors.New("short write"))
			}
		}
		return unix.Fstat(fd, &st)
	})
	b.chmod(p, 0o644)
	b.paths = append(b.paths, p)
	if st.Blocks*512 > 1<<20 {
		b.t.Fatalf("treetest: sparse file %s/%s of %d bytes allocates %d bytes: the filesystem does not keep holes (use TrickyOptions.NoSparse)",
			b.dir, p, size, st.Blocks*512)
	}
}

func (b *builder) link(old, p string) {
	b.t.Helper()
	b.at("link", old, func(oldfd int, oldname string) error {
		var err error
		b.at("link", p, func(fd int, name string) error {
			err = unix.Linkat(oldfd, oldname, fd, name, 0)
			return nil
		})
		return err
	})
}

func (b *builder) symlink(target, p string) {
	b.t.Helper()
	b.at("symlink", p, func(fd int, name string) error { return unix.Symlinkat(target, fd, name) })
	b.paths = append(b.paths, p)
}

func (b *builder) mknod(p string, typ, mode uint32, dev uint64) {
	b.t.Helper()
	b.at("mknod", p, func(fd int, name string) error { return unix.Mknodat(fd, name, typ|mode, int(dev)) })
	b.chmod(p, mode)
	b.paths = append(b.paths, p)
}

// socket binds a unix socket to p and closes it: the node stays. It binds
// through /proc/self/fd so the 108-byte limit of sun_path does not apply to
// the tree's location.
func (b *builder) socket(p string, mode uint32) {
	b.t.Helper()
	b.at("bind socket", p, func(dirfd int, name string) error {
		s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(s)
		return unix.Bind(s, &unix.SockaddrUnix{Name: procPath(dirfd, name)})
	})
	b.chmod(p, mode)
	b.paths = append(b.paths, p)
}

// chmod sets the exact mode; never on symlinks. chown clears set-id bits,
// so chmod comes after it.
func (b *builder) chmod(p string, mode uint32) {
	b.t.Helper()
	b.at("chmod", p, func(fd int, name string) error { return unix.Fchmodat(fd, name, mode, 0) })
}

func (b *builder) chown(p string, uid, gid int) {
	b.t.Helper()
	b.at("chown", p, func(fd int, name string) error {
		return unix.Fchownat(fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	})
}

func (b *builder) setxattr(p, attr string, value []byte) {
	b.t.Helper()
	b.at("setxattr "+attr, p, func(fd int, name string) error {
		return unix.Lsetxattr(procPath(fd, name), attr, value, 0)
	})
}

func (b *builder) utimes(p string) {
	b.t.Helper()
	ts := unix.NsecToTimespec(b.mtimeOf(p))
	b.at("set times", p, func(fd int, name string) error {
		return unix.UtimesNanoAt(fd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	})
}
