package wire

import (
	"io"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestEncodeEntryAllocs: encoding an entry allocates nothing once the
// encoder's buffer has grown. The frame header was a local array escaping
// through Write, an allocation a frame (issue #14).
func TestEncodeEntryAllocs(t *testing.T) {
	enc := NewEncoder(io.Discard)
	e := &tree.Entry{Path: "usr/lib/libc.so.6", Type: tree.TypeRegular, Mode: 0o755, Size: 1 << 20, Mtime: 1e18}
	m := &Entry{Entry: e}
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Encode of an entry made %.1f allocations, want 0", allocs)
	}
}
