package main

import "github.com/spf13/pflag"

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
