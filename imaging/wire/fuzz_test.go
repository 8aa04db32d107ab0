package wire

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/goldsync/goldsync/imaging/tree"
)

// seedStream is a valid stream of every message, the decoder fuzz seed.
func seedStream(tb testing.TB) []byte {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, m := range allMessages() {
		if err := enc.Encode(m); err != nil {
			tb.Fatal(err)
		}
	}
	enc.Flush()
	return buf.Bytes()
}

// FuzzDecoder feeds arbitrary bytes to the decoder: it must not panic, its
// buffer must follow the input, every entry it accepts must be valid, and
// whatever it accepts must encode, decode and encode again to the same
// bytes.
func FuzzDecoder(f *testing.F) {
	f.Add(seedStream(f))
	f.Add(frame(TypeEntry, nil))
	f.Add([]byte{byte(TypeFetchRequest), 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(fuzzDecoderBody)
}

func fuzzDecoderBody(t *testing.T, data []byte) {
	d := NewDecoder(bytes.NewReader(data))
	var got []Message
	for range 10000 {
		m, err := d.Next()
		if c := cap(d.buf); c > 2*len(data)+2*chunk {
			t.Fatalf("decoder buffer %d bytes for %d bytes of input", c, len(data))
		}
		if err != nil {
			break
		}
		switch m := m.(type) {
		case *Entry:
			if err := m.Entry.Validate(); err != nil {
				t.Fatalf("accepted an invalid entry: %v", err)
			}
		case *FileData:
			m.Data = bytes.Clone(m.Data)
		}
		got = append(got, m)
	}
	// Whatever was accepted encodes, and decodes back to messages that
	// encode to the same bytes. (Bytes, not cmp: a frame of repeated
	// xattrs makes deep comparison slow, never the decoder.)
	first := encodeMessages(t, got)
	d = NewDecoder(bytes.NewReader(first))
	var again []Message
	for {
		m, err := d.Next()
		if err != nil {
			break
		}
		if fd, ok := m.(*FileData); ok {
			fd.Data = bytes.Clone(fd.Data)
		}
		again = append(again, m)
	}
	if len(again) != len(got) {
		t.Fatalf("%d messages re-encoded, %d decoded back", len(got), len(again))
	}
	if second := encodeMessages(t, again); !bytes.Equal(first, second) {
		t.Fatalf("re-encoding is not stable")
	}
}

func encodeMessages(t *testing.T, ms []Message) []byte {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	for _, m := range ms {
		if err := enc.Encode(m); err != nil {
			t.Fatalf("re-encode %s: %v", m.Type(), err)
		}
	}
	enc.Flush()
	return buf.Bytes()
}

func FuzzEntryRoundTrip(f *testing.F) {
	f.Add("usr/bin", "usr/bin/ping", uint8(tree.TypeRegular), uint32(0o4755), uint32(0), uint32(0), int64(70000), int64(1700000000_000000001),
		"", uint64(0), "security.capability", []byte{1, 2}, uint64(42), true, "", "", uint64(7), uint64(9))
	f.Add("", ".", uint8(tree.TypeDir), uint32(0o755), uint32(0), uint32(0), int64(0), int64(-1),
		"", uint64(0), "", []byte(nil), uint64(0), false, "", "", uint64(0), uint64(0))
	f.Add("a", "a/link", uint8(tree.TypeSymlink), uint32(0o777), uint32(1000), uint32(100), int64(0), int64(5),
		"../../etc/passwd", uint64(0), "", []byte(nil), uint64(0), false, "", "", uint64(0), uint64(0))
	f.Add("dev", "dev/null", uint8(tree.TypeCharDev), uint32(0o666), uint32(0), uint32(0), int64(0), int64(5),
		"", uint64(0x103), "", []byte(nil), uint64(0), false, "", "lgetxattr: EIO", uint64(0), uint64(0))
	f.Add("a/b", "a/c", uint8(tree.TypeRegular), uint32(0o644), uint32(0), uint32(0), int64(1), int64(5),
		"", uint64(0), "", []byte(nil), uint64(3), true, "a/b", "", uint64(0), uint64(0))
	f.Add("x", "x/../y", uint8(tree.TypeRegular), uint32(0o644), uint32(0), uint32(0), int64(1), int64(5),
		"", uint64(0), "", []byte(nil), uint64(3), true, "", "", uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, prevPath, path string, typ uint8, mode, uid, gid uint32, size, mtime int64,
		target string, rdev uint64, xname string, xvalue []byte, hash uint64, hashed bool, linkTo, problem string,
		dev, ino uint64) {
		prev := &tree.Entry{Path: prevPath, Type: tree.TypeDir, Mode: 0o755, UID: 1, Mtime: 1 << 60,
			Xattrs: []tree.Xattr{{Name: xname, Value: xvalue}}}
		e := &tree.Entry{Path: path, Type: tree.Type(typ), Mode: mode, UID: uid, GID: gid, Size: size, Mtime: mtime,
			Target: target, Rdev: rdev, LinkTo: linkTo, Problem: cut(problem, MaxString), Dev: dev, Ino: ino, Nlink: uint32(ino), Ctime: mtime / 3}
		if xname != "" {
			e.Xattrs = []tree.Xattr{{Name: xname, Value: xvalue}}
		}
		if hashed {
			e.SetHash(hash)
		}
		for _, local := range []bool{false, true} {
			var b []byte
			var err error
			if local {
				b, err = AppendEntryLocal(nil, prev, e)
			} else {
				b, err = AppendEntry(nil, prev, e)
			}
			if err != nil {
				if e.Size >= 0 && e.Validate() == nil {
					t.Fatalf("valid entry refused: %v", err)
				}
				return
			}
			got := new(tree.Entry)
			var rest []byte
			if local {
				rest, err = DecodeEntryLocal(b, prev, got)
			} else {
				rest, err = DecodeEntry(b, prev, got)
			}
			if verr := e.Validate(); verr != nil {
				if err == nil {
					t.Fatalf("invalid entry (%v) decoded as %+v", verr, got)
				}
				continue
			}
			if err != nil {
				t.Fatalf("valid entry not decoded: %v", err)
			}
			if len(rest) != 0 {
				t.Fatalf("%d bytes left", len(rest))
			}
			want := e.Clone()
			if !local {
				want.Dev, want.Ino, want.Nlink, want.Ctime = 0, 0, 0, 0
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("local=%v (-want +got):\n%s", local, diff)
			}
		}
	})
}
