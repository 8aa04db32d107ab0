package gen

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Version changes whenever the generator would write a different tree for
// the same spec; cached trees record it.
const Version = "gen-v1"

// Kind names a family of generated trees.
type Kind string

// The tree kinds.
const (
	// KindSynthetic is a root-filesystem-like tree of Spec.Files files.
	KindSynthetic Kind = "synthetic"
	// KindSparse is a few large, mostly empty files (VM images, databases)
	// and a handful of small ones.
	KindSparse Kind = "sparse"
)

// Spec says which tree to make.
type Spec struct {
	Kind Kind
	// Files is the number of regular files of a synthetic tree (hard
	// links, symlinks and directories come on top).
	Files int
	// Seed makes the tree: the same spec always gives the same names,
	// sizes, contents, owners, modes, xattrs and times.
	Seed uint64
	// Workers bounds parallel file writes; zero means 4.
	Workers int
}

// Name is a short name for the spec, usable in paths.
func (s Spec) Name() string {
	if s.Kind == KindSparse {
		return fmt.Sprintf("sparse-s%d", s.Seed)
	}
	return fmt.Sprintf("syn%d-s%d", s.Files, s.Seed)
}

// Stats describe a generated tree.
type Stats struct {
	Files     int   // regular files (first names)
	HardLinks int   // extra names of regular files
	Symlinks  int   // symbolic links
	Dirs      int   // directories, the root included
	Specials  int   // devices, fifos, sockets
	Bytes     int64 // logical size of the regular files
	DataBytes int64 // bytes actually written (holes excluded)
}

// Entries is the number of entries the tree holds.
func (s Stats) Entries() int { return s.Files + s.HardLinks + s.Symlinks + s.Dirs + s.Specials }

const (
	kib = 1 << 10
	mib = 1 << 20
)

// baseTime is the start of the year the synthetic mtimes fall in.
var baseTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

type node struct {
	path   string
	mode   uint32
	uid    uint32
	gid    uint32
	mtime  int64
	size   int64
	seed   uint64 // content seed
	xattrs []xattr
	// sparse files: data chunks at these offsets, each chunkLen long.
	chunks   []int64
	chunkLen int64
}

type xattr struct {
	name  string
	value []byte
}

type plan struct {
	dirs     []*node
	files    []*node
	links    [][2]string // new name, existing file
	symlinks [][2]string // name, target
	specials []special
}

type special struct {
	node
	typ  uint32 // unix.S_IFCHR ...
	rdev uint64
}

// Tree writes the tree spec describes into dir, which must not exist or be
// empty. It is deterministic: the same spec gives the same tree.
func Tree(ctx context.Context, dir string, spec Spec) (Stats, error) {
	var p *plan
	switch spec.Kind {
	case KindSynthetic, "":
		if spec.Files < 10 {
			return Stats{}, fmt.Errorf("synthetic tree of %d files: need at least 10", spec.Files)
		}
		p = planSynthetic(spec, 1)
	case KindSparse:
		p = planSparse(spec)
	default:
		return Stats{}, fmt.Errorf("unknown tree kind %q", spec.Kind)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Stats{}, err
	}
	if ents, err := os.ReadDir(dir); err != nil {
		return Stats{}, err
	} else if len(ents) > 0 {
		return Stats{}, fmt.Errorf("%s is not empty", dir)
	}
	return p.write(ctx, dir, spec.Workers)
}

func newRand(seed uint64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

var words = []string{"lib", "bin", "share", "conf", "data", "core", "util", "net", "sys", "x11",
	"perl", "python3", "locale", "doc", "man", "include", "kernel", "firmware", "modules", "cache",
	"log", "spool", "mail", "cron", "pam", "ssl", "certs", "zoneinfo", "terminfo", "fonts",
	"icons", "gtk", "qt", "java", "ruby", "go", "node", "systemd", "udev", "dbus"}

var exts = []string{"", ".so", ".conf", ".py", ".pyc", ".h", ".txt", ".gz", ".mo", ".xml", ".json", ".pl", ".rules", ".service"}

// fileSize draws a size from the distribution of a Linux root: mostly 1–16
// KiB, some small, some up to 1 MiB, a few up to 10 MiB (the big files of
// ~100 MiB are added separately).
func fileSize(r *rand.Rand) int64 {
	logUniform := func(lo, hi float64) int64 {
		return int64(lo * math.Pow(hi/lo, r.Float64()))
	}
	switch x := r.Float64(); {
	case x < 0.02:
		return 0
	case x < 0.14:
		return r.Int64N(kib)
	case x < 0.9895:
		return logUniform(kib, 16*kib)
	case x < 0.9995:
		return logUniform(16*kib, mib)
	default:
		return logUniform(mib, 10*mib)
	}
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func owner(r *rand.Rand) (uint32, uint32) {
	switch x := r.Float64(); {
	case x < 0.75:
		return 0, 0
	case x < 0.92:
		return 1000, 1000
	default:
		id := uint32(1 + r.IntN(999))
		return id, id
	}
}

func fileMode(r *rand.Rand) uint32 {
	switch x := r.Float64(); {
	case x < 0.78:
		return 0o644
	case x < 0.95:
		return 0o755
	case x < 0.999:
		return 0o600
	default:
		return 0o4755
	}
}

func mtime(r *rand.Rand) int64 {
	return baseTime + r.Int64N(365*24*int64(time.Hour))
}

// planSynthetic lays out a tree of spec.Files files: directories in a
// random recursive tree, files spread over them, big files, one large
// sparse file, hard links, symlinks and specials.
// xk scales the share of files with xattrs, capabilities and ACLs.
func planSynthetic(spec Spec, xk float64) *plan {
	r := newRand(spec.Seed, 1)
	n := spec.Files
	p := &plan{}
	p.dirs = append(p.dirs, &node{path: ".", mode: 0o755, mtime: mtime(r)})
	for _, top := range []string{"bin", "etc", "usr", "var", "opt", "home", "srv", "dev"} {
		p.dirs = append(p.dirs, &node{path: top, mode: 0o755, mtime: mtime(r)})
	}
	p.dirs = append(p.dirs, &node{path: "var/lib", mode: 0o755, mtime: mtime(r)})
	nDirs := max(20, n/15)
	used := map[string]bool{}
	for i := len(p.dirs); i < nDirs; i++ {
		parent := p.dirs[1+r.IntN(len(p.dirs)-1)]
		if parent.path == "dev" {
			parent = p.dirs[3] // usr
		}
		name := fmt.Sprintf("%s%d", pick(r, words), i)
		path := parent.path + "/" + name
		used[path] = true
		uid, gid := owner(r)
		mode := uint32(0o755)
		if r.IntN(50) == 0 {
			mode = 0o700
		}
		if r.IntN(200) == 0 {
			mode = 0o1777
		}
		p.dirs = append(p.dirs, &node{path: path, mode: mode, uid: uid, gid: gid, mtime: mtime(r)})
	}
	fileDirs := p.dirs[1:]
	addFile := func(path string, size int64) *node {
		uid, gid := owner(r)
		f := &node{path: path, mode: fileMode(r), uid: uid, gid: gid, mtime: mtime(r), size: size, seed: r.Uint64()}
		switch x := r.Float64(); {
		case x < 0.02*xk:
			f.xattrs = append(f.xattrs, xattr{"user.bench.origin", []byte(fmt.Sprintf("pkg-%d", r.IntN(500)))})
		case x < 0.021*xk:
			f.xattrs = append(f.xattrs, xattr{"security.capability", capNetRaw()})
			f.mode = 0o755
		case x < 0.022*xk:
			f.xattrs = append(f.xattrs, xattr{"system.posix_acl_access", aclUserRead(1000 + uint32(r.IntN(5)))})
		}
		p.files = append(p.files, f)
		return f
	}
	for i := range n {
		d := pick(r, fileDirs)
		if d.path == "dev" {
			d = p.dirs[2] // etc
		}
		name := fmt.Sprintf("%s-%d%s", pick(r, words), i, pick(r, exts))
		addFile(d.path+"/"+name, fileSize(r))
	}
	// A few ~100 MiB files (scaled down for small trees), and one large
	// sparse file.
	bigSize, sparseSize, sparseChunks := int64(100*mib), int64(1<<30), 16
	if n < 50_000 {
		bigSize, sparseSize, sparseChunks = 16*mib, 256*mib, 8
	}
	for i := range max(1, n/100_000) {
		f := addFile(fmt.Sprintf("var/lib/big-%d.db", i), bigSize+r.Int64N(mib))
		f.xattrs = nil
	}
	sp := addFile("var/lib/sparse.img", sparseSize)
	sp.xattrs = nil
	sp.chunkLen = 256 * kib
	for range sparseChunks {
		sp.chunks = append(sp.chunks, r.Int64N(sparseSize/(256*kib))*256*kib)
	}
	// Hard links: 1 % of the files get a second name elsewhere.
	for i := range n / 100 {
		target := p.files[r.IntN(n)]
		d := pick(r, fileDirs)
		if d.path == "dev" {
			continue
		}
		p.links = append(p.links, [2]string{fmt.Sprintf("%s/hl-%d", d.path, i), target.path})
	}
	// Symlinks: 5 %, relative to files, absolute, dangling.
	for i := range n / 20 {
		d := pick(r, fileDirs)
		if d.path == "dev" {
			continue
		}
		var target string
		switch x := r.Float64(); {
		case x < 0.7:
			target = relTo(d.path, p.files[r.IntN(n)].path)
		case x < 0.9:
			target = "/" + p.files[r.IntN(n)].path
		default:
			target = fmt.Sprintf("../dangling-%d", i)
		}
		p.symlinks = append(p.symlinks, [2]string{fmt.Sprintf("%s/sl-%d", d.path, i), target})
	}
	p.specials = devSpecials(r, "dev")
	return p
}

// planSparse lays out the sparse-heavy tree: 16 files of 128 MiB with 4 MiB
// of data each, plus a few small files.
func planSparse(spec Spec) *plan {
	r := newRand(spec.Seed, 2)
	p := &plan{}
	p.dirs = append(p.dirs, &node{path: ".", mode: 0o755, mtime: mtime(r)},
		&node{path: "var", mode: 0o755, mtime: mtime(r)},
		&node{path: "var/lib", mode: 0o755, mtime: mtime(r)},
		&node{path: "var/lib/images", mode: 0o755, mtime: mtime(r)},
		&node{path: "etc", mode: 0o755, mtime: mtime(r)})
	for i := range 16 {
		size := int64(128 * mib)
		f := &node{path: fmt.Sprintf("var/lib/images/vm-%02d.img", i), mode: 0o600, mtime: mtime(r),
			size: size, seed: r.Uint64(), chunkLen: 256 * kib}
		for range 16 {
			f.chunks = append(f.chunks, r.Int64N(size/(256*kib))*256*kib)
		}
		p.files = append(p.files, f)
	}
	for i := range 32 {
		p.files = append(p.files, &node{path: fmt.Sprintf("etc/conf-%d", i), mode: 0o644, mtime: mtime(r),
			size: fileSize(r) % (64 * kib), seed: r.Uint64()})
	}
	return p
}

// devSpecials are a few device nodes, fifos and a socket under dir.
func devSpecials(r *rand.Rand, dir string) []special {
	mk := func(name string, typ uint32, major, minor uint32, mode uint32) special {
		return special{node: node{path: dir + "/" + name, mode: mode, mtime: mtime(r)}, typ: typ, rdev: unix.Mkdev(major, minor)}
	}
	return []special{
		mk("null", unix.S_IFCHR, 1, 3, 0o666),
		mk("zero", unix.S_IFCHR, 1, 5, 0o666),
		mk("tty0", unix.S_IFCHR, 4, 0, 0o620),
		mk("sda", unix.S_IFBLK, 8, 0, 0o660),
		mk("sda1", unix.S_IFBLK, 8, 1, 0o660),
		mk("initctl", unix.S_IFIFO, 0, 0, 0o600),
		mk("bench.fifo", unix.S_IFIFO, 0, 0, 0o644),
		mk("log.sock", unix.S_IFSOCK, 0, 0, 0o666),
	}
}

// relTo returns a relative symlink target from directory dir to path.
func relTo(dir, path string) string {
	up := strings.Count(dir, "/") + 1
	return strings.Repeat("../", up) + path
}

// capNetRaw is a version-2 security.capability value granting
// cap_net_raw, permitted and effective.
func capNetRaw() []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|1) // VFS_CAP_REVISION_2 | effective
	binary.LittleEndian.PutUint32(b[4:], 1<<13)        // permitted: CAP_NET_RAW
	return b
}

// aclUserRead is a system.posix_acl_access value: the usual owner, group,
// other entries plus read for one more user.
func aclUserRead(uid uint32) []byte {
	const undefined = 0xffffffff
	type ent struct {
		tag, perm uint16
		id        uint32
	}
	ents := []ent{{0x01, 6, undefined}, {0x02, 4, uid}, {0x04, 4, undefined}, {0x10, 4, undefined}, {0x20, 4, undefined}}
	b := make([]byte, 4+8*len(ents))
	binary.LittleEndian.PutUint32(b, 2)
	for i, e := range ents {
		o := 4 + 8*i
		binary.LittleEndian.PutUint16(b[o:], e.tag)
		binary.LittleEndian.PutUint16(b[o+2:], e.perm)
		binary.LittleEndian.PutUint32(b[o+4:], e.id)
	}
	return b
}

// write creates the planned tree beneath dir.
func (p *plan) write(ctx context.Context, dir string, workers int) (Stats, error) {
	if workers <= 0 {
		workers = 4
	}
	var st Stats
	st.Dirs = len(p.dirs)
	for _, d := range p.dirs[1:] {
		if err := os.Mkdir(filepath.Join(dir, d.path), 0o755); err != nil {
			return st, err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu sync.Mutex
	for _, f := range p.files {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			n, err := writeFile(filepath.Join(dir, f.path), f)
			mu.Lock()
			st.DataBytes += n
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}
	st.Files = len(p.files)
	for _, f := range p.files {
		st.Bytes += f.size
	}
	for _, l := range p.links {
		if err := os.Link(filepath.Join(dir, l[1]), filepath.Join(dir, l[0])); err != nil {
			return st, err
		}
		st.HardLinks++
	}
	r := newRand(uint64(len(p.symlinks)), 3)
	for _, s := range p.symlinks {
		path := filepath.Join(dir, s[0])
		if err := os.Symlink(s[1], path); err != nil {
			return st, err
		}
		uid, gid := owner(r)
		if err := os.Lchown(path, int(uid), int(gid)); err != nil {
			return st, err
		}
		if err := setTimes(path, mtime(r)); err != nil {
			return st, err
		}
		st.Symlinks++
	}
	for _, s := range p.specials {
		path := filepath.Join(dir, s.path)
		if err := unix.Mknod(path, s.typ|s.mode, int(s.rdev)); err != nil {
			return st, fmt.Errorf("mknod %s: %w", path, err)
		}
		if err := os.Chmod(path, os.FileMode(s.mode)); err != nil {
			return st, err
		}
		if err := setTimes(path, s.mtime); err != nil {
			return st, err
		}
		st.Specials++
	}
	// Directories last, deepest first, so their mtimes stay.
	dirs := slices.Clone(p.dirs)
	sort.SliceStable(dirs, func(i, j int) bool { return strings.Count(dirs[i].path, "/") > strings.Count(dirs[j].path, "/") })
	for _, d := range dirs {
		path := filepath.Join(dir, d.path)
		if err := os.Lchown(path, int(d.uid), int(d.gid)); err != nil {
			return st, err
		}
		if err := unix.Chmod(path, d.mode); err != nil {
			return st, err
		}
		if err := setTimes(path, d.mtime); err != nil {
			return st, err
		}
	}
	return st, nil
}

// writeFile creates one regular file with its content, owner, mode,
// xattrs and mtime, in that order (chown clears set-id bits and
// capabilities; an access ACL rewrites the group bits). It returns the data
// bytes written.
func writeFile(path string, f *node) (int64, error) {
	fd, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := writeContent(fd, f)
	if err == nil {
		err = fd.Chown(int(f.uid), int(f.gid))
	}
	if err == nil {
		err = unix.Fchmod(int(fd.Fd()), f.mode)
	}
	for _, x := range f.xattrs {
		if err == nil {
			if err = unix.Fsetxattr(int(fd.Fd()), x.name, x.value, 0); err != nil {
				err = fmt.Errorf("set %s on %s: %w", x.name, path, err)
			}
		}
	}
	if err == nil {
		ts := unix.NsecToTimespec(f.mtime)
		err = unix.UtimesNanoAt(int(fd.Fd()), "", []unix.Timespec{ts, ts}, unix.AT_EMPTY_PATH)
		if err != nil {
			err = fmt.Errorf("set times on %s: %w", path, err)
		}
	}
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// writeContent fills a file with the node's seeded content: size bytes, or
// for a sparse node its chunks only, holes elsewhere.
func writeContent(fd *os.File, f *node) (int64, error) {
	src := rand.NewChaCha8(seedBytes(f.seed))
	buf := make([]byte, min(f.size, mib))
	if f.chunks == nil {
		var off int64
		for off < f.size {
			b := buf[:min(int64(len(buf)), f.size-off)]
			src.Read(b)
			if _, err := fd.Write(b); err != nil {
				return off, err
			}
			off += int64(len(b))
		}
		return off, nil
	}
	var n int64
	for _, off := range f.chunks {
		b := buf[:min(f.chunkLen, int64(len(buf)))]
		src.Read(b)
		if _, err := fd.WriteAt(b, off); err != nil {
			return n, err
		}
		n += int64(len(b))
	}
	return n, fd.Truncate(f.size)
}

func seedBytes(s uint64) [32]byte {
	var b [32]byte
	binary.LittleEndian.PutUint64(b[:], s)
	binary.LittleEndian.PutUint64(b[8:], s^0x9e3779b97f4a7c15)
	return b
}

func setTimes(path string, ns int64) error {
	ts := unix.NsecToTimespec(ns)
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}
