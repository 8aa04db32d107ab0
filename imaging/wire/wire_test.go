package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/goldsync/goldsync/imaging/tree"
)

// allMessages has one of every message, with entries in a valid order.
func allMessages() []Message {
	msgs := []Message{
		&Open{Root: "/", Flags: OpenFetchOnly},
		&Opened{},
		&ScanRequest{Excludes: []string{"/proc/*", "*.tmp"}, Since: "journal:42", Hash: true},
	}
	for _, e := range sampleEntries() {
		msgs = append(msgs, &Entry{Entry: e})
	}
	return append(msgs,
		&ScanEnd{Scope: []tree.Scope{{Path: "etc", Tree: true}, {Path: "etc/passwd"}, {Path: "usr/lib/x", Tree: true}},
			Problems: 1, Entries: 15, Token: "journal:43"},
		&ScanEnd{Scope: tree.FullScope, Err: "scan canceled"},
		&Cancel{},
		&FetchRequest{ID: 1, Path: "usr/bin/ping", Size: 70000, Mtime: -3, Hash: 99, Hashed: true},
		&FetchRequest{ID: 2, Path: "var/big", Size: 40000, Basis: &Basis{Size: 33000, Hash: 5, Hashed: true, BlockSize: 16384, Blocks: []uint64{1, 2, 3}}},
		&FetchRequest{ID: 3, Path: "var/small", Basis: &Basis{Size: 10}},
		&FileData{ID: 1, Off: 1 << 33, Data: []byte("hello")},
		&FileReuse{ID: 2, Off: 16384, N: 16384},
		&FileEnd{ID: 2, Size: 40000, Hash: 1<<63 + 1, Unchanged: true, Mtime: 1700000000_000000001},
		&FileError{ID: 3, Kind: KindChanged, Op: "read", Msg: "file changed while being read"},
		&Error{Msg: "boom"},
		&Stats{Counters: []Counter{{Name: "files", Value: 3}, {Name: "negative", Value: -1}}},
		&Ack{Token: "journal:43"},
		&Ping{},
		&Done{},
	)
}

func TestMessageRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	want := allMessages()
	for _, m := range want {
		if err := enc.Encode(m); err != nil {
			t.Fatalf("encode %s: %v", m.Type(), err)
		}
	}
	if err := enc.WriteFileData(7, 3, []byte("direct")); err != nil {
		t.Fatal(err)
	}
	want = append(want, &FileData{ID: 7, Off: 3, Data: []byte("direct")})
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(&buf)
	for i, w := range want {
		got, err := dec.Next()
		if err != nil {
			t.Fatalf("message %d (%s): %v", i, w.Type(), err)
		}
		if diff := cmp.Diff(w, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("message %d (%s) (-want +got):\n%s", i, w.Type(), diff)
		}
	}
	if m, err := dec.Next(); err != io.EOF {
		t.Errorf("after the last message: %v, %v; want io.EOF", m, err)
	}
}

// frame builds a raw frame.
func frame(t Type, payload []byte) []byte {
	b := binary.AppendUvarint([]byte{byte(t)}, uint64(len(payload)))
	return append(b, payload...)
}

func TestDecoderErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		msg   string // DecodeError.Msg
		field string
		want  string
	}{
		{name: "unknown type", in: frame(99, nil), msg: "frame", field: "type", want: "unknown message type 0x63"},
		{name: "type zero", in: frame(0, nil), msg: "frame", field: "type", want: "unknown message type"},
		{name: "length bomb", in: binary.AppendUvarint([]byte{byte(TypeEntry)}, 1<<40), msg: "entry", field: "length", want: "exceeds limit 2097152"},
		{name: "length bomb data", in: binary.AppendUvarint([]byte{byte(TypeFileData)}, MaxData+100), msg: "file data", field: "length", want: "exceeds limit"},
		{name: "truncated length", in: []byte{byte(TypeEntry), 0x80}, msg: "entry", field: "length", want: "unexpected EOF"},
		{name: "truncated payload", in: append(binary.AppendUvarint([]byte{byte(TypeFetchRequest)}, 1<<20), 1, 2, 3), msg: "fetch request", field: "payload", want: "unexpected EOF"},
		{name: "trailing bytes", in: frame(TypeAck, []byte{1, 'x', 'y'}), msg: "ack", want: "1 trailing bytes"},
		{name: "payload on ping", in: frame(TypePing, []byte{1}), msg: "ping", field: "length", want: "exceeds limit 0"},
		{name: "open empty root", in: frame(TypeOpen, []byte{0, 0}), msg: "open", field: "root", want: "empty"},
		{name: "open unknown flags", in: frame(TypeOpen, []byte{1, '/', 8}), msg: "open", field: "flags", want: "unknown flags"},
		{name: "scan request nul", in: frame(TypeScanRequest, []byte{1, 2, 'a', 0, 0, 0}), msg: "scan request", field: "exclude", want: "NUL"},
		{name: "scan request count bomb", in: frame(TypeScanRequest, []byte{0xff, 0xff, 0x03}), msg: "scan request", field: "excludes", want: "does not fit"},
		{name: "scan request bad bool", in: frame(TypeScanRequest, []byte{0, 0, 7}), msg: "scan request", field: "hash", want: "bad boolean"},
		{name: "scope dotdot", in: frame(TypeScanEnd, []byte{1, 0, 4, 'a', '/', '.', '.', 1, 0, 0, 0, 0}), msg: "scan end", field: "scope", want: ".. component"},
		{name: "scope count bomb", in: frame(TypeScanEnd, []byte{0x80, 0x80, 0x40}), msg: "scan end", field: "scope", want: "does not fit"},
		{name: "fetch root", in: frame(TypeFetchRequest, []byte{1, 0, 1, '.', 0, 0}), msg: "fetch request", field: "path", want: "root"},
		{name: "fetch absolute", in: frame(TypeFetchRequest, []byte{1, 0, 2, '/', 'x', 0, 0}), msg: "fetch request", field: "path", want: "absolute"},
		{name: "fetch too many blocks", in: frame(TypeFetchRequest, []byte{1, rfBasis, 1, 'x', 0, 0, bfBlocks, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
			msg: "fetch request", field: "blocks", want: "more blocks than the basis size holds"},
		{name: "fetch zero block size", in: frame(TypeFetchRequest, []byte{1, rfBasis, 1, 'x', 0, 0, bfBlocks, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}),
			msg: "fetch request", field: "blocks", want: "block size"},
		{name: "file error kind", in: frame(TypeFileError, []byte{1, 9, 0, 0}), msg: "file error", field: "kind", want: "unknown kind"},
		{name: "file end truncated", in: frame(TypeFileEnd, []byte{1, 2}), msg: "file end", field: "hash", want: "truncated"},
		{name: "varint overflow", in: frame(TypeFileReuse, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), msg: "file reuse", field: "id", want: "overflows"},
		{name: "reuse negative offset", in: frame(TypeFileReuse, []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}), msg: "file reuse", field: "offset", want: "exceeds limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewDecoder(bytes.NewReader(tt.in)).Next()
			if err == nil {
				t.Fatalf("decoded %#v, want an error", m)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %T %v, want *DecodeError", err, err)
			}
			if de.Msg != tt.msg || de.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (msg %q field %q), want msg %q field %q containing %q", err, de.Msg, de.Field, tt.msg, tt.field, tt.want)
			}
		})
	}
}

// A frame that declares a large length but delivers little must not make
// the decoder allocate the declared size.
func TestDecoderGrowsWithData(t *testing.T) {
	in := append(binary.AppendUvarint([]byte{byte(TypeFetchRequest)}, uint64(limits[TypeFetchRequest])), make([]byte, 1000)...)
	d := NewDecoder(bytes.NewReader(in))
	if _, err := d.Next(); err == nil {
		t.Fatal("want an error for a truncated frame")
	}
	if c := cap(d.buf); c > 2*chunk {
		t.Errorf("decoder buffer grew to %d bytes for 1000 bytes of data", c)
	}
}

func TestEncoderLimits(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{name: "data too big", m: &FileData{Data: make([]byte, MaxData+1)}, want: "exceeds limit"},
		{name: "open nul", m: &Open{Root: "/a\x00"}, want: "NUL"},
		{name: "open empty", m: &Open{}, want: "empty"},
		{name: "blocks beyond size", m: &FetchRequest{Path: "x", Basis: &Basis{Size: 10, BlockSize: 4, Blocks: make([]uint64, 4)}}, want: "more blocks"},
		{name: "too many excludes", m: &ScanRequest{Excludes: make([]string, MaxExcludes+1)}, want: "exceeds limit"},
		{name: "counter name", m: &Stats{Counters: []Counter{{Name: strings.Repeat("n", MaxCounterName+1)}}}, want: "exceeds limit"},
		{name: "file error kind", m: &FileError{Kind: kindMax}, want: "unknown kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewEncoder(io.Discard).Encode(tt.m)
			var ee *EncodeError
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want an *EncodeError containing %q", err, tt.want)
			}
		})
	}
}

// Long messages that must get through are cut, not refused.
func TestEncoderCutsMessages(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	long := strings.Repeat("e", MaxErrorMsg+5)
	for _, m := range []Message{&Error{Msg: long}, &FileError{Msg: long, Op: long}} {
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
	}
	enc.Flush()
	dec := NewDecoder(&buf)
	m, err := dec.Next()
	if err != nil || len(m.(*Error).Msg) != MaxErrorMsg {
		t.Errorf("error message: %v, %v", len(m.(*Error).Msg), err)
	}
	m, err = dec.Next()
	if err != nil || len(m.(*FileError).Msg) != MaxFileErrorMsg || len(m.(*FileError).Op) != MaxOp {
		t.Errorf("file error: %v", err)
	}
}

// Entry compression restarts after a ScanEnd on both sides.
func TestScanEndResetsCompression(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	scan := []Message{
		&Entry{Entry: &tree.Entry{Path: ".", Type: tree.TypeDir, Mode: 0o755, Mtime: 5}},
		&Entry{Entry: &tree.Entry{Path: "etc", Type: tree.TypeDir, Mode: 0o755, Mtime: 5}},
		&ScanEnd{Scope: tree.FullScope, Entries: 2},
	}
	for range 2 {
		for _, m := range scan {
			if err := enc.Encode(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	enc.Flush()
	dec := NewDecoder(&buf)
	for i := range 2 * len(scan) {
		got, err := dec.Next()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if diff := cmp.Diff(scan[i%len(scan)], got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("message %d (-want +got):\n%s", i, diff)
		}
	}
}

func TestLimitsCoverEveryType(t *testing.T) {
	for typ := Type(1); typ < typeMax; typ++ {
		if typeNames[typ] == "" {
			t.Errorf("type %d has no name", typ)
		}
		if Limit(typ) < 0 {
			t.Errorf("type %s has no limit", typ)
		}
	}
	// The biggest valid entry fits its frame.
	e := &tree.Entry{Path: strings.Repeat("p/", 2047) + "p", Type: tree.TypeSymlink, Target: strings.Repeat("t", tree.MaxPathLen),
		Problem: strings.Repeat("x", MaxString)}
	left := tree.MaxXattrTotal
	for i := 0; i < tree.MaxXattrs && left > 0; i++ {
		name := strings.Repeat("n", 250) + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) + string(rune('a'+i/676))
		v := min(left-len(name), tree.MaxXattrValue)
		if v < 0 {
			break
		}
		e.Xattrs = append(e.Xattrs, tree.Xattr{Name: name, Value: make([]byte, v)})
		left -= len(name) + v
	}
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := AppendEntry(nil, nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > Limit(TypeEntry) {
		t.Errorf("largest entry is %d bytes, frame limit %d", len(b), Limit(TypeEntry))
	}
}
