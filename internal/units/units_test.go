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

func TestSeconds(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "600", want: 10 * time.Minute},
		{in: "0", want: 0},
		{in: "-1", want: -time.Second},
		{in: "10m", want: 10 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "99999999999999999", err: true},
		{in: "ten", err: true},
	} {
		var d time.Duration
		s := NewSeconds(&d, time.Hour)
		err := s.Set(tc.in)
		if (err != nil) != tc.err || (err == nil && d != tc.want) {
			t.Errorf("Set(%q): %v, %v; want %v, error %v", tc.in, d, err, tc.want, tc.err)
		}
	}
	var d time.Duration
	if s := NewSeconds(&d, time.Minute); d != time.Minute || s.String() != "1m0s" || s.Type() != "seconds|duration" {
		t.Errorf("NewSeconds: %v, %q, %q", d, s.String(), s.Type())
	}
}
