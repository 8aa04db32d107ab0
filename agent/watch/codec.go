package watch

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"sync"
)

// The journal log is one file:
//
//	header:  magic "GSJRNL01" | epoch (16 bytes) | crc32c(magic|epoch) (u32 LE)
//	record*: length n (u32 LE) | payload (n bytes) | crc32c(length|payload) (u32 LE)
//
// A payload is a type byte and fields: unsigned varints and strings (a
// varint length, then the bytes). The first record is always a state record
// (a snapshot head), optionally followed by entries records; the records
// after it are the changes appended since, replayed in order by state.apply.
// A compaction rewrites the file as a fresh snapshot.

const (
	magic      = "GSJRNL01"
	headerLen  = len(magic) + 16 + 4
	maxRecord  = 16 << 20 // payload bytes
	maxReason  = 4096
	maxDestID  = 256
	maxBarrier = 64 // bytes of a barrier id
)

// Record types.
const (
	recState    = 1 // snapshot head: cur, sealed, floor, fullGen, fullReason, acks, volatile, barriers
	recEntries  = 2 // snapshot entries: n × (path, self, tree)
	recMarks    = 3 // gen, n × (flags, path)
	recFull     = 4 // gen, reason
	recSeal     = 5 // gen
	recAck      = 6 // dest, gen
	recForget   = 7 // dest
	recBarrier  = 8 // id
	recVolatile = 9 // n × path
)

// castagnoli is the records' CRC-32C table, made on first use: making it
// builds hash/crc32's SSE4.2 tables (9 KB, ~0.15 ms), which every start
// of a binary linking this package (each replica update's receiver) would
// pay at init whether it reads a journal or not.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// errTornTail says the log ends inside a record: a write was cut short.
var errTornTail = errors.New("log ends inside a record")

// encodeHeader returns the file header for an epoch.
func encodeHeader(epoch [16]byte) []byte {
	b := make([]byte, 0, headerLen)
	b = append(b, magic...)
	b = append(b, epoch[:]...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli()))
}

// decodeHeader checks the header at the start of data.
func decodeHeader(data []byte) ([16]byte, error) {
	var epoch [16]byte
	if len(data) < headerLen {
		return epoch, fmt.Errorf("header: %d bytes, want %d", len(data), headerLen)
	}
	if string(data[:len(magic)]) != magic {
		return epoch, fmt.Errorf("header: bad magic %q", data[:len(magic)])
	}
	if crc32.Checksum(data[:headerLen-4], castagnoli()) != binary.LittleEndian.Uint32(data[headerLen-4:]) {
		return epoch, errors.New("header: checksum mismatch")
	}
	copy(epoch[:], data[len(magic):])
	return epoch, nil
}

// frame wraps a payload into a record.
func frame(dst, payload []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, payload...)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli()))
}

// nextRecord splits the record at the start of data: its payload and its
// framed length.
func nextRecord(data []byte) (payload []byte, n int, err error) {
	if len(data) < 4 {
		return nil, 0, errTornTail
	}
	size := binary.LittleEndian.Uint32(data)
	if size == 0 || size > maxRecord {
		return nil, 0, fmt.Errorf("record length %d out of range", size)
	}
	end := 4 + int(size)
	if len(data) < end+4 {
		return nil, 0, errTornTail
	}
	if crc32.Checksum(data[:end], castagnoli()) != binary.LittleEndian.Uint32(data[end:]) {
		return nil, 0, errors.New("record checksum mismatch")
	}
	return data[4:end], end + 4, nil
}

// dec reads the fields of one payload. The first error sticks; reads after
// it return zero values.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, a...)
	}
}

func (d *dec) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("payload too short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads an element count; each element takes at least minSize bytes,
// so a count the payload cannot hold is rejected before any allocation.
func (d *dec) count(minSize int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)/minSize) {
		d.fail("count %d larger than the payload", v)
		return 0
	}
	return int(v)
}

func (d *dec) string(maxLen int) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(maxLen) || n > uint64(len(d.b)) {
		d.fail("string length %d out of range", n)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Payload encoders. Each returns one record payload.

func encodeMarks(gen uint64, marks []DirtyPath) []byte {
	b := []byte{recMarks}
	b = binary.AppendUvarint(b, gen)
	b = binary.AppendUvarint(b, uint64(len(marks)))
	for _, m := range marks {
		var fl byte
		if m.Tree {
			fl = 1
		}
		b = append(b, fl)
		b = appendString(b, m.Path)
	}
	return b
}

func encodeFull(gen uint64, reason string) []byte {
	b := binary.AppendUvarint([]byte{recFull}, gen)
	return appendString(b, clip(reason, maxReason))
}

func encodeSeal(gen uint64) []byte { return binary.AppendUvarint([]byte{recSeal}, gen) }

func encodeAck(dest string, gen uint64) []byte {
	b := appendString([]byte{recAck}, dest)
	return binary.AppendUvarint(b, gen)
}

func encodeForget(dest string) []byte { return appendString([]byte{recForget}, dest) }

func encodeBarrier(id string) []byte { return appendString([]byte{recBarrier}, id) }

func encodeVolatile(paths []string) []byte {
	b := binary.AppendUvarint([]byte{recVolatile}, uint64(len(paths)))
	for _, p := range paths {
		b = appendString(b, p)
	}
	return b
}

// clip shortens s to at most n bytes.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Tokens look like "gsj1-<32 hex digits of epoch>-<generation>".
const tokenPrefix = "gsj1-"

func formatToken(epoch [16]byte, gen uint64) string {
	return tokenPrefix + hex.EncodeToString(epoch[:]) + "-" + strconv.FormatUint(gen, 10)
}

// parseToken splits a token. It fails on anything formatToken would not
// have produced.
func parseToken(tok string) (epoch [16]byte, gen uint64, err error) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok || len(rest) < 34 || rest[32] != '-' {
		return epoch, 0, fmt.Errorf("malformed token %q", clip(tok, 80))
	}
	if _, err := hex.Decode(epoch[:], []byte(rest[:32])); err != nil {
		return epoch, 0, fmt.Errorf("malformed token %q", clip(tok, 80))
	}
	gen, err = strconv.ParseUint(rest[33:], 10, 64)
	if err != nil || formatToken(epoch, gen) != tok {
		return epoch, 0, fmt.Errorf("malformed token %q", clip(tok, 80))
	}
	return epoch, gen, nil
}
