package wire

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/goldsync/goldsync/imaging/tree"
)

var selinux = []tree.Xattr{{Name: "security.selinux", Value: []byte("system_u:object_r:usr_t:s0\x00")}}

// sampleEntries is a small sorted tree with every kind of entry.
func sampleEntries() []*tree.Entry {
	file := func(p string, size int64, h uint64) *tree.Entry {
		e := &tree.Entry{Path: p, Type: tree.TypeRegular, Mode: 0o644, Size: size, Mtime: 1700000000_123456789, Xattrs: selinux}
		e.SetHash(h)
		return e
	}
	hl := file("usr/bin/gzip", 4096, 7)
	hl.LinkTo = "usr/bin/gunzip"
	return []*tree.Entry{
		{Path: tree.Root, Type: tree.TypeDir, Mode: 0o755, Mtime: 1600000000_000000001},
		{Path: "dev", Type: tree.TypeDir, Mode: 0o755, Mtime: 1600000000_000000002},
		{Path: "dev/null", Type: tree.TypeCharDev, Mode: 0o666, Rdev: 0x103, Mtime: 1600000000_000000003},
		{Path: "dev/sda", Type: tree.TypeBlockDev, Mode: 0o660, GID: 6, Rdev: 0x800},
		{Path: "run", Type: tree.TypeDir, Mode: 0o755, Mtime: -5},
		{Path: "run/fifo", Type: tree.TypeFIFO, Mode: 0o600},
		{Path: "run/sock", Type: tree.TypeSocket, Mode: 0o777},
		{Path: "usr", Type: tree.TypeDir, Mode: 0o755, Xattrs: selinux},
		{Path: "usr/bin", Type: tree.TypeDir, Mode: 0o755, Xattrs: selinux},
		file("usr/bin/gunzip", 4096, 7),
		hl,
		{Path: "usr/bin/ping", Type: tree.TypeRegular, Mode: 0o4755, UID: 0, GID: 0, Size: 70000,
			Xattrs: []tree.Xattr{{Name: "security.capability", Value: []byte{1, 0, 0, 2, 0, 0x20}}, {Name: "security.selinux", Value: []byte("x")}}},
		{Path: "usr/bin/sh", Type: tree.TypeSymlink, Mode: 0o777, Target: "bash", UID: 1000, GID: 1000},
		{Path: "usr/lib", Type: tree.TypeDir, Mode: 0o755, Problem: "listxattr: permission denied"},
		file("usr/lib/"+strings.Repeat("x", 255), 1<<40, 0xdeadbeefcafef00d),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	entries := sampleEntries()
	for _, local := range []bool{false, true} {
		var buf []byte
		var prev *tree.Entry
		for i, e := range entries {
			e := e.Clone()
			if local {
				e.Dev, e.Ino, e.Nlink, e.Ctime = 0x801, uint64(1000+i), 2, int64(-i)
			}
			var err error
			if local {
				buf, err = AppendEntryLocal(buf, prev, e)
			} else {
				buf, err = AppendEntry(buf, prev, e)
			}
			if err != nil {
				t.Fatalf("encode %s: %v", e.Path, err)
			}
			prev = e
		}
		rest := buf
		prev = nil
		for _, want := range entries {
			got := new(tree.Entry)
			var err error
			if local {
				rest, err = DecodeEntryLocal(rest, prev, got)
			} else {
				rest, err = DecodeEntry(rest, prev, got)
			}
			if err != nil {
				t.Fatalf("local=%v decode %s: %v", local, want.Path, err)
			}
			if local {
				got.Dev, got.Ino, got.Nlink, got.Ctime = 0, 0, 0, 0
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("local=%v entry %s (-want +got):\n%s", local, want.Path, diff)
			}
			prev = got
		}
		if len(rest) != 0 {
			t.Errorf("local=%v: %d bytes left", local, len(rest))
		}
	}
}

func TestEntryLocalFields(t *testing.T) {
	e := &tree.Entry{Path: "f", Type: tree.TypeRegular, Dev: 1, Ino: 2, Nlink: 3, Ctime: 4}
	wireBuf, err := AppendEntry(nil, nil, e)
	if err != nil {
		t.Fatal(err)
	}
	var got tree.Entry
	if _, err := DecodeEntry(wireBuf, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Dev != 0 || got.Ino != 0 || got.Nlink != 0 || got.Ctime != 0 {
		t.Errorf("wire entry carried local fields: %+v", got)
	}
	localBuf, err := AppendEntryLocal(nil, nil, e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEntry(localBuf, nil, &got); err == nil || !strings.Contains(err.Error(), "local-only") {
		t.Errorf("DecodeEntry of a local entry: err = %v, want a local-only error", err)
	}
	if _, err := DecodeEntryLocal(localBuf, nil, &got); err != nil {
		t.Fatal(err)
	}
	if got.Dev != 1 || got.Ino != 2 || got.Nlink != 3 || got.Ctime != 4 {
		t.Errorf("local fields lost: %+v", got)
	}
}

// rawEntry builds an entry encoding by hand, for inputs AppendEntry would
// not produce.
func rawEntry(fields uint64, shared int, path string, typ tree.Type, rest ...byte) []byte {
	b := binary.AppendUvarint(nil, fields)
	b = binary.AppendUvarint(b, uint64(shared))
	b = appendString(b, path)
	b = append(b, byte(typ))
	// mode, uid, gid
	b = append(b, 0, 0, 0)
	if len(rest) == 0 {
		return append(b, 0) // mtime delta
	}
	return append(b, rest...)
}

func TestDecodeEntryErrors(t *testing.T) {
	prev := &tree.Entry{Path: "usr/bin", Type: tree.TypeDir}
	enc := func(e *tree.Entry) []byte {
		b, err := AppendEntry(nil, nil, e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name  string
		in    []byte
		prev  *tree.Entry
		field string // want a DecodeError with this field ("" = any)
		want  string // substring of the error
	}{
		{name: "dotdot", in: enc(&tree.Entry{Path: "a/../b", Type: tree.TypeRegular}), want: ".. component"},
		{name: "absolute", in: enc(&tree.Entry{Path: "/etc/passwd", Type: tree.TypeRegular}), want: "absolute"},
		{name: "long name", in: enc(&tree.Entry{Path: strings.Repeat("n", 300), Type: tree.TypeRegular}), want: "component longer"},
		{name: "long path", in: rawEntry(0, 7, strings.Repeat("a", 4090), tree.TypeRegular), prev: prev, field: "path", want: "exceeds limit"},
		{name: "prefix beyond previous path", in: rawEntry(0, 8, "x", tree.TypeRegular), prev: prev, field: "path prefix", want: "exceeds limit 7"},
		{name: "bad type", in: rawEntry(0, 0, "x", 99), want: "invalid type"},
		{name: "root not dir", in: enc(&tree.Entry{Path: ".", Type: tree.TypeRegular}), want: "root is a file"},
		{name: "unknown field bits", in: rawEntry(1<<20, 0, "x", tree.TypeRegular), field: "fields", want: "unknown field bits"},
		{name: "truncated", in: enc(&tree.Entry{Path: "some/file", Type: tree.TypeRegular, Size: 1 << 50})[:14], want: "truncated"},
		{name: "mode overflow", in: rawEntry(0, 0, "x", tree.TypeRegular)[:5], field: "mode", want: "truncated"},
		{name: "same xattrs without previous", in: rawEntry(efSameXattrs, 0, "x", tree.TypeRegular), field: "xattrs", want: "has none"},
		{name: "xattr count bomb", in: rawEntry(efXattrs, 0, "x", tree.TypeRegular, 0, 0xff, 0x07), field: "xattrs", want: "does not fit"},
		{name: "huge string length", in: append(binary.AppendUvarint([]byte{0, 0}, 1<<62), 'x'), field: "path", want: "exceeds limit"},
		{name: "nul in path", in: enc(&tree.Entry{Path: "a\x00b", Type: tree.TypeRegular}), want: "NUL"},
		{name: "size on dir", in: enc(&tree.Entry{Path: "d", Type: tree.TypeDir, Size: 5}), want: "size 5"},
		{name: "negative size", in: rawEntry(efSize, 0, "x", tree.TypeRegular, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0), field: "size", want: "exceeds limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e tree.Entry
			_, err := DecodeEntry(tt.in, tt.prev, &e)
			if err == nil {
				t.Fatalf("decoded %+v, want error containing %q", e, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %T %v, want a *DecodeError", err, err)
			}
			if tt.field != "" && de.Field != tt.field {
				t.Errorf("field = %q, want %q (err %v)", de.Field, tt.field, err)
			}
			if de.Msg != "entry" {
				t.Errorf("msg = %q, want entry", de.Msg)
			}
		})
	}
}

func TestAppendEntryErrors(t *testing.T) {
	tests := []struct {
		name string
		e    *tree.Entry
		want string
	}{
		{name: "unknown flags", e: &tree.Entry{Path: "x", Type: tree.TypeRegular, Flags: 0x80}, want: "unknown flags"},
		{name: "negative size", e: &tree.Entry{Path: "x", Type: tree.TypeRegular, Size: -1}, want: "negative size"},
		{name: "long path", e: &tree.Entry{Path: strings.Repeat("x", MaxString+1), Type: tree.TypeRegular}, want: "exceeds limit"},
		{name: "too many xattrs", e: &tree.Entry{Path: "x", Type: tree.TypeRegular, Xattrs: make([]tree.Xattr, tree.MaxXattrs+1)}, want: "xattrs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := AppendEntry(nil, nil, tt.e)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEntryCompression(t *testing.T) {
	entries := sampleEntries()
	var buf []byte
	var prev *tree.Entry
	var plain int
	for _, e := range entries {
		before := len(buf)
		var err error
		if buf, err = AppendEntry(buf, prev, e); err != nil {
			t.Fatal(err)
		}
		one, _ := AppendEntry(nil, nil, e)
		plain += len(one)
		if prev != nil && tree.XattrsEqual(prev.Xattrs, e.Xattrs) && len(e.Xattrs) > 0 && len(buf)-before >= len(one) {
			t.Errorf("%s: repeated xattrs not compressed (%d bytes, %d uncompressed)", e.Path, len(buf)-before, len(one))
		}
		prev = e
	}
	if len(buf) >= plain {
		t.Errorf("compressed stream %d bytes, not smaller than %d uncompressed", len(buf), plain)
	}
}

func TestProblemCut(t *testing.T) {
	e := &tree.Entry{Path: "x", Type: tree.TypeRegular, Problem: strings.Repeat("p", MaxString+10)}
	b, err := AppendEntry(nil, nil, e)
	if err != nil {
		t.Fatal(err)
	}
	var got tree.Entry
	if _, err := DecodeEntry(b, nil, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Problem) != MaxString {
		t.Errorf("problem is %d bytes, want it cut to %d", len(got.Problem), MaxString)
	}
}
