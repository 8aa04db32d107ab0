// Package units formats quantities for people: byte counts
// and ages as the CLI and the libraries' text reports print them, and
// durations as people give them on a command line (Seconds).
package units

import (
	"fmt"
	"strconv"
	"time"
)

// Bytes formats n bytes with a binary prefix and one decimal: "512 B",
// "1.5 KiB", "3.2 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Age formats a duration for people: 45s, 12m, 5h3m, 3d4h; a negative
// one is "in the future".
func Age(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// Seconds is a duration as people give it on a command line: rsync's
// plain integer seconds (600) or a Go duration (10m, 1h30m). Its methods
// make a *Seconds a flag value (pflag.Value, flag.Value) setting the
// duration it was made from (NewSeconds).
type Seconds time.Duration

// NewSeconds sets *p to def and returns p as a *Seconds.
func NewSeconds(p *time.Duration, def time.Duration) *Seconds {
	*p = def
	return (*Seconds)(p)
}

// Set parses v: an integer is seconds, anything else a Go duration.
func (s *Seconds) Set(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > int64(time.Duration(1<<63-1)/time.Second) || n < -int64(time.Duration(1<<63-1)/time.Second) {
			return fmt.Errorf("%s seconds is out of range", v)
		}
		*s = Seconds(time.Duration(n) * time.Second)
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is neither seconds nor a duration (600, 10m, 1h30m)", v)
	}
	*s = Seconds(d)
	return nil
}

// String formats the duration as Go does (10m0s).
func (s *Seconds) String() string { return time.Duration(*s).String() }

// Type names the value in usage lines.
func (s *Seconds) Type() string { return "seconds|duration" }
