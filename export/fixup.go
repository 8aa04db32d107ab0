package export

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// gokrazy/rsync v0.2.2's sender gets four things wrong that a stock rsync
// client cannot survive or that lose an image's fidelity; the child fixes
// them in the bytes the library writes, before they reach the client:
//
//  1. A multiplexed frame carries a 24-bit length, but the library puts
//     the whole file list in one frame: past 16 MiB (about 170,000
//     entries of a real root) the length overflows into the tag and the
//     client stops with "unexpected tag". The fixer re-frames every
//     payload into frames of at most maxFrame bytes.
//  2. It always sends the uid and gid name lists after the file list;
//     protocol 27 clients read them only when preserving owners (or
//     groups) without --numeric-ids, so -a --numeric-ids fails with
//     "received request to transfer non-regular file". The fixer sends
//     exactly the lists the client reads.
//  3. It masks modes with 0777, losing setuid, setgid and sticky bits. The
//     fixer puts them back from an lstat of each entry.
//  4. It sends no device and inode numbers, which protocol 27 clients
//     read for every regular file when asked for hard links (-H), so -H
//     hangs. The fixer adds them from the same lstat, so -H keeps hard
//     links.
//
// The fixer relies on how the library writes, checked as it goes: after
// the two handshake lines and the 4-byte checksum seed, every write is
// either a 4-byte multiplex header or the payload that header announces;
// the first data payload is the whole file list. Anything else ends the
// transfer with an error rather than passing on a stream the fixer does
// not understand.

// maxFrame is the largest payload the fixer puts in one frame: the
// library's own file-data chunk size, known to work with stock clients.
const maxFrame = 256 << 10

// flistOpts are the options that decide which fields the file list has:
// the library's reading of the client's arguments (its rsyncopts
// package), mirrored by parseFlistOpts.
type flistOpts struct {
	uid, gid, devices, specials, links, checksum, hardLinks, numericIDs bool
	dryRun                                                              bool // -n: requests carry no checksums
	// withhold keeps the contents of RootOnly files back (not an rsync
	// option: the export's policy).
	withhold bool
}

// parseFlistOpts reads the server-side command line as the library's
// option parser does, for the options that shape the file list.
func parseFlistOpts(args []string) flistOpts {
	var o flistOpts
	for _, a := range args {
		if a == "." {
			break
		}
		if long, ok := strings.CutPrefix(a, "--"); ok {
			switch long {
			case "archive":
				o.links, o.uid, o.gid, o.devices, o.specials = true, true, true, true, true
			case "owner":
				o.uid = true
			case "no-owner", "no-o":
				o.uid = false
			case "group":
				o.gid = true
			case "no-group", "no-g":
				o.gid = false
			case "devices":
				o.devices = true
			case "no-devices":
				o.devices = false
			case "specials":
				o.specials = true
			case "no-specials":
				o.specials = false
			case "no-D":
				o.devices, o.specials = false, false
			case "links":
				o.links = true
			case "no-links", "no-l":
				o.links = false
			case "checksum":
				o.checksum = true
			case "no-checksum", "no-c":
				o.checksum = false
			case "hard-links":
				o.hardLinks = true
			case "numeric-ids":
				o.numericIDs = true
			case "dry-run":
				o.dryRun = true
			}
			continue
		}
		short, ok := strings.CutPrefix(a, "-")
		if !ok {
			continue
		}
	letters:
		for _, c := range short {
			switch c {
			case 'e': // the rest is its argument
				break letters
			case 'a':
				o.links, o.uid, o.gid, o.devices, o.specials = true, true, true, true, true
			case 'o':
				o.uid = true
			case 'g':
				o.gid = true
			case 'D':
				o.devices, o.specials = true, true
			case 'l':
				o.links = true
			case 'c':
				o.checksum = true
			case 'H':
				o.hardLinks = true
			case 'n':
				o.dryRun = true
			}
		}
	}
	return o
}

// File list entry flags and modes, as protocol 27 defines them.
const (
	xmitTopDir   = 1 << 0
	xmitLongName = 1 << 6
	sIFMT        = 0o170000
	sIFREG       = 0o100000
	sIFDIR       = 0o040000
	sIFLNK       = 0o120000
	sIFCHR       = 0o020000
	sIFBLK       = 0o060000
	sIFIFO       = 0o010000
	sIFSOCK      = 0o140000
	checksumLen  = 16
	maxNameLen   = 1 << 16
	maxTargetLen = 1 << 16
)

// statFunc returns the lstat of the file list entry name (flags as sent),
// or false when it cannot be had.
type statFunc func(name string, flags byte) (unix.Stat_t, bool)

// rewriteFlist rewrites the library's file list (items 2 to 4 above) for
// a client with options o. With o.withhold it also returns the names of
// the RootOnly regular files, whose --checksum sums it zeroes and for
// which it raises the list's I/O error flag. It returns an error when the
// list is not what the library writes for o; nothing is sent then.
func rewriteFlist(in []byte, o flistOpts, stat statFunc) (out []byte, names, withheld []string, err error) {
	r := &flistReader{b: in}
	out = make([]byte, 0, len(in)+len(in)/8)
	for {
		start := r.off
		flags := r.byte()
		if r.err != nil {
			return nil, nil, nil, r.err
		}
		if flags == 0 {
			out = append(out, 0)
			break
		}
		if flags&^byte(xmitTopDir) != xmitLongName {
			return nil, nil, nil, fmt.Errorf("file list entry at %d: flags %#x", start, flags)
		}
		n := r.int32()
		if n < 0 || n > maxNameLen {
			return nil, nil, nil, fmt.Errorf("file list entry at %d: name length %d", start, n)
		}
		name := string(r.bytes(int(n)))
		names = append(names, name)
		r.longint() // size
		r.int32()   // mtime
		modeAt := r.off
		mode := uint32(r.int32())
		if o.uid {
			r.int32()
		}
		if o.gid {
			r.int32()
		}
		typ := mode & sIFMT
		isDev := typ == sIFCHR || typ == sIFBLK
		isSpecial := typ == sIFIFO || typ == sIFSOCK
		if (o.devices && isDev) || (o.specials && isSpecial) {
			r.int32()
		}
		if o.links && typ == sIFLNK {
			t := r.int32()
			if t < 0 || t > maxTargetLen {
				return nil, nil, nil, fmt.Errorf("file list entry %q: target length %d", name, t)
			}
			r.bytes(int(t))
		}
		idevAt := r.off
		if o.checksum {
			r.bytes(checksumLen)
		}
		if r.err != nil {
			return nil, nil, nil, fmt.Errorf("file list entry %q: %w", name, r.err)
		}
		st, ok := stat(name, flags)
		if ok && st.Mode&sIFMT != typ {
			ok = false // replaced since the library looked
		}
		entry := append([]byte(nil), in[start:idevAt]...)
		if ok {
			m := mode | st.Mode&0o7000
			binary.LittleEndian.PutUint32(entry[modeAt-start:], m)
		}
		sum := in[idevAt:r.off]
		if o.withhold && typ == sIFREG && (!ok || RootOnly(st.Mode, st.Uid)) {
			// Without a stat there is no telling: withheld too.
			withheld = append(withheld, name)
			sum = make([]byte, len(sum)) // --checksum: no hash of the contents either
		}
		out = append(out, entry...)
		if o.hardLinks && typ == sIFREG {
			var dev, ino uint64
			if ok {
				dev, ino = st.Dev, st.Ino
			} else {
				// No identity: a pair no file has, so no link is made.
				dev, ino = 0, uint64(start)
			}
			out = appendLongint(out, int64(dev))
			out = appendLongint(out, int64(ino))
		}
		out = append(out, sum...)
	}
	uids := r.idList()
	gids := r.idList()
	ioErr := r.bytes(4)
	if r.err != nil {
		return nil, nil, nil, fmt.Errorf("file list trailer: %w", r.err)
	}
	if r.off != len(in) {
		return nil, nil, nil, fmt.Errorf("file list: %d bytes after the trailer", len(in)-r.off)
	}
	if len(withheld) > 0 {
		// The client then exits 23 and, with --delete, deletes nothing.
		ioErr = binary.LittleEndian.AppendUint32(nil, 1)
	}
	if o.uid && !o.numericIDs {
		out = append(out, uids...)
	}
	if o.gid && !o.numericIDs {
		out = append(out, gids...)
	}
	return append(out, ioErr...), names, withheld, nil
}

func appendLongint(b []byte, v int64) []byte {
	if v >= 0 && v <= 0x7fffffff {
		return binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	b = binary.LittleEndian.AppendUint32(b, 0xffffffff)
	return binary.LittleEndian.AppendUint64(b, uint64(v))
}

// flistReader reads protocol 27 integers from a byte slice, remembering
// the first error.
type flistReader struct {
	b   []byte
	off int
	err error
}

func (r *flistReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *flistReader) byte() byte {
	p := r.bytes(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *flistReader) int32() int32 {
	p := r.bytes(4)
	if p == nil {
		return 0
	}
	return int32(binary.LittleEndian.Uint32(p))
}

func (r *flistReader) longint() int64 {
	v := r.int32()
	if v != -1 {
		return int64(v)
	}
	p := r.bytes(8)
	if p == nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(p))
}

// idList reads a uid or gid list (id, name length byte, name; ended by a
// zero id) and returns its bytes, end marker included.
func (r *flistReader) idList() []byte {
	start := r.off
	for r.err == nil {
		if r.int32() == 0 {
			break
		}
		r.bytes(int(r.byte()))
	}
	if r.err != nil {
		return nil
	}
	return r.b[start:r.off]
}

// requestStat returns the statFunc for a transfer of the single requested
// path req from the module served at modPath, mapping file list names
// back to paths exactly as the library built them (its getRootStrip).
func requestStat(module, modPath, req string) statFunc {
	rel := strings.TrimPrefix(req, module+"/")
	root := filepath.Clean(modPath + "/" + rel)
	strip := filepath.Dir(root) + "/"
	if strings.HasSuffix(req, "/") {
		strip = root + "/"
	}
	return func(name string, flags byte) (unix.Stat_t, bool) {
		p := strip + name
		if name == "." && flags&xmitTopDir != 0 {
			p = root
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return st, false
		}
		return st, true
	}
}

// fixer is the writer between the library and the connection; see the
// top of this file.
type fixer struct {
	mu     sync.Mutex
	w      io.Writer
	opts   flistOpts
	stat   statFunc
	state  int
	header uint32
	flist  bool // the file list went out
	err    error

	// sent is closed once the file list went out; withheld then holds
	// the indices (in the library's sorted order) of the files whose
	// contents are withheld.
	sent     chan struct{}
	withheld map[int32]bool
}

// withheldIndex reports whether the client's request for file index i
// must not reach the library. Call it only after f.sent is closed.
func (f *fixer) withheldIndex(i int32) bool { return f.withheld[i] }

const (
	fixSeed = iota
	fixHeader
	fixPayload
)

var errFixer = errors.New("unexpected write from the rsync library")

func (f *fixer) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	switch f.state {
	case fixSeed:
		if len(p) != 4 {
			return f.fail(fmt.Errorf("%w: %d bytes where the 4-byte checksum seed was expected", errFixer, len(p)))
		}
		f.state = fixHeader
		return f.w.Write(p)
	case fixHeader:
		if len(p) != 4 {
			return f.fail(fmt.Errorf("%w: %d bytes where a 4-byte frame header was expected", errFixer, len(p)))
		}
		f.header = binary.LittleEndian.Uint32(p)
		f.state = fixPayload
		return len(p), nil
	}
	f.state = fixHeader
	tag := int(f.header>>24) - muxBase
	if len(p) >= 1<<24 {
		// The length overflowed into the tag: only data goes out that big.
		if f.header != uint32(muxBase)<<24|uint32(len(p)) {
			return f.fail(fmt.Errorf("%w: header %#x for a %d-byte payload", errFixer, f.header, len(p)))
		}
		tag = 0
	} else if int(f.header&0xffffff) != len(p) {
		return f.fail(fmt.Errorf("%w: header %#x for a %d-byte payload", errFixer, f.header, len(p)))
	}
	payload := p
	if tag == 0 && !f.flist {
		f.flist = true
		fl, names, withheld, err := rewriteFlist(p, f.opts, f.stat)
		if err != nil {
			return f.fail(fmt.Errorf("rewrite the file list: %w", err))
		}
		payload = fl
		if len(withheld) > 0 {
			f.withheld = sortedIndices(names, withheld)
			if err := f.send(muxError, []byte(withheldMessage(withheld))); err != nil {
				return f.fail(err)
			}
		}
		if f.sent != nil {
			close(f.sent)
		}
	}
	if err := f.send(tag, payload); err != nil {
		return f.fail(err)
	}
	return len(p), nil
}

// send writes payload in frames of at most maxFrame bytes (an empty
// payload as one empty frame).
func (f *fixer) send(tag int, payload []byte) error {
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), maxFrame)
		b := make([]byte, 4, 4+n)
		binary.LittleEndian.PutUint32(b, muxHeader(tag, n))
		if _, err := f.w.Write(append(b, payload[:n]...)); err != nil {
			return err
		}
		payload = payload[n:]
	}
	return nil
}

func (f *fixer) fail(err error) (int, error) {
	f.err = err
	return 0, err
}

// muxed reports whether the stream is past the checksum seed, between
// frames: a frame written now is read as one by the client.
func (f *fixer) muxed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state == fixHeader
}

// RootOnly reports whether a file's contents are withheld by the export
// unless Options.ServeRootOnly is set: a regular file owned by uid 0
// that the "other" class may not read (mode&0o004 == 0), whatever its
// group bits. mode is st_mode with its type bits. That holds
// /etc/shadow and /etc/gshadow (root:root 0000 on Red Hat, root:shadow
// 0640 on Debian), the ssh host keys (root:root 0600, or root:ssh_keys
// 0640 on Red Hat), private TLS keys and sudoers, and no file every local
// user may read. Group read bits are ignored because distributions hand
// secrets to a group only privileged programs are in (shadow, ssh_keys).
func RootOnly(mode, uid uint32) bool {
	return mode&sIFMT == sIFREG && uid == 0 && mode&0o004 == 0
}

// sortedIndices returns the indices of withheld in names sorted as the
// library sorts its file list (and the client its own) before files are
// requested by index.
func sortedIndices(names, withheld []string) map[int32]bool {
	sorted := slices.Clone(names)
	sort.Strings(sorted)
	out := make(map[int32]bool, len(withheld))
	for _, w := range withheld {
		i := sort.SearchStrings(sorted, w)
		for ; i < len(sorted) && sorted[i] == w; i++ {
			out[int32(i)] = true
		}
	}
	return out
}

// withheldMessage is the error line the client prints for withheld files.
func withheldMessage(withheld []string) string {
	const show = 10
	list := strings.Join(withheld[:min(len(withheld), show)], ", ")
	if len(withheld) > show {
		list += fmt.Sprintf(" and %d more", len(withheld)-show)
	}
	return fmt.Sprintf("goldsync rsync export: contents withheld of %d root-only file(s) (owner root, not readable by others): %s; the export's admin can serve them with --serve-root-only\n", len(withheld), list)
}
