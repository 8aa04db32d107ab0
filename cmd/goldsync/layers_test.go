package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayers checks that every import between goldsync's packages points
// down the layers ARCHITECTURE.md draws: a package imports only packages
// of lower layers. A new package needs a layer here (and a row in
// ARCHITECTURE.md's table).
func TestLayers(t *testing.T) {
	layer := map[string]int{
		"cmd/goldsync": 11, "cmd/goldsync-agent": 11,
		"internal/exitcode": 10,
		"cluster":           9, "internal/demo": 9,
		"config": 8, "export": 8,
		"agent/push": 7,
		"remote":     6, "snapshot/netboot": 6,
		"snapshot": 5, "agent": 5,
		"agent/watch": 4, "imaging/proto": 4, "internal/term": 4,
		"imaging":      3,
		"imaging/wire": 2, "imaging/fsx": 2, "imaging/exclude": 2,
		"imaging/tree": 1, "imaging/exposure": 1, "agent/boot": 1, "internal/netlab": 1,
		"remote/rsh": 1, "internal/version": 0, "internal/units": 0, "internal/manpage": 0, "internal/manpage/cobraman": 1, "internal/cli": 1, "internal/profile": 0, "internal/gctune": 0,
		"internal/stdio": 0, "internal/heaptest": 0, "internal/sshtest": 0, "internal/treetest": 0, "internal/testbin": 0,
	}
	const mod = "github.com/goldsync/goldsync/"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		if strings.HasPrefix(pkg, "e2e") || strings.HasPrefix(pkg, "reliability") {
			continue // tests only
		}
		l, ok := layer[pkg]
		if !ok {
			t.Errorf("package %s has no layer", pkg)
			continue
		}
		for _, imp := range f[1:] {
			dep, ok := strings.CutPrefix(imp, mod)
			if !ok {
				continue
			}
			if dl, known := layer[dep]; !known || dl >= l {
				t.Errorf("%s (layer %d) imports %s (layer %d): an arrow that does not point down", pkg, l, dep, dl)
			}
		}
	}
}
