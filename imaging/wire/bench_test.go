package wire

import (
	"fmt"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// benchEntries is a realistic run of a package directory: same owner and
// label, similar mtimes, long shared prefixes.
func benchEntries() []*tree.Entry {
	var es []*tree.Entry
	for i := range 1000 {
		e := &tree.Entry{
			Path:   fmt.Sprintf("usr/lib64/python3.9/site-packages/pkg%03d/module_%04d.py", i/50, i),
			Type:   tree.TypeRegular,
			Mode:   0o644,
			Size:   int64(1000 + i*37),
			Mtime:  1700000000_000000000 + int64(i)*1_000_003,
			Xattrs: selinux,
		}
		e.SetHash(uint64(i) * 0x9e3779b97f4a7c15)
		es = append(es, e)
	}
	return es
}

func encodeAll(b *testing.B, es []*tree.Entry) []byte {
	var buf []byte
	var prev *tree.Entry
	for _, e := range es {
		var err error
		if buf, err = AppendEntry(buf, prev, e); err != nil {
			b.Fatal(err)
		}
		prev = e
	}
	return buf
}

func BenchmarkEncodeEntry(b *testing.B) {
	es := benchEntries()
	size := len(encodeAll(b, es))
	buf := make([]byte, 0, size)
	b.SetBytes(int64(size / len(es)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i % len(es)
		if k == 0 {
			buf = buf[:0]
		}
		var prev *tree.Entry
		if k > 0 {
			prev = es[k-1]
		}
		buf, _ = AppendEntry(buf, prev, es[k])
	}
}

func BenchmarkDecodeEntry(b *testing.B) {
	es := benchEntries()
	enc := encodeAll(b, es)
	b.SetBytes(int64(len(enc) / len(es)))
	b.ReportAllocs()
	rest := enc
	var prev *tree.Entry
	b.ResetTimer()
	for b.Loop() {
		if len(rest) == 0 {
			rest, prev = enc, nil
		}
		e := new(tree.Entry)
		var err error
		if rest, err = DecodeEntry(rest, prev, e); err != nil {
			b.Fatal(err)
		}
		prev = e
	}
}
