package imaging

import (
	"testing"

	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/tree"
)

func TestExcludeGuard(t *testing.T) {
	m, err := exclude.New([]string{"/dev/*", "/etc/ssh/ssh_host_*", "/proc/*", "cache/", "+ /keep/**", "/keep*"})
	if err != nil {
		t.Fatal(err)
	}
	// In tree.Compare order, as a (partial) scan sends them.
	cases := []struct {
		path    string
		typ     tree.Type
		refused bool
	}{
		{path: ".", typ: tree.TypeDir},
		{path: "dev", typ: tree.TypeDir},
		{path: "dev/mem", typ: tree.TypeCharDev, refused: true},
		{path: "etc/ssh/ssh_config", typ: tree.TypeRegular},
		{path: "etc/ssh/ssh_host_rsa_key", typ: tree.TypeRegular, refused: true},
		{path: "keep", typ: tree.TypeDir, refused: true},
		{path: "keep/a", typ: tree.TypeRegular, refused: true},        // beneath an excluded directory
		{path: "proc/1/status", typ: tree.TypeRegular, refused: true}, // its parent was never sent
		{path: "usr/cache", typ: tree.TypeRegular},                    // "cache/" matches directories only
		{path: "usr/lib/cache", typ: tree.TypeDir, refused: true},
		{path: "usr/lib/cache/x/y", typ: tree.TypeRegular, refused: true},
		{path: "usr/lib/z", typ: tree.TypeRegular},
	}
	g := &excludeGuard{m: m}
	for _, tc := range cases {
		if got := g.refuses(&tree.Entry{Path: tc.path, Type: tc.typ}); got != tc.refused {
			t.Errorf("%s (%v): refused %v, want %v", tc.path, tc.typ, got, tc.refused)
		}
	}
}
