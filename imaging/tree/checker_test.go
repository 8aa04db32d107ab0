package tree

import (
	"errors"
	"testing"
)

func TestCheckerMaxBytes(t *testing.T) {
	c := Checker{MaxBytes: 3 * (entryOverhead + 10)}
	for i, p := range []string{".", "aaaaaaaaaa", "bbbbbbbbbb"} {
		e := &Entry{Path: p, Type: TypeDir}
		if err := c.Add(e); err != nil {
			t.Fatalf("entry %d (%d bytes, within the bound): %v", i, EntryCost(e), err)
		}
	}
	if err := c.Add(&Entry{Path: "c", Type: TypeDir}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("past the bound: %v, want ErrTooLarge", err)
	}
	unbounded := Checker{MaxBytes: -1}
	if err := unbounded.Add(&Entry{Path: ".", Type: TypeDir}); err != nil {
		t.Errorf("MaxBytes -1: %v", err)
	}
}
