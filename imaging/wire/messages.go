package wire

import (
	"encoding/binary"

	"github.com/goldsync/goldsync/imaging/tree"
)

// Message is one protocol message. The set is closed: the types below are
// all there is.
type Message interface {
	// Type returns the frame type the message travels as.
	Type() Type
	appendPayload(dst []byte, e *Encoder) ([]byte, error)
}

// OpenFlags qualify an Open.
type OpenFlags uint64

const (
	// OpenFetchOnly marks an extra stream of a session: it serves fetches
	// only, never a scan.
	OpenFetchOnly OpenFlags = 1 << iota
	openFlagsAll            = OpenFetchOnly<<1 - 1
)

// Open is the client's first message after the handshake: which tree on
// the sender's side to serve.
type Open struct {
	Root  string // the sender's path, as given on the command line
	Flags OpenFlags
}

// Opened is the server's answer to Open once the tree is ready.
type Opened struct{}

// ScanRequest asks the server to list its tree.
type ScanRequest struct {
	Excludes []string // at most MaxExcludes, each at most MaxString bytes
	Since    string   // journal token, at most MaxString bytes
	Hash     bool
}

// Entry carries one listed entry. It is compressed against the previous
// Entry of the same scan.
type Entry struct {
	Entry *tree.Entry
}

// ScanEnd ends a scan's entries.
type ScanEnd struct {
	Scope    []tree.Scope // at most MaxScopes
	Problems int          // entries sent with a Problem
	Entries  int          // entries sent
	Token    string       // journal token for a later ScanRequest.Since
	// Err, when set, says the scan failed (or was canceled) and the entries
	// sent are incomplete; the session goes on.
	Err string
}

// Cancel asks the server to stop the running scan. It answers with a
// ScanEnd carrying Err.
type Cancel struct{}

// Basis is what the receiver already has of a requested file.
type Basis struct {
	Size      int64
	Hash      uint64
	Hashed    bool
	BlockSize int      // at most MaxBlockSize; set when Blocks is
	Blocks    []uint64 // xxhash64 per block; at most MaxBlocks and ceil(Size/BlockSize)
}

// FetchRequest asks for one regular file's content. IDs increase strictly
// within a stream.
type FetchRequest struct {
	ID     uint64
	Path   string
	Size   int64 // size as scanned: the server never sends beyond it
	Mtime  int64 // mtime as scanned
	Hash   uint64
	Hashed bool
	Basis  *Basis
}

// FileData says the bytes at [Off, Off+len(Data)) of request ID are Data.
type FileData struct {
	ID   uint64
	Off  int64
	Data []byte // at most MaxData bytes
}

// FileReuse says the bytes at [Off, Off+N) of request ID equal the basis.
type FileReuse struct {
	ID  uint64
	Off int64
	N   int64
}

// FileEnd completes request ID.
type FileEnd struct {
	ID        uint64
	Size      int64
	Hash      uint64
	Unchanged bool // the basis hash matched; nothing was sent
	Mtime     int64
}

// ErrKind classifies a FileError so the receiver can rebuild a sentinel.
type ErrKind uint8

// The error kinds.
const (
	KindOther      ErrKind = iota
	KindChanged            // imaging.ErrChanged
	KindNotExist           // fs.ErrNotExist
	KindPermission         // fs.ErrPermission
	kindMax
)

// FileError completes request ID without content: the source could not
// send it. The session goes on.
type FileError struct {
	ID   uint64
	Kind ErrKind
	Op   string // at most MaxOp bytes
	Msg  string // at most MaxFileErrorMsg bytes; cut when longer
}

// Error is fatal: the sender of it ends the session.
type Error struct {
	Msg string // at most MaxErrorMsg bytes; cut when longer
}

// Stats carries the server's counters, sent before its Done.
type Stats struct {
	Counters []Counter // at most MaxCounters
}

// Counter is one named statistic.
type Counter struct {
	Name  string // at most MaxCounterName bytes
	Value int64
}

// Ack confirms a token: the client sends it once it has applied a push up
// to Token, and the server echoes it once recorded.
type Ack struct {
	Token string
}

// Ping keeps an idle stream alive; it is ignored.
type Ping struct{}

// Done says goodbye: the client sends it to end the session, the server
// answers with Stats and Done.
type Done struct{}

// Type implements Message.
func (*Open) Type() Type { return TypeOpen }

// Type implements Message.
func (*Opened) Type() Type { return TypeOpened }

// Type implements Message.
func (*ScanRequest) Type() Type { return TypeScanRequest }

// Type implements Message.
func (*Entry) Type() Type { return TypeEntry }

// Type implements Message.
func (*ScanEnd) Type() Type { return TypeScanEnd }

// Type implements Message.
func (*Cancel) Type() Type { return TypeCancel }

// Type implements Message.
func (*FetchRequest) Type() Type { return TypeFetchRequest }

// Type implements Message.
func (*FileData) Type() Type { return TypeFileData }

// Type implements Message.
func (*FileReuse) Type() Type { return TypeFileReuse }

// Type implements Message.
func (*FileEnd) Type() Type { return TypeFileEnd }

// Type implements Message.
func (*FileError) Type() Type { return TypeFileError }

// Type implements Message.
func (*Error) Type() Type { return TypeError }

// Type implements Message.
func (*Stats) Type() Type { return TypeStats }

// Type implements Message.
func (*Ack) Type() Type { return TypeAck }

// Type implements Message.
func (*Ping) Type() Type { return TypePing }

// Type implements Message.
func (*Done) Type() Type { return TypeDone }

func (m *Open) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	if m.Root == "" {
		return b, encErr("open", "root", "empty")
	}
	if err := checkString("open", "root", m.Root, MaxString); err != nil {
		return b, err
	}
	if m.Flags&^openFlagsAll != 0 {
		return b, encErr("open", "flags", "unknown flags %#x", uint64(m.Flags))
	}
	b = appendString(b, m.Root)
	return binary.AppendUvarint(b, uint64(m.Flags)), nil
}

func decodeOpen(p *payload) *Open {
	m := &Open{Root: p.str("root", MaxString)}
	if p.err == nil && m.Root == "" {
		p.fail("root", "empty")
	}
	m.Flags = OpenFlags(p.uvarint("flags"))
	if p.err == nil && m.Flags&^openFlagsAll != 0 {
		p.fail("flags", "unknown flags %#x", uint64(m.Flags&^openFlagsAll))
	}
	return m
}

func (m *Opened) appendPayload(b []byte, _ *Encoder) ([]byte, error) { return b, nil }

func (m *ScanRequest) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	if len(m.Excludes) > MaxExcludes {
		return b, encErr("scan request", "excludes", "%d patterns exceeds limit %d", len(m.Excludes), MaxExcludes)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Excludes)))
	for _, x := range m.Excludes {
		if err := checkString("scan request", "exclude", x, MaxString); err != nil {
			return b, err
		}
		b = appendString(b, x)
	}
	if err := checkString("scan request", "since", m.Since, MaxString); err != nil {
		return b, err
	}
	b = appendString(b, m.Since)
	return appendBool(b, m.Hash), nil
}

func decodeScanRequest(p *payload) *ScanRequest {
	m := &ScanRequest{}
	if n := p.count("excludes", MaxExcludes, 1); n > 0 {
		m.Excludes = make([]string, n)
		for i := range m.Excludes {
			m.Excludes[i] = p.str("exclude", MaxString)
		}
	}
	m.Since = p.str("since", MaxString)
	m.Hash = p.bool("hash")
	return m
}

func (m *Entry) appendPayload(b []byte, e *Encoder) ([]byte, error) {
	var prev *tree.Entry
	if e != nil && e.have {
		prev = &e.prev
	}
	return AppendEntry(b, prev, m.Entry)
}

func (m *ScanEnd) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	const msg = "scan end"
	if len(m.Scope) > MaxScopes {
		return b, encErr(msg, "scope", "%d scopes exceeds limit %d", len(m.Scope), MaxScopes)
	}
	if m.Problems < 0 || m.Problems > MaxCount || m.Entries < 0 || m.Entries > MaxCount {
		return b, encErr(msg, "counts", "out of range")
	}
	b = binary.AppendUvarint(b, uint64(len(m.Scope)))
	prev := ""
	for _, s := range m.Scope {
		if err := checkString(msg, "scope", s.Path, tree.MaxPathLen); err != nil {
			return b, err
		}
		shared := 0
		for n := min(len(prev), len(s.Path)); shared < n && prev[shared] == s.Path[shared]; shared++ {
		}
		b = binary.AppendUvarint(b, uint64(shared))
		b = appendString(b, s.Path[shared:])
		b = appendBool(b, s.Tree)
		prev = s.Path
	}
	b = binary.AppendUvarint(b, uint64(m.Problems))
	b = binary.AppendUvarint(b, uint64(m.Entries))
	if err := checkString(msg, "token", m.Token, MaxString); err != nil {
		return b, err
	}
	b = appendString(b, m.Token)
	return appendString(b, cut(m.Err, MaxString)), nil
}

func decodeScanEnd(p *payload) *ScanEnd {
	m := &ScanEnd{}
	if n := p.count("scope", MaxScopes, 3); n > 0 {
		m.Scope = make([]tree.Scope, 0, n)
		prev := ""
		total := 0
		for range n {
			shared := p.max("scope prefix", uint64(len(prev)))
			suffix := p.bytes("scope", tree.MaxPathLen)
			s := tree.Scope{Tree: p.bool("scope tree")}
			if p.err != nil {
				break
			}
			// Refuse before building a path the budget cannot hold.
			if total += int(shared) + len(suffix); total > MaxScopeBytes {
				p.fail("scope", "scope paths exceed %d bytes", MaxScopeBytes)
				break
			}
			s.Path = prev[:shared] + string(suffix)
			if err := tree.ValidatePath(s.Path); err != nil {
				p.fail("scope", "%v", err)
				break
			}
			m.Scope = append(m.Scope, s)
			prev = s.Path
		}
	}
	m.Problems = int(p.max("problems", MaxCount))
	m.Entries = int(p.max("entries", MaxCount))
	m.Token = p.str("token", MaxString)
	m.Err = string(p.bytes("error", MaxString))
	return m
}

func (m *Cancel) appendPayload(b []byte, _ *Encoder) ([]byte, error) { return b, nil }

// basis flags
const (
	bfHashed = 1 << iota
	bfBlocks
	bfAll = bfBlocks<<1 - 1
)

// request flags
const (
	rfHashed = 1 << iota
	rfBasis
	rfAll = rfBasis<<1 - 1
)

func (m *FetchRequest) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	const msg = "fetch request"
	if err := checkString(msg, "path", m.Path, tree.MaxPathLen); err != nil {
		return b, err
	}
	if m.Size < 0 {
		return b, encErr(msg, "size", "negative size %d", m.Size)
	}
	var f uint64
	if m.Hashed {
		f |= rfHashed
	}
	if m.Basis != nil {
		f |= rfBasis
	}
	b = binary.AppendUvarint(b, m.ID)
	b = binary.AppendUvarint(b, f)
	b = appendString(b, m.Path)
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.AppendVarint(b, m.Mtime)
	if m.Hashed {
		b = binary.LittleEndian.AppendUint64(b, m.Hash)
	}
	if m.Basis == nil {
		return b, nil
	}
	bs := m.Basis
	if bs.Size < 0 {
		return b, encErr(msg, "basis size", "negative size %d", bs.Size)
	}
	if err := checkBlocks(bs.Size, bs.BlockSize, len(bs.Blocks)); err != "" {
		return b, encErr(msg, "basis blocks", "%s", err)
	}
	var bf uint64
	if bs.Hashed {
		bf |= bfHashed
	}
	if len(bs.Blocks) > 0 {
		bf |= bfBlocks
	}
	b = binary.AppendUvarint(b, bf)
	b = binary.AppendUvarint(b, uint64(bs.Size))
	if bs.Hashed {
		b = binary.LittleEndian.AppendUint64(b, bs.Hash)
	}
	if len(bs.Blocks) > 0 {
		b = binary.AppendUvarint(b, uint64(bs.BlockSize))
		b = binary.AppendUvarint(b, uint64(len(bs.Blocks)))
		for _, h := range bs.Blocks {
			b = binary.LittleEndian.AppendUint64(b, h)
		}
	}
	return b, nil
}

// checkBlocks returns why a block list does not fit the basis, or "".
func checkBlocks(size int64, blockSize, n int) string {
	switch {
	case n == 0:
		return ""
	case n > MaxBlocks:
		return "too many blocks"
	case blockSize <= 0 || blockSize > MaxBlockSize:
		return "block size out of range"
	}
	var fit int64
	if size > 0 {
		fit = (size-1)/int64(blockSize) + 1
	}
	if int64(n) > fit {
		return "more blocks than the basis size holds"
	}
	return ""
}

func decodeFetchRequest(p *payload) *FetchRequest {
	m := &FetchRequest{ID: p.uvarint("id")}
	f := p.uvarint("flags")
	if p.err == nil && f&^rfAll != 0 {
		p.fail("flags", "unknown flags %#x", f&^rfAll)
	}
	m.Path = p.str("path", tree.MaxPathLen)
	if p.err == nil {
		if err := tree.ValidatePath(m.Path); err != nil {
			p.fail("path", "%v", err)
		} else if m.Path == tree.Root {
			p.fail("path", "the root is not a file")
		}
	}
	m.Size = p.int64("size")
	m.Mtime = p.varint("mtime")
	if f&rfHashed != 0 {
		m.Hash, m.Hashed = p.u64("hash"), true
	}
	if f&rfBasis == 0 || p.err != nil {
		return m
	}
	bs := &Basis{}
	bf := p.uvarint("basis flags")
	if p.err == nil && bf&^bfAll != 0 {
		p.fail("basis flags", "unknown flags %#x", bf&^bfAll)
	}
	bs.Size = p.int64("basis size")
	if bf&bfHashed != 0 {
		bs.Hash, bs.Hashed = p.u64("basis hash"), true
	}
	if bf&bfBlocks != 0 {
		bs.BlockSize = int(p.max("block size", MaxBlockSize))
		n := p.count("blocks", MaxBlocks, 8)
		if p.err == nil {
			if why := checkBlocks(bs.Size, bs.BlockSize, n); why != "" || n == 0 {
				if n == 0 {
					why = "empty block list"
				}
				p.fail("blocks", "%s", why)
			}
		}
		if p.err == nil {
			bs.Blocks = make([]uint64, n)
			for i := range bs.Blocks {
				bs.Blocks[i] = binary.LittleEndian.Uint64(p.b[8*i:])
			}
			p.b = p.b[8*n:]
		}
	}
	m.Basis = bs
	return m
}

func (m *FileData) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	if len(m.Data) > MaxData {
		return b, encErr("file data", "data", "%d bytes exceeds limit %d", len(m.Data), MaxData)
	}
	if m.Off < 0 {
		return b, encErr("file data", "offset", "negative offset %d", m.Off)
	}
	b = binary.AppendUvarint(b, m.ID)
	b = binary.AppendUvarint(b, uint64(m.Off))
	return append(b, m.Data...), nil
}

func (m *FileReuse) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	if m.Off < 0 || m.N < 0 {
		return b, encErr("file reuse", "range", "negative offset or length")
	}
	b = binary.AppendUvarint(b, m.ID)
	b = binary.AppendUvarint(b, uint64(m.Off))
	return binary.AppendUvarint(b, uint64(m.N)), nil
}

func (m *FileEnd) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	if m.Size < 0 {
		return b, encErr("file end", "size", "negative size %d", m.Size)
	}
	b = binary.AppendUvarint(b, m.ID)
	b = binary.AppendUvarint(b, uint64(m.Size))
	b = binary.LittleEndian.AppendUint64(b, m.Hash)
	b = appendBool(b, m.Unchanged)
	return binary.AppendVarint(b, m.Mtime), nil
}

func decodeFileEnd(p *payload) *FileEnd {
	return &FileEnd{
		ID:        p.uvarint("id"),
		Size:      p.int64("size"),
		Hash:      p.u64("hash"),
		Unchanged: p.bool("unchanged"),
		Mtime:     p.varint("mtime"),
	}
}

func (m *FileError) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	if m.Kind >= kindMax {
		return b, encErr("file error", "kind", "unknown kind %d", m.Kind)
	}
	b = binary.AppendUvarint(b, m.ID)
	b = append(b, byte(m.Kind))
	b = appendString(b, cut(m.Op, MaxOp))
	return appendString(b, cut(m.Msg, MaxFileErrorMsg)), nil
}

func decodeFileError(p *payload) *FileError {
	m := &FileError{ID: p.uvarint("id"), Kind: ErrKind(p.u8("kind"))}
	if p.err == nil && m.Kind >= kindMax {
		p.fail("kind", "unknown kind %d", m.Kind)
	}
	m.Op = string(p.bytes("op", MaxOp))
	m.Msg = string(p.bytes("message", MaxFileErrorMsg))
	return m
}

func (m *Error) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	return appendString(b, cut(m.Msg, MaxErrorMsg)), nil
}

func (m *Stats) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	if len(m.Counters) > MaxCounters {
		return b, encErr("stats", "counters", "%d counters exceeds limit %d", len(m.Counters), MaxCounters)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Counters)))
	for _, c := range m.Counters {
		if err := checkString("stats", "name", c.Name, MaxCounterName); err != nil {
			return b, err
		}
		b = appendString(b, c.Name)
		b = binary.AppendVarint(b, c.Value)
	}
	return b, nil
}

func decodeStats(p *payload) *Stats {
	m := &Stats{}
	if n := p.count("counters", MaxCounters, 2); n > 0 {
		m.Counters = make([]Counter, n)
		for i := range m.Counters {
			m.Counters[i] = Counter{Name: p.str("name", MaxCounterName), Value: p.varint("value")}
		}
	}
	return m
}

func (m *Ack) appendPayload(b []byte, _ *Encoder) ([]byte, error) {
	if err := checkString("ack", "token", m.Token, MaxString); err != nil {
		return b, err
	}
	return appendString(b, m.Token), nil
}

func (m *Ping) appendPayload(b []byte, _ *Encoder) ([]byte, error) { return b, nil }

func (m *Done) appendPayload(b []byte, _ *Encoder) ([]byte, error) { return b, nil }
