package units

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{n: 0, want: "0 B"},
		{n: 1023, want: "1023 B"},
		{n: 1024, want: "1.0 KiB"},
		{n: 1536, want: "1.5 KiB"},
		{n: 5 << 30, want: "5.0 GiB"},
		{n: 1 << 62, want: "4.0 EiB"},
	} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestAge(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{d: -time.Second, want: "in the future"},
		{d: 45 * time.Second, want: "45s"},
		{d: 12*time.Minute + 59*time.Second, want: "12m"},
		{d: 5*time.Hour + 3*time.Minute, want: "5h3m"},
		{d: 47 * time.Hour, want: "47h0m"},
		{d: 76 * time.Hour, want: "3d4h"},
	} {
		if got := Age(tc.d); got != tc.want {
			t.Errorf("Age(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
