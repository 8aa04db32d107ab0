package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/goldsync/goldsync/imaging/tree"
)

// Type is a frame's message type, the first byte of every frame.
type Type uint8

// The message types. Numbers are part of the protocol: never reuse one.
const (
	TypeOpen         Type = 1  // client: which tree to serve
	TypeOpened       Type = 2  // server: the tree is open
	TypeScanRequest  Type = 3  // client: list the tree
	TypeEntry        Type = 4  // server: one listed entry
	TypeScanEnd      Type = 5  // server: the listing is complete
	TypeCancel       Type = 6  // client: stop the running scan
	TypeFetchRequest Type = 7  // client: send one file's content
	TypeFileData     Type = 8  // server: literal bytes of a file
	TypeFileReuse    Type = 9  // server: a range equal to the basis
	TypeFileEnd      Type = 10 // server: a file is complete
	TypeFileError    Type = 11 // server: a file could not be sent
	TypeError        Type = 12 // either: fatal error, the session ends
	TypeStats        Type = 13 // server: counters, before Done
	TypeAck          Type = 14 // client: confirm a token; server: echo it
	TypePing         Type = 15 // either: keepalive, ignored
	TypeDone         Type = 16 // either: goodbye
	typeMax          Type = 17
)

var typeNames = [typeMax]string{
	TypeOpen: "open", TypeOpened: "opened", TypeScanRequest: "scan request",
	TypeEntry: "entry", TypeScanEnd: "scan end", TypeCancel: "cancel",
	TypeFetchRequest: "fetch request", TypeFileData: "file data",
	TypeFileReuse: "file reuse", TypeFileEnd: "file end", TypeFileError: "file error",
	TypeError: "error", TypeStats: "stats", TypeAck: "ack", TypePing: "ping", TypeDone: "done",
}

// String returns the message type's name, as used in errors.
func (t Type) String() string {
	if t > 0 && t < typeMax {
		return typeNames[t]
	}
	return fmt.Sprintf("type %#02x", uint8(t))
}

// Limits on strings, counts and blocks, enforced by both the encoder and the
// decoder.
const (
	// MaxData is the largest FileData payload; larger writes are split.
	MaxData = 256 << 10
	// MaxString bounds roots, tokens, exclude patterns and problems.
	MaxString = 4096
	// MaxExcludes bounds ScanRequest.Excludes.
	MaxExcludes = 65536
	// MaxScopes bounds ScanEnd.Scope.
	MaxScopes = 1 << 20
	// MaxScopeBytes bounds the total length of a ScanEnd's scope paths
	// once decoded (they travel prefix-compressed: 2^20 scopes of 4 KiB
	// would otherwise decode to 4 GiB from a few MiB).
	MaxScopeBytes = 64 << 20
	// MaxBlocks bounds Basis.Blocks: 2^22 blocks of 16 KiB cover 64 GiB.
	MaxBlocks = 1 << 22
	// MaxBlockSize bounds Basis.BlockSize.
	MaxBlockSize = 1 << 30
	// MaxErrorMsg bounds Error.Msg; longer messages are cut when encoded.
	MaxErrorMsg = 64 << 10
	// MaxFileErrorMsg bounds FileError.Msg; longer messages are cut.
	MaxFileErrorMsg = 4096
	// MaxOp bounds FileError.Op.
	MaxOp = 64
	// MaxCounters bounds Stats.Counters, MaxCounterName each name.
	MaxCounters    = 256
	MaxCounterName = 64
	// MaxSoftware bounds Hello.Software.
	MaxSoftware = 256
	// MaxCount bounds the entry and problem counts of a ScanEnd.
	MaxCount = 1 << 40
)

// limits is the maximum payload length of each frame type. Every limit
// leaves room for the fields around the bounded parts.
var limits = [typeMax]int{
	TypeOpen:         MaxString + 32,
	TypeOpened:       0,
	TypeScanRequest:  1 << 20,
	TypeEntry:        2 << 20,
	TypeScanEnd:      32 << 20,
	TypeCancel:       0,
	TypeFetchRequest: tree.MaxPathLen + 128 + 8*MaxBlocks,
	TypeFileData:     MaxData + 32,
	TypeFileReuse:    32,
	TypeFileEnd:      48,
	TypeFileError:    MaxOp + MaxFileErrorMsg + 32,
	TypeError:        MaxErrorMsg + 8,
	TypeStats:        MaxCounters * (MaxCounterName + 16),
	TypeAck:          MaxString + 8,
	TypePing:         0,
	TypeDone:         0,
}

// Limit returns the maximum payload length of frames of type t, or -1 if t
// is not a known type.
func Limit(t Type) int {
	if t == 0 || t >= typeMax {
		return -1
	}
	return limits[t]
}

// DecodeError describes malformed input: which message and which field.
type DecodeError struct {
	Msg   string // message name ("entry"), or "frame" for framing errors
	Field string // field name; empty when the message as a whole is bad
	Err   error
}

// Error names the message, the field and what is wrong.
func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("decode %s: %v", e.Msg, e.Err)
	}
	return fmt.Sprintf("decode %s: %s: %v", e.Msg, e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError says a message could not be encoded: a field is over its limit
// or inconsistent.
type EncodeError struct {
	Msg   string
	Field string
	Err   error
}

// Error names the message, the field and what is wrong.
func (e *EncodeError) Error() string {
	return fmt.Sprintf("encode %s: %s: %v", e.Msg, e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *EncodeError) Unwrap() error { return e.Err }

func encErr(msg, field, format string, a ...any) error {
	return &EncodeError{Msg: msg, Field: field, Err: fmt.Errorf(format, a...)}
}

// payload reads the fields of one message with a sticky error. Every read
// checks its declared length against what is left, so nothing is allocated
// beyond the frame already in memory.
type payload struct {
	msg string
	b   []byte
	err error
}

func (p *payload) fail(field, format string, a ...any) {
	if p.err == nil {
		p.err = &DecodeError{Msg: p.msg, Field: field, Err: fmt.Errorf(format, a...)}
	}
}

func (p *payload) uvarint(field string) uint64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		if n == 0 {
			p.fail(field, "truncated")
		} else {
			p.fail(field, "varint overflows 64 bits")
		}
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *payload) varint(field string) int64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Varint(p.b)
	if n <= 0 {
		if n == 0 {
			p.fail(field, "truncated")
		} else {
			p.fail(field, "varint overflows 64 bits")
		}
		return 0
	}
	p.b = p.b[n:]
	return v
}

// max reads a uvarint that must not exceed limit.
func (p *payload) max(field string, limit uint64) uint64 {
	v := p.uvarint(field)
	if v > limit {
		p.fail(field, "%d exceeds limit %d", v, limit)
		return 0
	}
	return v
}

func (p *payload) u32(field string) uint32 { return uint32(p.max(field, math.MaxUint32)) }

func (p *payload) int64(field string) int64 { return int64(p.max(field, math.MaxInt64)) }

func (p *payload) u8(field string) uint8 {
	if p.err != nil {
		return 0
	}
	if len(p.b) < 1 {
		p.fail(field, "truncated")
		return 0
	}
	v := p.b[0]
	p.b = p.b[1:]
	return v
}

func (p *payload) u64(field string) uint64 {
	if p.err != nil {
		return 0
	}
	if len(p.b) < 8 {
		p.fail(field, "truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(p.b)
	p.b = p.b[8:]
	return v
}

// bytes reads a length-prefixed byte string of at most limit bytes. The
// result aliases the payload.
func (p *payload) bytes(field string, limit int) []byte {
	n := p.max(field, uint64(limit))
	if p.err != nil {
		return nil
	}
	if n > uint64(len(p.b)) {
		p.fail(field, "length %d exceeds the %d bytes left", n, len(p.b))
		return nil
	}
	v := p.b[:n:n]
	p.b = p.b[n:]
	return v
}

// str reads a length-prefixed string of at most limit bytes without NUL.
func (p *payload) str(field string, limit int) string {
	b := p.bytes(field, limit)
	if p.err != nil {
		return ""
	}
	for _, c := range b {
		if c == 0 {
			p.fail(field, "contains NUL")
			return ""
		}
	}
	return string(b)
}

// count reads an element count of at most limit, each element taking at
// least minSize bytes, so a count cannot promise more than the frame holds.
func (p *payload) count(field string, limit int, minSize int) int {
	n := p.max(field, uint64(limit))
	if p.err != nil {
		return 0
	}
	if n*uint64(minSize) > uint64(len(p.b)) {
		p.fail(field, "count %d does not fit in the %d bytes left", n, len(p.b))
		return 0
	}
	return int(n)
}

func (p *payload) bool(field string) bool {
	switch v := p.u8(field); v {
	case 0:
		return false
	case 1:
		return true
	default:
		p.fail(field, "bad boolean %d", v)
		return false
	}
}

// finish returns the sticky error, or an error if bytes are left over.
func (p *payload) finish() error {
	if p.err == nil && len(p.b) > 0 {
		p.err = &DecodeError{Msg: p.msg, Err: fmt.Errorf("%d trailing bytes", len(p.b))}
	}
	return p.err
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// checkString validates a string before it is encoded, with the same rules
// the decoder applies.
func checkString(msg, field, s string, limit int) error {
	if len(s) > limit {
		return encErr(msg, field, "%d bytes exceeds limit %d", len(s), limit)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return encErr(msg, field, "contains NUL")
		}
	}
	return nil
}

// cut shortens s to at most n bytes, for messages that must be sent even
// when long.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// An Encoder writes frames to a buffered writer. Call Flush to push them
// out. It keeps the previous entry for prefix compression, so one Encoder
// must write one stream. An Encoder is not safe for concurrent use.
type Encoder struct {
	w    *bufio.Writer
	buf  []byte
	prev tree.Entry // previous entry of the current scan
	have bool       // prev is set
	hdr  [1 + binary.MaxVarintLen64]byte
}

// NewEncoder returns an Encoder writing to w through a 64 KiB buffer.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: bufio.NewWriterSize(w, 64<<10)}
}

// Flush writes buffered frames to the underlying writer.
func (e *Encoder) Flush() error { return e.w.Flush() }

// Buffered returns the number of bytes waiting for Flush.
func (e *Encoder) Buffered() int { return e.w.Buffered() }

// Encode writes one message as a frame. Entry messages are compressed
// against the previous Entry; a ScanEnd starts afresh.
func (e *Encoder) Encode(m Message) error {
	var err error
	e.buf, err = m.appendPayload(e.buf[:0], e)
	if err != nil {
		return err
	}
	t := m.Type()
	if len(e.buf) > limits[t] {
		return encErr(t.String(), "length", "%d bytes exceeds limit %d", len(e.buf), limits[t])
	}
	if err := e.header(t, len(e.buf)); err != nil {
		return err
	}
	if _, err := e.w.Write(e.buf); err != nil {
		return err
	}
	switch m := m.(type) {
	case *Entry:
		e.prev = shallowKey(m.Entry)
		e.have = true
	case *ScanEnd:
		e.ResetEntries()
	}
	if cap(e.buf) > 4<<20 {
		e.buf = nil
	}
	return nil
}

// ResetEntries forgets the previous entry: the next Entry is encoded
// without prefix compression. Encode calls it after a ScanEnd.
func (e *Encoder) ResetEntries() { e.prev, e.have = tree.Entry{}, false }

func (e *Encoder) header(t Type, n int) error {
	// In the Encoder: a local array escapes through Write, an allocation
	// a frame (one an entry of a scan; issue #14).
	e.hdr[0] = byte(t)
	k := binary.PutUvarint(e.hdr[1:], uint64(n))
	_, err := e.w.Write(e.hdr[:1+k])
	return err
}

// WriteFileData writes a FileData frame without copying p into a message
// first. len(p) must not exceed MaxData.
func (e *Encoder) WriteFileData(id uint64, off int64, p []byte) error {
	if len(p) > MaxData {
		return encErr("file data", "data", "%d bytes exceeds limit %d", len(p), MaxData)
	}
	if off < 0 {
		return encErr("file data", "offset", "negative offset %d", off)
	}
	var f [2 * binary.MaxVarintLen64]byte
	k := binary.PutUvarint(f[:], id)
	k += binary.PutUvarint(f[k:], uint64(off))
	if err := e.header(TypeFileData, k+len(p)); err != nil {
		return err
	}
	if _, err := e.w.Write(f[:k]); err != nil {
		return err
	}
	_, err := e.w.Write(p)
	return err
}

// A Decoder reads frames from a buffered reader and decodes them, enforcing
// every limit. It keeps the previous entry for prefix decompression, so one
// Decoder must read one stream. A Decoder is not safe for concurrent use.
type Decoder struct {
	r    *bufio.Reader
	buf  []byte
	prev tree.Entry
	have bool
	// lent, when set, holds entries given back (LendEntries); msg is then
	// the Entry message Next returns each time.
	lent *tree.EntryPool
	msg  Entry
}

// NewDecoder returns a Decoder reading from r through a 64 KiB buffer.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10)}
}

// LendEntries makes Next decode entries into ones taken from pool (what
// the caller put there once it no longer looked at them) and return the
// same *Entry message each time, valid until the next call (its Entry is
// the caller's until given back). It saves a receiver two allocations an
// entry (issue #14). Call it before the first Next; pool may be shared by
// several decoders.
func (d *Decoder) LendEntries(pool *tree.EntryPool) { d.lent = pool }

// Buffered returns the number of bytes read from the underlying reader and
// not yet decoded.
func (d *Decoder) Buffered() int { return d.r.Buffered() }

// chunk is how much of a frame is read before the buffer grows further, so
// a peer that declares a large frame and sends little costs little.
const chunk = 64 << 10

// readFrame reads one frame's type and payload. The payload aliases the
// decoder's buffer until the next call. A stream that ends cleanly between
// frames returns io.EOF.
func (d *Decoder) readFrame() (Type, []byte, error) {
	b, err := d.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	t := Type(b)
	limit := Limit(t)
	if limit < 0 {
		return 0, nil, &DecodeError{Msg: "frame", Field: "type", Err: fmt.Errorf("unknown message type %#02x", b)}
	}
	n, err := binary.ReadUvarint(d.r)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, &DecodeError{Msg: t.String(), Field: "length", Err: err}
	}
	if n > uint64(limit) {
		return 0, nil, &DecodeError{Msg: t.String(), Field: "length", Err: fmt.Errorf("%d bytes exceeds limit %d", n, limit)}
	}
	size := int(n)
	if cap(d.buf) > 4<<20 && size < chunk {
		d.buf = nil // drop a big buffer once it is no longer needed
	}
	d.buf = d.buf[:0]
	for len(d.buf) < size {
		// Grow at most by what is already read (or one chunk), so memory
		// follows the bytes that actually arrive.
		step := min(size-len(d.buf), max(len(d.buf), chunk))
		d.buf = slices.Grow(d.buf, step)
		start := len(d.buf)
		d.buf = d.buf[:start+step]
		if _, err := io.ReadFull(d.r, d.buf[start:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, &DecodeError{Msg: t.String(), Field: "payload", Err: err}
		}
	}
	return t, d.buf, nil
}

// Next reads and decodes the next message. At a clean end of stream between
// frames it returns io.EOF; any other failure is a *DecodeError or a read
// error. A FileData's Data aliases the decoder's buffer and is valid only
// until the next call.
func (d *Decoder) Next() (Message, error) {
	t, b, err := d.readFrame()
	if err != nil {
		return nil, err
	}
	p := &payload{msg: t.String(), b: b}
	var m Message
	switch t {
	case TypeEntry:
		var e *tree.Entry
		if d.lent != nil {
			e = d.lent.Get()
		}
		if e == nil {
			e = new(tree.Entry)
		}
		var prev *tree.Entry
		if d.have {
			prev = &d.prev
		}
		// The last entry passed Validate here: the prefix a path shares
		// with it is not checked again.
		rest, err := decodeEntry(b, prev, e, false, nil, d.have)
		if err != nil {
			return nil, err
		}
		if len(rest) > 0 {
			return nil, &DecodeError{Msg: "entry", Err: fmt.Errorf("%d trailing bytes", len(rest))}
		}
		d.prev = shallowKey(e)
		d.have = true
		if d.lent != nil {
			d.msg.Entry = e
			return &d.msg, nil
		}
		return &Entry{Entry: e}, nil
	case TypeOpen:
		m = decodeOpen(p)
	case TypeOpened:
		m = &Opened{}
	case TypeScanRequest:
		m = decodeScanRequest(p)
	case TypeScanEnd:
		m = decodeScanEnd(p)
		d.ResetEntries()
	case TypeCancel:
		m = &Cancel{}
	case TypeFetchRequest:
		m = decodeFetchRequest(p)
	case TypeFileData:
		m = &FileData{ID: p.uvarint("id"), Off: p.int64("offset"), Data: p.b}
		p.b = nil
	case TypeFileReuse:
		m = &FileReuse{ID: p.uvarint("id"), Off: p.int64("offset"), N: p.int64("length")}
	case TypeFileEnd:
		m = decodeFileEnd(p)
	case TypeFileError:
		m = decodeFileError(p)
	case TypeError:
		m = &Error{Msg: string(p.bytes("message", MaxErrorMsg))}
	case TypeStats:
		m = decodeStats(p)
	case TypeAck:
		m = &Ack{Token: p.str("token", MaxString)}
	case TypePing:
		m = &Ping{}
	case TypeDone:
		m = &Done{}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return m, nil
}

// ResetEntries forgets the previous entry, mirroring Encoder.ResetEntries.
func (d *Decoder) ResetEntries() { d.prev, d.have = tree.Entry{}, false }

// shallowKey keeps the fields entry compression refers to. Strings are
// immutable and Xattrs is treated as read-only, so nothing is copied.
func shallowKey(e *tree.Entry) tree.Entry {
	return tree.Entry{Path: e.Path, Mode: e.Mode, UID: e.UID, GID: e.GID, Mtime: e.Mtime, Xattrs: e.Xattrs}
}
