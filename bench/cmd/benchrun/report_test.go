package main

import (
	"slices"
	"testing"
)

// The entries axis of wall.png and rss.png spans 10k to 1M entries: its
// labels are short (1M, not 1e+06) and one per 1-2-5 step.
func TestTicksLabelEntries(t *testing.T) {
	var got []string
	for _, tk := range (ticks125{si: true}).Ticks(9000, 1.2e6) {
		got = append(got, tk.Label)
	}
	want := []string{"10k", "20k", "50k", "100k", "200k", "500k", "1M"}
	if !slices.Equal(got, want) {
		t.Errorf("labels %q, want %q", got, want)
	}
	got = got[:0]
	for _, tk := range (ticks125{}).Ticks(3, 2500) {
		got = append(got, tk.Label)
	}
	if want := []string{"5", "10", "20", "50", "100", "200", "500", "1000", "2000"}; !slices.Equal(got, want) {
		t.Errorf("MiB labels %q, want %q", got, want)
	}
}
