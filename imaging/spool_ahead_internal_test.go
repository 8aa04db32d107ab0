package imaging

import (
	"errors"
	"fmt"
	"iter"
	"runtime"
	"testing"
	"time"

	"github.com/goldsync/goldsync/imaging/tree"
)

// TestDecodeAhead: the plan's read-ahead yields what the sequence yields,
// in order, hands back the sequence's error once it has ended, and when
// the caller stops early it returns only after the decoding goroutine
// has stopped (nothing keeps reading a spool that is about to be closed).
func TestDecodeAhead(t *testing.T) {
	gen := func(n int, fail error, errp *error, ended *bool) iter.Seq[*tree.Entry] {
		return func(yield func(*tree.Entry) bool) {
			defer func() { *ended = true }()
			for i := range n {
				if !yield(&tree.Entry{Path: fmt.Sprintf("f%07d", i)}) {
					return
				}
			}
			*errp = fail
		}
	}
	for _, n := range []int{0, 1, aheadBatch, aheadBatch*aheadBatches*3 + 17} {
		var err error
		var ended bool
		boom := errors.New("boom")
		k := 0
		for e := range decodeAhead(gen(n, boom, &err, &ended)) {
			if want := fmt.Sprintf("f%07d", k); e.Path != want {
				t.Fatalf("n=%d: entry %d is %q, want %q", n, k, e.Path, want)
			}
			k++
		}
		if k != n || err != boom || !ended {
			t.Fatalf("n=%d: %d entries, err %v, ended %v", n, k, err, ended)
		}
	}
	before := runtime.NumGoroutine()
	var err error
	var ended bool
	k := 0
	for range decodeAhead(gen(100000, nil, &err, &ended)) {
		if k++; k == 300 {
			break
		}
	}
	if !ended {
		t.Fatal("the decoding goroutine still runs after the caller stopped")
	}
	for range 100 {
		if runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
}
