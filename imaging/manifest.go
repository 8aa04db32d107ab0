package imaging

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// Manifest is the recorded state of a tree: every entry with its hash and
// local identity (dev, ino, ctime), so the next walk of the same tree can
// skip reading what did not change. A destination's manifest lives in its
// state dir, outside the exported image; a source's hash cache uses the same
// format.
//
// A manifest is a cache: a walk trusts a recorded hash only while the file's
// (dev, ino, size, mtime, ctime) are unchanged, so a stale or lost manifest
// costs reading, never correctness.
//
// On disk it is a base file plus a log of scoped updates beside it (path +
// ".log"), so that a run that touched a few paths of a large tree reads and
// writes in proportion to those paths (LoadManifestScoped, UpdateManifest)
// rather than to the tree. The base is written in blocks with an index of
// their first paths, each block checksummed; the log's records name the
// base generation they apply to, so a log left behind by an interrupted
// compaction is never replayed onto the wrong base.
type Manifest struct {
	// Entries in tree.Compare order.
	Entries []*tree.Entry

	// total is how many entries the whole manifest's base holds, also
	// after a scoped load (0 when unknown).
	total int
}

// manifestMagic starts every manifest file; the last byte is the format
// version. Version 1 (one delta-coded stream, whole-file checksum) is still
// read.
var (
	manifestMagic   = []byte("GSMANIF\x02")
	manifestMagicV1 = []byte("GSMANIF\x01")
)

const (
	// manifestBlock is the most entries a base block holds: a scoped load
	// decodes at most one block more than it needs per scope.
	manifestBlock = 256
	// blockMin and blockCut place the other block ends by content: a
	// block ends after an entry whose path hashes to 0 modulo blockCut
	// once it holds blockMin entries (about 125 entries a block). An
	// entry added or removed then changes its own block and seldom the
	// next, not every block after it, so the bases of two generations
	// share the encoding of every block the change did not touch
	// (changedByBlocks compares them without decoding).
	blockMin = 64
	blockCut = 64
	// manifestHeader is the magic and the generation.
	manifestHeader = 8 + 8
	// manifestTrailer is the index offset and the checksum of the header
	// and index.
	manifestTrailer = 8 + 8
	// maxLogRecord bounds one log record (a hostile or corrupt length
	// must not allocate gigabytes).
	maxLogRecord = 1 << 30
)

// logSlack is how far a log may grow beyond its share of the base before
// UpdateManifest compacts (a variable for tests).
var logSlack int64 = 64 << 10

// compactAt is the log size past which UpdateManifest folds the log into a
// new base of baseSize bytes and generation gen: logSlack plus between an
// eighth and three eighths of the base (a quarter on average), at a point
// the base's generation picks. The generation is drawn at random by each
// state dir when it writes its base, never taken from a sender, so replicas
// fed the same updates (the same records, the same base sizes) still fold
// their logs in different updates instead of all in the same one, and each
// new base draws a new point.
func compactAt(gen uint64, baseSize int64) int64 {
	span := uint64(max(baseSize/4, 0)) + 1
	return baseSize/8 + int64((gen>>1)%span) + logSlack
}

// decodedEntries counts the manifest entries decoded, from base blocks and
// log records: the tests that check that a scoped update's work follows
// the change, not the image, read it.
var decodedEntries atomic.Int64

func countDecoded(n int) { decodedEntries.Add(int64(n)) }

// ErrCorruptManifest is wrapped when a manifest fails its checksum or
// cannot be decoded.
var ErrCorruptManifest = errors.New("corrupt manifest")

func (m *Manifest) sort() { sortEntries(m.Entries) }

func sortEntries(es []*tree.Entry) {
	slices.SortFunc(es, func(a, b *tree.Entry) int { return tree.Compare(a.Path, b.Path) })
}

// finder returns a lookup of m's entries by path: a binary search of the
// sorted list (sorted first if it is not), where index built a map of
// every path (about 30 bytes an entry more, on each side of a pull).
func (m *Manifest) finder() func(string) *tree.Entry {
	if !slices.IsSortedFunc(m.Entries, func(a, b *tree.Entry) int { return tree.Compare(a.Path, b.Path) }) {
		m.sort()
	}
	es := m.Entries
	return func(p string) *tree.Entry { return findEntry(es, p) }
}

func (m *Manifest) index() map[string]*tree.Entry {
	idx := make(map[string]*tree.Entry, len(m.Entries))
	for _, e := range m.Entries {
		idx[e.Path] = e
	}
	return idx
}

// LogPath names the log of scoped updates of the manifest at path.
func LogPath(path string) string { return path + ".log" }

// Save writes the manifest atomically as a new base (a temp file in the
// same directory, fsync, rename, fsync of the directory) and drops the log
// of the previous base. The file is 0600.
func (m *Manifest) Save(path string) error {
	if err := m.saveBase(path); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	// The new base has a new generation: the old log no longer applies
	// (and would be ignored); remove it to reclaim the space.
	checkedLogs.Delete(LogPath(path))
	if err := os.Remove(LogPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("save manifest: %w", err)
	}
	return nil
}

func (m *Manifest) saveBase(path string) error { return saveBaseSeq(path, slices.Values(m.Entries)) }

// saveManifestSeq is Save for a manifest whose entries seq produces in
// tree.Compare order (it may reuse the entry it yields once the next is
// asked for): a receiver records a full run without holding the list.
func saveManifestSeq(path string, seq iter.Seq[*tree.Entry]) error {
	if err := saveBaseSeq(path, seq); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	checkedLogs.Delete(LogPath(path))
	if err := os.Remove(LogPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("save manifest: %w", err)
	}
	return nil
}

func saveBaseSeq(path string, seq iter.Seq[*tree.Entry]) error {
	gen := newGeneration()
	return writeFileAtomicFunc(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 256<<10)
		if err := writeBase(bw, seq, gen); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// newGeneration names a base so that its log records can be told from a
// log left by another base; it also places the base's next compaction
// (compactAt). A variable for tests.
var newGeneration = func() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1 // never zero
}

// encodeBase encodes sorted entries as a base file.
func encodeBase(entries []*tree.Entry, gen uint64) ([]byte, error) {
	var b bytes.Buffer
	if err := writeBase(&b, slices.Values(entries), gen); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeBase writes sorted entries as a base file to w, a block at a time:
// neither the list nor its encoding is held whole (the encoding alone was
// 12 MiB of a 200k-entry pull's peak heap). seq may reuse an entry once the
// next is asked for: each block's encoding refers only to the entry before.
func writeBase(w io.Writer, seq iter.Seq[*tree.Entry], gen uint64) error {
	bw, err := newBaseWriter(w, gen)
	if err != nil {
		return err
	}
	for e := range seq {
		if err := bw.add(e); err != nil {
			return err
		}
	}
	return bw.finish()
}

// baseWriter writes a base file a block at a time (writeBase): its
// first blocks may be copied as they are from another base (copyBlocks),
// the rest encoded from entries (add).
type baseWriter struct {
	w      io.Writer
	head   []byte
	blocks blockList
	buf    []byte
	off    int
	total  int
	cur    baseBlock
	prev   tree.Entry // a copy: the caller may reuse what it adds
	// copied and encoded count the blocks copied and encoded, written
	// the bytes written (for tests).
	copied, encoded, written int
}

func newBaseWriter(w io.Writer, gen uint64) (*baseWriter, error) {
	head := append([]byte(manifestMagic), make([]byte, 8)...)
	binary.BigEndian.PutUint64(head[len(manifestMagic):], gen)
	if _, err := w.Write(head); err != nil {
		return nil, err
	}
	return &baseWriter{w: w, head: head, off: len(head), written: len(head)}, nil
}

// copyBlocks copies blocks of bf as they are, before anything is added:
// each is read again and checked against its checksum, which the
// reader's index holds (the file is not trusted to be what was decoded).
// last is the path of the last entry of the last block, which the next
// entry added must sort after.
func (bw *baseWriter) copyBlocks(bf baseFile, blocks *blockList, nblocks int, last string) error {
	if bw.total > 0 || bw.cur.n > 0 {
		return errors.New("base writer: blocks copied after entries")
	}
	var err error
	blocks.each(0, func(i int, first []byte, b baseBlock) bool {
		if i >= nblocks {
			return false
		}
		raw, bp, rerr := bf.readBlock(int64(b.off), int64(b.len))
		if rerr != nil {
			err = rerr
			return false
		}
		if xxhash.Sum64(raw) != b.sum {
			if bp != nil {
				putBlockBuf(bp)
			}
			err = fmt.Errorf("%w: block at %d: checksum mismatch", ErrCorruptManifest, b.off)
			return false
		}
		_, err = bw.w.Write(raw)
		if bp != nil {
			putBlockBuf(bp)
		}
		if err != nil {
			return false
		}
		b.off = bw.off
		bw.blocks.addBytes(first, b)
		bw.off += b.len
		bw.total += b.n
		bw.copied++
		bw.written += b.len
		return true
	})
	if err != nil {
		return err
	}
	if nblocks > 0 {
		bw.prev = tree.Entry{Path: last}
	}
	return nil
}

// add encodes the next entry.
func (bw *baseWriter) add(e *tree.Entry) error {
	if bw.total > 0 && tree.Compare(bw.prev.Path, e.Path) >= 0 {
		return fmt.Errorf("entries out of order: %q after %q", e.Path, bw.prev.Path)
	}
	var p *tree.Entry
	if bw.cur.n == 0 {
		bw.cur.first = e.Path
	} else {
		p = &bw.prev
	}
	var err error
	if bw.buf, err = wire.AppendEntryLocal(bw.buf, p, e); err != nil {
		return err
	}
	bw.prev = *e
	bw.cur.n++
	bw.total++
	if bw.cur.n == manifestBlock || (bw.cur.n >= blockMin && blockEnds(e.Path)) {
		if err := bw.flush(); err != nil {
			return err
		}
		if blockWritten != nil {
			blockWritten(bw.blocks.len())
		}
	}
	return nil
}

func (bw *baseWriter) flush() error {
	if bw.cur.n == 0 {
		return nil
	}
	if _, err := bw.w.Write(bw.buf); err != nil {
		return err
	}
	bw.cur.off, bw.cur.len, bw.cur.sum = bw.off, len(bw.buf), xxhash.Sum64(bw.buf)
	bw.blocks.add(bw.cur)
	bw.off += len(bw.buf)
	bw.written += len(bw.buf)
	bw.encoded++
	bw.buf, bw.cur = bw.buf[:0], baseBlock{}
	return nil
}

// finish writes the last block and the index. The index goes out in
// pieces of about indexPiece bytes as it is encoded: held whole, it grew
// with the image (~1.3 MB at a million entries, with as much again of
// garbage as its buffer doubled) at the end of every run that records.
func (bw *baseWriter) finish() error {
	if err := bw.flush(); err != nil {
		return err
	}
	idxOff := bw.off
	h := xxhash.New()
	h.Write(bw.head[:manifestHeader])
	idx := bw.buf[:0]
	put := func() error {
		h.Write(idx)
		_, err := bw.w.Write(idx)
		bw.written += len(idx)
		idx = idx[:0]
		return err
	}
	idx = binary.AppendUvarint(idx, uint64(bw.blocks.len()))
	idx = binary.AppendUvarint(idx, uint64(bw.total))
	var err error
	bw.blocks.each(0, func(_ int, first []byte, b baseBlock) bool {
		idx = binary.AppendUvarint(idx, uint64(len(first)))
		idx = append(idx, first...)
		idx = binary.AppendUvarint(idx, uint64(b.off))
		idx = binary.AppendUvarint(idx, uint64(b.len))
		idx = binary.AppendUvarint(idx, uint64(b.n))
		idx = binary.BigEndian.AppendUint64(idx, b.sum)
		if len(idx) >= indexPiece {
			err = put()
		}
		return err == nil
	})
	if err != nil {
		return err
	}
	if err := put(); err != nil {
		return err
	}
	idx = binary.BigEndian.AppendUint64(idx, uint64(idxOff))
	idx = binary.BigEndian.AppendUint64(idx, h.Sum64())
	_, err = bw.w.Write(idx)
	bw.written += len(idx)
	bw.buf = idx[:0]
	return err
}

// indexPiece is about how much of a manifest's index finish encodes
// before it writes it (a variable for tests).
var indexPiece = 32 << 10

// blockEnds reports whether a block may end after the entry at path.
func blockEnds(path string) bool { return xxhash.Sum64String(path)%blockCut == 0 }

// writeFileAtomicFunc writes a file through fn, atomically, with the one
// atomic-write helper (fsx.WriteAtomic, mode 0600): fn writes into a pipe
// that the helper copies into its temp file, so nothing is held whole.
func writeFileAtomicFunc(path string, fn func(io.Writer) error) error {
	root, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer root.Close()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(fn(pw))
	}()
	_, err = fsx.WriteAtomic(context.Background(), root, filepath.Base(path), pr, 0o600)
	pr.CloseWithError(errors.New("manifest write abandoned")) // unblocks fn if WriteAtomic stopped early
	<-done
	return err
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// baseIndex is a decoded base file's index.
type baseIndex struct {
	gen    uint64
	total  int
	blocks blockList
}

type baseBlock struct {
	first    string
	off, len int
	n        int
	sum      uint64
}

// baseFile reads parts of a base: from memory, or from an open file so that
// a scoped load reads only the index and the blocks it needs.
type baseFile struct {
	size   int64
	readAt func(off, n int64) ([]byte, error)
	file   *os.File // a file's base (readBlock); nil for one in memory
}

// blockBufMax bounds the block buffers eachBlockEntry reuses: a block
// of 256 entries is ~15-25 KB (more with large xattrs, which then take
// a buffer of their own).
const blockBufMax = 64 << 10

// blockBufs holds the spare block buffers, two: the golden node's RSS is
// at its bound, and a sync.Pool (per-P lists and their victims) held ~0.2
// MiB more of it. A buffer grows to the blocks read into it (~15 KB on
// average at 225k entries).
var blockBufs = make(chan *[]byte, 2)

func getBlockBuf() *[]byte {
	select {
	case bp := <-blockBufs:
		return bp
	default:
		return new([]byte)
	}
}

func putBlockBuf(bp *[]byte) {
	select {
	case blockBufs <- bp:
	default:
	}
}

// readBlock reads n bytes at off for a decoder that keeps nothing of them
// (every decoded string and xattr value is a copy): from a file into a
// reused buffer, which the caller hands back with putBlockBuf once it
// is done (bp nil: nothing to hand back). The walks read a block per
// ~256 entries looked up, and a new buffer for each was an eighth of the
// golden node's allocations in a no-change pull (issue #14).
func (bf baseFile) readBlock(off, n int64) (raw []byte, bp *[]byte, err error) {
	if bf.file == nil || n > blockBufMax {
		raw, err = bf.readAt(off, n)
		return raw, nil, err
	}
	if off < 0 || n < 0 || off+n > bf.size {
		return nil, nil, fmt.Errorf("%w: read beyond the end", ErrCorruptManifest)
	}
	bp = getBlockBuf()
	raw = slices.Grow((*bp)[:0], int(n))[:n]
	*bp = raw
	if _, err := bf.file.ReadAt(raw, off); err != nil {
		putBlockBuf(bp)
		return nil, nil, err
	}
	return raw, bp, nil
}

func memBase(data []byte) baseFile {
	return baseFile{size: int64(len(data)), readAt: func(off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off+n > int64(len(data)) {
			return nil, fmt.Errorf("%w: read beyond the end", ErrCorruptManifest)
		}
		return data[off : off+n], nil
	}}
}

func fileBase(f *os.File) (baseFile, error) {
	st, err := f.Stat()
	if err != nil {
		return baseFile{}, err
	}
	return baseFile{size: st.Size(), file: f, readAt: func(off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off+n > st.Size() {
			return nil, fmt.Errorf("%w: read beyond the end", ErrCorruptManifest)
		}
		b := make([]byte, n)
		if _, err := f.ReadAt(b, off); err != nil {
			return nil, err
		}
		return b, nil
	}}, nil
}

// readIndex checks a base file's header, trailer and index.
func readIndex(bf baseFile) (*baseIndex, error) {
	if bf.size < manifestHeader+manifestTrailer {
		return nil, fmt.Errorf("%w: bad header", ErrCorruptManifest)
	}
	hdr, err := bf.readAt(0, manifestHeader)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(hdr[:len(manifestMagic)], manifestMagic) {
		return nil, fmt.Errorf("%w: bad header", ErrCorruptManifest)
	}
	tr, err := bf.readAt(bf.size-manifestTrailer, manifestTrailer)
	if err != nil {
		return nil, err
	}
	idxOff := binary.BigEndian.Uint64(tr[:8])
	if idxOff < manifestHeader || idxOff > uint64(bf.size-manifestTrailer) {
		return nil, fmt.Errorf("%w: bad index offset", ErrCorruptManifest)
	}
	idx, err := bf.readAt(int64(idxOff), bf.size-manifestTrailer-int64(idxOff))
	if err != nil {
		return nil, err
	}
	h := xxhash.New()
	h.Write(hdr)
	h.Write(idx)
	if h.Sum64() != binary.BigEndian.Uint64(tr[8:]) {
		return nil, fmt.Errorf("%w: index checksum mismatch", ErrCorruptManifest)
	}
	bi := &baseIndex{gen: binary.BigEndian.Uint64(hdr[8:16])}
	r := idx
	uv := func() (uint64, error) {
		v, k := binary.Uvarint(r)
		if k <= 0 {
			return 0, fmt.Errorf("%w: bad index", ErrCorruptManifest)
		}
		r = r[k:]
		return v, nil
	}
	nb, err := uv()
	if err != nil {
		return nil, err
	}
	total, err := uv()
	if err != nil {
		return nil, err
	}
	if nb > uint64(len(r)) || total > nb*manifestBlock {
		return nil, fmt.Errorf("%w: bad block count", ErrCorruptManifest)
	}
	bi.total = int(total)
	next, sumN := uint64(manifestHeader), 0
	var prev []byte // the block before's first path
	for i := uint64(0); i < nb; i++ {
		l, err := uv()
		if err != nil {
			return nil, err
		}
		if l > uint64(len(r)) || l > tree.MaxPathLen {
			return nil, fmt.Errorf("%w: bad index path", ErrCorruptManifest)
		}
		first := r[:l]
		r = r[l:]
		off, err := uv()
		if err != nil {
			return nil, err
		}
		ln, err := uv()
		if err != nil {
			return nil, err
		}
		n, err := uv()
		if err != nil {
			return nil, err
		}
		if len(r) < 8 {
			return nil, fmt.Errorf("%w: bad index", ErrCorruptManifest)
		}
		sum := binary.BigEndian.Uint64(r[:8])
		r = r[8:]
		// Blocks are contiguous, in order, and end at the index.
		if off != next || ln > idxOff-off || n == 0 || n > manifestBlock || ln < n {
			return nil, fmt.Errorf("%w: bad block %d", ErrCorruptManifest, i)
		}
		if i > 0 && comparePathBytes(prev, string(first)) >= 0 {
			return nil, fmt.Errorf("%w: index out of order", ErrCorruptManifest)
		}
		next = off + ln
		sumN += int(n)
		bi.blocks.addBytes(first, baseBlock{off: int(off), len: int(ln), n: int(n), sum: sum})
		prev = first
	}
	bi.blocks.trim()
	if len(r) != 0 || next != idxOff || sumN != bi.total {
		return nil, fmt.Errorf("%w: index does not match the blocks", ErrCorruptManifest)
	}
	return bi, nil
}

// decodeBlock decodes and checks one block. (The order across blocks is
// checked by the callers that join them.)
func decodeBlock(bf baseFile, b baseBlock) ([]*tree.Entry, error) {
	out := make([]*tree.Entry, 0, b.n)
	store := make([]tree.Entry, b.n)
	err := eachBlockEntry(bf, b, nil, func(i int) *tree.Entry { return &store[i] },
		func(_ int, e *tree.Entry) { out = append(out, e) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachBlockEntry reads one block, checks its sum, and decodes its entries
// in turn, each into slot(i) against the one before (so slot must not hand
// out the previous entry's place), checking that the first is the index's
// path and that they are in order; use sees each entry once it is checked.
// Trailing bytes are an error too. decodeBlock and decodePacked share it.
// With paths set, entry i's Path is built in paths[i%2] (the Path use sees
// is then valid only during that call); without, each Path is a new string.
func eachBlockEntry(bf baseFile, b baseBlock, paths *[2][]byte, slot func(i int) *tree.Entry, use func(i int, e *tree.Entry)) error {
	raw, bp, err := bf.readBlock(int64(b.off), int64(b.len))
	if err != nil {
		return err
	}
	if bp != nil {
		defer putBlockBuf(bp)
	}
	if xxhash.Sum64(raw) != b.sum {
		return fmt.Errorf("%w: block at %d: checksum mismatch", ErrCorruptManifest, b.off)
	}
	countDecoded(b.n)
	var prev *tree.Entry
	for i := range b.n {
		e := slot(i)
		var path *[]byte
		if paths != nil {
			path = &paths[i%2]
		}
		// prev: the entry decoded just before, from this block.
		raw, err = wire.DecodeEntryLocalNext(raw, prev, e, path)
		if err != nil {
			return fmt.Errorf("%w: block at %d, entry %d: %v", ErrCorruptManifest, b.off, i, err)
		}
		switch {
		case i == 0 && e.Path != b.first:
			return fmt.Errorf("%w: block at %d does not start at its index path", ErrCorruptManifest, b.off)
		case prev != nil && tree.Compare(prev.Path, e.Path) >= 0:
			return fmt.Errorf("%w: entry %q out of order", ErrCorruptManifest, e.Path)
		}
		use(i, e)
		prev = e
	}
	if len(raw) != 0 {
		return fmt.Errorf("%w: block at %d: %d trailing bytes", ErrCorruptManifest, b.off, len(raw))
	}
	return nil
}

// LoadManifest reads a manifest written by Save and UpdateManifest: the
// base with its log replayed. A missing file gives an error wrapping
// os.ErrNotExist; a damaged base wraps ErrCorruptManifest. A damaged log
// record ends the replay there (what it recorded is lost, which costs a
// re-read, not correctness).
func LoadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	m, gen, err := decodeAll(data)
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	if gen != 0 {
		if recs, _ := readLog(LogPath(path), gen); len(recs) > 0 {
			r := foldRecords(recs)
			m.Entries = spliceScoped(m.Entries, r.scopes, r.entries)
			// Links across a record's scopes: recompute from the recorded
			// identities (dev, ino, nlink), as a full save would have.
			resolveLinkTo(m.Entries)
		}
	}
	return m, nil
}

// resolveLinkTo sets LinkTo as ResolveHardLinks does but copies no hash
// between the entries of a group: in a manifest they may have been
// recorded at different times, and a hash must only ever be trusted with
// the ctime it was recorded with.
func resolveLinkTo(entries []*tree.Entry) {
	eachHardLink(entries, func(e, l *tree.Entry) { e.LinkTo = l.Path })
}

// foldRecords merges log records, in order, into one with the same effect:
// the union of their scopes, and for each path the entry of the last
// record whose scopes cover it. The cost follows the log, so replaying a
// long log onto a large base is one pass over the base, not one per record.
func foldRecords(recs []logRecord) logRecord {
	if len(recs) == 1 {
		return recs[0]
	}
	n := 0
	for _, r := range recs {
		n += len(r.scopes)
	}
	// The records' scopes, gathered once: copying the scopes so far at
	// every record cost records² × scopes (12.7 MiB of the 44 MiB a
	// replica's receiver allocated in the update that folded a 60-record
	// log). The same paths come back record after record (a change and
	// its revert), so each distinct scope is kept once.
	scopes := make([]tree.Scope, 0, n)
	seen := map[tree.Scope]bool{}
	addScopes := func(sc []tree.Scope) {
		for _, s := range sc {
			if !seen[s] {
				seen[s] = true
				scopes = append(scopes, s)
			}
		}
	}
	entries := recs[0].entries
	addScopes(recs[0].scopes)
	for _, r := range recs[1:] {
		set := tree.NewScopeSet(r.scopes)
		kept := make([]*tree.Entry, 0, len(entries)+len(r.entries))
		for _, e := range entries {
			if !set.Covers(e.Path) {
				kept = append(kept, e)
			}
		}
		kept = append(kept, r.entries...)
		sortEntries(kept)
		entries = kept
		addScopes(r.scopes)
	}
	return logRecord{scopes: scopes, entries: entries}
}

// DecodeManifest decodes a base file's bytes (either format version),
// checking its checksums, order and every entry. It does not read a log.
func DecodeManifest(data []byte) (*Manifest, error) {
	m, _, err := decodeAll(data)
	return m, err
}

func decodeAll(data []byte) (*Manifest, uint64, error) {

	if len(data) >= len(manifestMagicV1) && bytes.Equal(data[:len(manifestMagicV1)], manifestMagicV1) {
		m, err := decodeV1(data)
		return m, 0, err
	}
	bf := memBase(data)
	bi, err := readIndex(bf)
	if err != nil {
		return nil, 0, err
	}
	// Blocks decode independently: use the cores.
	parts := make([][]*tree.Entry, bi.blocks.len())
	errs := make([]error, bi.blocks.len())
	workers := min(runtime.GOMAXPROCS(0), 8, bi.blocks.len())
	var wg sync.WaitGroup
	var next int
	var mu sync.Mutex
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= bi.blocks.len() {
					return
				}
				parts[i], errs[i] = decodeBlock(bf, bi.blocks.get(i))
			}
		}()
	}
	wg.Wait()
	m := &Manifest{Entries: make([]*tree.Entry, 0, bi.total)}
	for i, p := range parts {
		if errs[i] != nil {
			return nil, 0, errs[i]
		}
		if len(m.Entries) > 0 && len(p) > 0 && tree.Compare(m.Entries[len(m.Entries)-1].Path, p[0].Path) >= 0 {
			return nil, 0, fmt.Errorf("%w: entry %q out of order", ErrCorruptManifest, p[0].Path)
		}
		m.Entries = append(m.Entries, p...)
	}
	return m, bi.gen, nil
}

// decodeV1 reads the first format: one delta-coded stream and a checksum
// of the whole file.
func decodeV1(data []byte) (*Manifest, error) {
	if len(data) < len(manifestMagicV1)+8 {
		return nil, fmt.Errorf("%w: bad header", ErrCorruptManifest)
	}
	body, sum := data[:len(data)-8], data[len(data)-8:]
	if xxhash.Sum64(body) != binary.BigEndian.Uint64(sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptManifest)
	}
	r := body[len(manifestMagicV1):]
	n, k := binary.Uvarint(r)
	if k <= 0 || n > uint64(len(r)) {
		return nil, fmt.Errorf("%w: bad entry count", ErrCorruptManifest)
	}
	r = r[k:]
	m := &Manifest{Entries: make([]*tree.Entry, 0, n)}
	countDecoded(int(n))
	var prev *tree.Entry
	for i := uint64(0); i < n; i++ {
		e := new(tree.Entry)
		var err error
		r, err = wire.DecodeEntryLocal(r, prev, e)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrCorruptManifest, i, err)
		}
		if prev != nil && tree.Compare(prev.Path, e.Path) >= 0 {
			return nil, fmt.Errorf("%w: entry %q out of order", ErrCorruptManifest, e.Path)
		}
		m.Entries = append(m.Entries, e)
		prev = e
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptManifest, len(r))
	}
	return m, nil
}

// LoadManifestScoped reads only the entries of the manifest at path that
// the scopes cover, decoding the base's blocks that hold them and the log:
// the cost follows the scopes, not the tree. Errors are as LoadManifest's.
func LoadManifestScoped(path string, scopes []tree.Scope) (*Manifest, error) {

	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	defer f.Close()
	var m *Manifest
	var gen uint64
	var hdr [len("GSMANIF\x01")]byte
	if _, err := io.ReadFull(f, hdr[:]); err == nil && bytes.Equal(hdr[:], manifestMagicV1) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load manifest: %w", err)
		}
		m, gen, err = decodeScoped(memBase(data), scopes)
		if err != nil {
			return nil, fmt.Errorf("load manifest %s: %w", path, err)
		}
	} else {
		bf, err := fileBase(f)
		if err == nil {
			m, gen, err = decodeScoped(bf, scopes)
		}
		if err != nil {
			return nil, fmt.Errorf("load manifest %s: %w", path, err)
		}
	}
	if gen != 0 {
		if recs, _ := readLogWithin(LogPath(path), gen, newScopeIndex(scopes)); len(recs) > 0 {
			r := foldRecords(recs)
			set := tree.NewScopeSet(scopes)
			var in []*tree.Entry
			for _, e := range r.entries {
				if set.Covers(e.Path) {
					in = append(in, e)
				}
			}
			m.Entries = spliceScoped(m.Entries, r.scopes, in)
		}
	}
	return m, nil
}

func decodeScoped(bf baseFile, scopes []tree.Scope) (*Manifest, uint64, error) {
	if bf.size >= int64(len(manifestMagicV1)) {
		if hdr, err := bf.readAt(0, int64(len(manifestMagicV1))); err == nil && bytes.Equal(hdr, manifestMagicV1) {
			data, err := bf.readAt(0, bf.size)
			if err != nil {
				return nil, 0, err
			}
			all, err := decodeV1(data)
			if err != nil {
				return nil, 0, err
			}
			set := tree.NewScopeSet(scopes)
			m := &Manifest{total: len(all.Entries)}
			for _, e := range all.Entries {
				if set.Covers(e.Path) {
					m.Entries = append(m.Entries, e)
				}
			}
			return m, 0, nil
		}
	}
	bi, err := readIndex(bf)
	if err != nil {
		return nil, 0, err
	}
	// The scopes in path order: the entries each covers follow its path
	// (a subtree runs on right after its root), so one pass over the blocks
	// that hold them, in order, keeps exactly the covered entries.
	sorted := slices.Clone(scopes)
	slices.SortFunc(sorted, func(a, b tree.Scope) int { return tree.Compare(a.Path, b.Path) })
	need := scopedBlocks(bi, sorted)
	m := &Manifest{total: bi.total}
	var (
		store [2]tree.Entry // entry i decodes into store[i%2], against the other
		paths [2][]byte
		k     int // the first scope not yet behind the entries decoded
	)
	for _, i := range need {
		err := eachBlockEntry(bf, bi.blocks.get(i), &paths, func(i int) *tree.Entry { return &store[i%2] },
			func(_ int, e *tree.Entry) {
				for k < len(sorted) && scopeBehind(sorted[k], e.Path) {
					k++
				}
				if k == len(sorted) || tree.Compare(e.Path, sorted[k].Path) < 0 {
					return // before the next scope: none covers it
				}
				c := new(tree.Entry)
				*c = *e
				c.Path = strings.Clone(e.Path) // e.Path is in paths[i%2]
				m.Entries = append(m.Entries, c)
			})
		if err != nil {
			return nil, 0, err
		}
	}
	return m, bi.gen, nil
}

// scopeBehind reports whether every path that scope sc covers sorts
// before p, and so before every path after it.
func scopeBehind(sc tree.Scope, p string) bool {
	return tree.Compare(p, sc.Path) > 0 && !(sc.Tree && tree.IsWithin(p, sc.Path))
}

// scopedBlocks returns, in order and once each, the blocks of the base that
// hold an entry the scopes (in path order) cover: the block where each
// scope's path would be, and for a subtree the blocks after it that start
// inside the subtree.
func scopedBlocks(bi *baseIndex, scopes []tree.Scope) []int {
	var need []int
	last := -1 // the last block in need
	for _, sc := range scopes {
		i := max(bi.blocks.search(sc.Path), 0)
		if i > last {
			need, last = append(need, i), i
		}
		if !sc.Tree || i+1 >= bi.blocks.len() {
			continue
		}
		bi.blocks.each(i+1, func(j int, first []byte, _ baseBlock) bool {
			if !tree.IsWithin(unsafe.String(unsafe.SliceData(first), len(first)), sc.Path) {
				return false
			}
			if j > last {
				need, last = append(need, j), j
			}
			return true
		})
	}
	return need
}

// spliceScoped returns entries with everything the scopes cover replaced by
// repl (sorted; covered by the scopes).
func spliceScoped(entries []*tree.Entry, scopes []tree.Scope, repl []*tree.Entry) []*tree.Entry {
	set := tree.NewScopeSet(scopes)
	out := make([]*tree.Entry, 0, len(entries)+len(repl))
	i, j := 0, 0
	for i < len(entries) || j < len(repl) {
		switch {
		case i < len(entries) && set.Covers(entries[i].Path):
			i++
		case j >= len(repl) || (i < len(entries) && tree.Compare(entries[i].Path, repl[j].Path) < 0):
			out = append(out, entries[i])
			i++
		default:
			if i < len(entries) && entries[i].Path == repl[j].Path {
				i++
			}
			out = append(out, repl[j])
			j++
		}
	}
	return out
}

// logRecord is one scoped update: within scopes, the tree held entries.
type logRecord struct {
	scopes  []tree.Scope
	entries []*tree.Entry
}

// readLog reads the records of the log at path that apply to base
// generation gen, in order, and the length of the log's valid prefix. It
// stops at the first damaged or torn record.
func readLog(path string, gen uint64) ([]logRecord, int64) {
	return readLogWithin(path, gen, nil)
}

// readLogWithin is readLog for a load that keeps only what the scopes in
// want cover (nil: everything): a record whose scopes share no path with
// them is checked and skipped without decoding its entries, since it
// changes nothing there. A scoped load of a long log then decodes the
// records of its own paths, not the whole log.
//
// For a scoped load it also skips the older records of a path that a newer
// record covers whole (see newestCovering): a path changed by every update
// (a directory of a package, or a change made and undone again and again)
// costs the newest record that covers it, not every record since the fold.
func readLogWithin(path string, gen uint64, want *scopeIndex) ([]logRecord, int64) {
	data, id, err := readLogFile(path)
	if err != nil {
		return nil, 0
	}
	var heads []*recordHead
	off := 0
	for {
		h, n, err := parseLogRecord(data[off:])
		if err != nil || n == 0 {
			break
		}
		if h.gen == gen {
			heads = append(heads, h)
		}
		off += n
	}
	checkedLogs.Store(path, checkedLog{id: id, valid: int64(off)})
	var needed []bool
	if want != nil {
		needed = want.newestCovering(heads)
	}
	var recs []logRecord
	for i, h := range heads {
		if needed != nil && !needed[i] {
			continue
		}
		r, err := h.decode()
		if err != nil {
			if needed != nil {
				// A record that does not decode ends the replay: the
				// records skipped before it were needed after all.
				return readLogForward(heads, want), int64(off)
			}
			break
		}
		recs = append(recs, logRecord{scopes: r.scopes, entries: r.entries})
	}
	return recs, int64(off)
}

// readLogForward decodes, in order, the records that share a path with
// want, up to the first that does not decode.
func readLogForward(heads []*recordHead, want *scopeIndex) []logRecord {
	var recs []logRecord
	for _, h := range heads {
		if !want.meets(h.scopes) {
			continue
		}
		r, err := h.decode()
		if err != nil {
			break
		}
		recs = append(recs, logRecord{scopes: r.scopes, entries: r.entries})
	}
	return recs
}

// logValid returns the length of the valid prefix of the log at path (its
// records whose length and checksum hold), reading no entry: what an
// append needs to know.
//
// A log this process read (a run's scoped load, before its update) is not
// checked again while the file is as it was read (checkedLogs).
func logValid(path string) int64 {
	var st unix.Stat_t
	if unix.Stat(path, &st) == nil {
		if c, ok := checkedLogs.Load(path); ok && c.(checkedLog).id == identOf(&st) {
			return c.(checkedLog).valid
		}
	}
	data, id, err := readLogFile(path)
	if err != nil {
		return 0
	}
	off := 0
	for {
		_, n, err := parseLogRecord(data[off:])
		if err != nil || n == 0 {
			checkedLogs.Store(path, checkedLog{id: id, valid: int64(off)})
			return int64(off)
		}
		off += n
	}
}

// logReads counts the reads of a manifest log that check every record's
// length and checksum (O(log bytes)): a test reads it.
var logReads atomic.Int64

// checkedLog is what a read of a manifest log found: the file as it was
// read, and the length of its valid prefix.
type checkedLog struct {
	id    fileIdent
	valid int64
}

// checkedLogs remembers, per log path, the last read of it by this
// process; UpdateManifest forgets a log it writes. The writers of a state
// dir hold its lock, and a log only grows by appends (a fold removes it),
// so a log whose identity, size and times are as read holds what was
// read.
var checkedLogs sync.Map

// fileIdent identifies a file's content as far as its inode tells.
type fileIdent struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

func identOf(st *unix.Stat_t) fileIdent {
	return fileIdent{dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

// readLogFile reads a log and identifies the file read.
func readLogFile(path string) ([]byte, fileIdent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileIdent{}, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fileIdent{}, err
	}
	// Read at most the size fstat gave, in one buffer of that size (a log
	// appended to meanwhile is read up to then; ReadAll's doubling cost a
	// replica's short-lived receiver twice the log in fresh pages).
	data := make([]byte, max(st.Size, 0))
	n, err := io.ReadFull(f, data)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, fileIdent{}, err
	}
	data = data[:n]
	logReads.Add(1)
	return data, identOf(&st), nil
}

// scopeIndex answers whether a log record's scopes share a path with a
// load's scopes.
type scopeIndex struct {
	scopes []tree.Scope
	set    *tree.ScopeSet
	paths  []string // the scopes' paths in tree.Compare order
}

func newScopeIndex(scopes []tree.Scope) *scopeIndex {
	x := &scopeIndex{scopes: scopes, set: tree.NewScopeSet(scopes)}
	for _, sc := range scopes {
		x.paths = append(x.paths, sc.Path)
	}
	slices.SortFunc(x.paths, tree.Compare)
	return x
}

// meets reports whether some path is covered both by one of scopes and by
// the index's scopes: one scope's path lies within the other (a tree).
func (x *scopeIndex) meets(scopes []tree.Scope) bool {
	for _, sc := range scopes {
		if x.set.Covers(sc.Path) {
			return true
		}
		if sc.Tree {
			// The index's paths within sc.Path follow it in tree.Compare
			// order: the first one at or after it tells.
			i := sort.Search(len(x.paths), func(i int) bool { return tree.Compare(x.paths[i], sc.Path) >= 0 })
			if i < len(x.paths) && tree.IsWithin(x.paths[i], sc.Path) {
				return true
			}
		}
	}
	return false
}

// newestCovering marks the records (heads, oldest first) a load of the
// index's scopes must replay: going from the newest back, a record that
// shares a path with a scope no newer record covered whole; a scope is
// covered whole by a record that covers its path (and, for a tree scope,
// holds a tree scope at or above it), and no older record changes what
// the load sees there. It stops at the first record once every scope is
// covered.
func (x *scopeIndex) newestCovering(heads []*recordHead) []bool {
	needed := make([]bool, len(heads))
	open := slices.Clone(x.scopes)
	for i := len(heads) - 1; i >= 0 && len(open) > 0; i-- {
		h := heads[i]
		rset := tree.NewScopeSet(h.scopes)
		var rpaths []string // the record's scope paths in tree.Compare order, on first need
		kept := open[:0]
		for _, w := range open {
			meets := rset.Covers(w.Path)
			if !meets && w.Tree {
				if rpaths == nil {
					rpaths = make([]string, len(h.scopes))
					for j, sc := range h.scopes {
						rpaths[j] = sc.Path
					}
					slices.SortFunc(rpaths, tree.Compare)
				}
				j := sort.Search(len(rpaths), func(j int) bool { return tree.Compare(rpaths[j], w.Path) >= 0 })
				meets = j < len(rpaths) && tree.IsWithin(rpaths[j], w.Path)
			}
			if !meets {
				kept = append(kept, w)
				continue
			}
			needed[i] = true
			if w.Tree && !rset.CoversTree(w.Path) {
				kept = append(kept, w) // older records may hold parts of it
			}
		}
		open = kept
	}
	return needed
}

type decodedRecord struct {
	gen     uint64
	scopes  []tree.Scope
	entries []*tree.Entry
}

// recordHead is a log record whose checksum, generation and scopes were
// read; its entries are decoded on demand.
type recordHead struct {
	gen    uint64
	scopes []tree.Scope
	rest   []byte // the entry count and the entries
}

// decodeLogRecord decodes the record at the start of data and returns its
// length; (nil, 0, nil) at the end of data.
func decodeLogRecord(data []byte) (*decodedRecord, int, error) {
	h, n, err := parseLogRecord(data)
	if err != nil || n == 0 {
		return nil, n, err
	}
	r, err := h.decode()
	if err != nil {
		return nil, 0, err
	}
	return r, n, nil
}

func badRecord(what string) error {
	return fmt.Errorf("%w: log record: %s", ErrCorruptManifest, what)
}

// parseLogRecord checks the record at the start of data and reads its
// generation and scopes; (nil, 0, nil) at the end of data.
func parseLogRecord(data []byte) (*recordHead, int, error) {
	if len(data) == 0 {
		return nil, 0, nil
	}
	if len(data) < 12 {
		return nil, 0, fmt.Errorf("%w: torn log record", ErrCorruptManifest)
	}
	n := binary.BigEndian.Uint32(data[:4])
	if n > maxLogRecord || uint64(n) > uint64(len(data)-12) {
		return nil, 0, fmt.Errorf("%w: torn log record", ErrCorruptManifest)
	}
	p := data[12 : 12+n]
	if xxhash.Sum64(p) != binary.BigEndian.Uint64(data[4:12]) {
		return nil, 0, fmt.Errorf("%w: log record checksum mismatch", ErrCorruptManifest)
	}
	if len(p) < 8 {
		return nil, 0, badRecord("short")
	}
	h := &recordHead{gen: binary.BigEndian.Uint64(p[:8])}
	p = p[8:]
	ns, k := binary.Uvarint(p)
	if k <= 0 || ns > uint64(len(p)) {
		return nil, 0, badRecord("scope count")
	}
	p = p[k:]
	h.scopes = make([]tree.Scope, 0, ns) // ns ≤ len(p): bounded by the record
	for range ns {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > tree.MaxPathLen || l+1 > uint64(len(p)-k) {
			return nil, 0, badRecord("scope")
		}
		sc := tree.Scope{Path: string(p[k : k+int(l)]), Tree: p[k+int(l)] == 1}
		if sc.Path != tree.Root {
			if err := tree.ValidatePath(sc.Path); err != nil {
				return nil, 0, badRecord(err.Error())
			}
		}
		h.scopes = append(h.scopes, sc)
		p = p[k+int(l)+1:]
	}
	h.rest = p
	return h, 12 + int(n), nil
}

// decode decodes the record's entries.
func (h *recordHead) decode() (*decodedRecord, error) {
	r := &decodedRecord{gen: h.gen, scopes: h.scopes}
	p := h.rest
	ne, k := binary.Uvarint(p)
	if k <= 0 || ne > uint64(len(p)) {
		return nil, badRecord("entry count")
	}
	p = p[k:]
	set := tree.NewScopeSet(r.scopes)
	var prev *tree.Entry
	for range ne {
		e := new(tree.Entry)
		var err error
		p, err = wire.DecodeEntryLocal(p, prev, e)
		if err != nil {
			return nil, badRecord(err.Error())
		}
		countDecoded(1)
		if prev != nil && tree.Compare(prev.Path, e.Path) >= 0 {
			return nil, badRecord("entries out of order")
		}
		if !set.Covers(e.Path) {
			return nil, badRecord("entry outside its scopes")
		}
		r.entries = append(r.entries, e)
		prev = e
	}
	if len(p) != 0 {
		return nil, badRecord("trailing bytes")
	}
	return r, nil
}

func encodeLogRecord(gen uint64, scopes []tree.Scope, entries []*tree.Entry) ([]byte, error) {
	p := binary.BigEndian.AppendUint64(make([]byte, 12, 12+64*len(entries)), gen)
	p = binary.AppendUvarint(p, uint64(len(scopes)))
	for _, s := range scopes {
		p = binary.AppendUvarint(p, uint64(len(s.Path)))
		p = append(p, s.Path...)
		if s.Tree {
			p = append(p, 1)
		} else {
			p = append(p, 0)
		}
	}
	p = binary.AppendUvarint(p, uint64(len(entries)))
	var prev *tree.Entry
	for _, e := range entries {
		var err error
		if p, err = wire.AppendEntryLocal(p, prev, e); err != nil {
			return nil, err
		}
		prev = e
	}
	if len(p)-12 > maxLogRecord {
		return nil, errors.New("log record too large")
	}
	binary.BigEndian.PutUint32(p[:4], uint32(len(p)-12))
	binary.BigEndian.PutUint64(p[4:12], xxhash.Sum64(p[12:]))
	return p, nil
}

// UpdateManifest records that, within scopes, the tree at the manifest's
// path now holds exactly entries (sorted, all covered by the scopes),
// leaving what the scopes do not cover as recorded. It appends a record to
// the log, in time proportional to the entries, and folds the log into a
// new base (Save) once the log outgrows its share of the base (compactAt:
// a quarter on average, a point of the base's own choosing). Without a
// base to append to, it writes one from entries. The caller serializes
// writers (the state dir's lock).
func UpdateManifest(path string, scopes []tree.Scope, entries []*tree.Entry) error {
	fail := func(err error) error { return fmt.Errorf("update manifest: %w", err) }
	gen, baseSize, err := baseGeneration(path)
	if err != nil {
		// No version-2 base to append to: write one, keeping what an
		// older base recorded outside the scopes.
		m, lerr := LoadManifest(path)
		if lerr != nil {
			m = &Manifest{}
		}
		m.Entries = spliceScoped(m.Entries, scopes, entries)
		return m.Save(path)
	}
	lp := LogPath(path)
	valid := logValid(lp)
	defer checkedLogs.Delete(lp)
	rec, err := encodeLogRecord(gen, scopes, entries)
	if err != nil {
		return fail(err)
	}
	if valid+int64(len(rec)) > compactAt(gen, baseSize) {
		// Compact: fold the base, the log and this update into a new base.
		err := foldLog(path, scopes, entries)
		if errors.Is(err, errFoldRead) {
			// A damaged base: start again from what this update knows (the
			// manifest is a cache; what it forgets is read again).
			return (&Manifest{Entries: entries}).Save(path)
		}
		if err != nil {
			return fail(err)
		}
		return nil
	}
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	// Cut a torn tail (an append that was interrupted) before appending.
	if err := f.Truncate(valid); err != nil {
		return fail(err)
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		return fail(err)
	}
	if _, err := f.Write(rec); err != nil {
		f.Truncate(valid)
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if valid == 0 {
		syncDir(filepath.Dir(path))
	}
	return nil
}

// blockWritten, when set, is called by writeBase after each block it
// writes, with the count so far (tests: what a base's writer holds).
var blockWritten func(blocks int)

// errFoldRead marks a fold that could not read the base or its log.
var errFoldRead = errors.New("reading the manifest to fold")

// foldLog writes a new base at path that holds the base and its log with
// an update (within scopes, now exactly entries) spliced in, and removes
// the log. It streams: the old base is decoded a block at a time
// (eachManifestEntry) into the new one's writer, so the heap holds a block
// and the folded log, not the manifest (LoadManifest's list was about half
// of a receiver's peak in the update that folded). The old base stays in
// place until the new one is whole (an atomic rename), and its log is
// removed only after: a kill at any point leaves the old base with its log,
// or the new base with an old log that names another generation and is
// ignored. A base or log that cannot be read fails with errFoldRead before
// anything is renamed.
func foldLog(path string, scopes []tree.Scope, entries []*tree.Entry) error {
	set := tree.NewScopeSet(scopes)
	errStop := errors.New("stopped")
	var readErr error
	seq := func(yield func(*tree.Entry) bool) {
		j := 0
		readErr = eachManifestEntry(path, func(e *tree.Entry) error {
			if set.Covers(e.Path) {
				return nil // the update's entries replace what its scopes cover
			}
			for ; j < len(entries) && tree.Compare(entries[j].Path, e.Path) < 0; j++ {
				if !yield(entries[j]) {
					return errStop
				}
			}
			if !yield(e) {
				return errStop
			}
			return nil
		})
		if readErr != nil {
			return
		}
		for ; j < len(entries); j++ {
			if !yield(entries[j]) {
				return
			}
		}
	}
	gen := newGeneration()
	err := writeFileAtomicFunc(path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 256<<10)
		if err := writeBase(bw, seq, gen); err != nil {
			return err
		}
		if readErr != nil {
			return readErr // the new base would miss entries: not renamed
		}
		return bw.Flush()
	})
	// (fn ran to its end before writeFileAtomicFunc returned: readErr is set.)
	if readErr != nil && !errors.Is(readErr, errStop) {
		return fmt.Errorf("%w: %w", errFoldRead, readErr)
	}
	if err != nil {
		return err
	}
	checkedLogs.Delete(LogPath(path))
	if err := os.Remove(LogPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// baseGeneration reads the generation and size of the base at path; an
// error when there is none or it is not a version-2 base.
func baseGeneration(path string) (uint64, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var hdr [manifestHeader]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return 0, 0, err
	}
	if !bytes.Equal(hdr[:len(manifestMagic)], manifestMagic) {
		return 0, 0, fmt.Errorf("%w: not a version-2 base", ErrCorruptManifest)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	return binary.BigEndian.Uint64(hdr[8:]), st.Size(), nil
}
