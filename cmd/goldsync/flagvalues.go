package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/pflag"
)

// secondsValue is a duration flag that takes rsync's plain integer
// seconds (--timeout 600) as well as Go durations (--timeout 10m).
type secondsValue time.Duration

func newSecondsValue(p *time.Duration, def time.Duration) *secondsValue {
	*p = def
	return (*secondsValue)(p)
}

func (s *secondsValue) Set(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > int64(time.Duration(1<<63-1)/time.Second) || n < -int64(time.Duration(1<<63-1)/time.Second) {
			return fmt.Errorf("%s seconds is out of range", v)
		}
		*s = secondsValue(time.Duration(n) * time.Second)
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is neither seconds nor a duration (600, 10m, 1h30m)", v)
	}
	*s = secondsValue(d)
	return nil
}

func (s *secondsValue) String() string { return time.Duration(*s).String() }
func (s *secondsValue) Type() string   { return "seconds|duration" }

// secondsVar defines a flag taking seconds or a duration.
func secondsVar(fl *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	fl.Var(newSecondsValue(p, def), name, usage)
}

// rsyncNoOps are rsync's flags whose behaviour goldsync always has: they
// are accepted, so that an admin's rsync line works once the command is
// renamed, and change nothing.
var rsyncNoOps = []struct{ name, short, usage string }{
	{"archive", "a", "accepted for rsync compatibility: goldsync always keeps what -a keeps"},
	{"hard-links", "H", "accepted for rsync compatibility: hard links are always kept"},
	{"acls", "A", "accepted for rsync compatibility: ACLs are always kept"},
	{"xattrs", "X", "accepted for rsync compatibility: xattrs are always kept"},
	{"sparse", "S", "accepted for rsync compatibility: holes are always kept"},
	{"numeric-ids", "", "accepted for rsync compatibility: owners are always kept as numbers"},
	{"delete", "", "delete what the source no longer has: always done, except into a non-empty DEST goldsync never pulled into (no state dir), which needs --delete, as rsync (see --no-delete, --max-delete)"},
}

// registerRsyncNoOps adds rsyncNoOps to fl.
func registerRsyncNoOps(fl *pflag.FlagSet) {
	for _, f := range rsyncNoOps {
		var b bool
		fl.BoolVarP(&b, f.name, f.short, false, f.usage)
	}
}
