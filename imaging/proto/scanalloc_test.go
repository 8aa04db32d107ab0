package proto

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// listSource is a Source that hands out a fixed list of entries and
// allocates nothing to do so.
type listSource struct{ entries []*tree.Entry }

func (s *listSource) Scan(_ context.Context, _ imaging.ScanRequest, fn func(*tree.Entry) error) (imaging.ScanResult, error) {
	for _, e := range s.entries {
		if err := fn(e); err != nil {
			return imaging.ScanResult{}, err
		}
	}
	return imaging.ScanResult{Entries: len(s.entries)}, nil
}

func (s *listSource) Fetch(context.Context, []*imaging.FetchRequest, func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	return nil
}

func (s *listSource) Close() error { return nil }

// TestServerScanAllocs counts what the server allocates to send a scan's
// entries: a few for the scan, none an entry. A new wire.Entry per entry
// and a frame header escaping through Write were two allocations an entry,
// ~400k of the golden node's 1.3M in a no-change pull of 225k entries
// (issue #14). Work counts, not timings.
func TestServerScanAllocs(t *testing.T) {
	const n = 1000
	src := &listSource{}
	for i := range n {
		src.entries = append(src.entries, &tree.Entry{
			Path: fmt.Sprintf("usr/lib/package-%03d/component-%03d.so", i/100, i%100),
			Type: tree.TypeRegular, Mode: 0o644, Size: int64(i), Mtime: int64(i) * 1e9,
		})
	}
	s := &server{src: src, out: newSender(wire.NewEncoder(io.Discard), nil)}
	ctx := context.Background()
	s.scan(ctx, imaging.ScanRequest{}) // the encoder's buffer grows once
	allocs := testing.AllocsPerRun(5, func() { s.scan(ctx, imaging.ScanRequest{}) })
	t.Logf("%.0f allocations a scan of %d entries", allocs, n)
	if allocs > n/10 {
		t.Errorf("a scan of %d entries made %.0f allocations, more than %d", n, allocs, n/10)
	}
}
