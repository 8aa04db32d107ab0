package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestAgentDeps guards the agent's dependency list: it runs on every
// golden node (uploaded over SFTP when missing), so it links what pushing
// and serving need and nothing of the image server's side. The bound is
// today's count (159) plus a little room; when a change crosses it, say
// why in ARCHITECTURE.md or find a cheaper way. Nor does it link cobra or
// text/template (internal/cli is its command line): text/template calls
// methods by name, so the linker keeps every exported method of every
// type, and the binary's size is most of the golden node's file-backed
// resident memory in a pull (9.0 MB with cobra, 6.3 without).
func TestAgentDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	const max = 165
	if len(deps) > max {
		t.Errorf("goldsync-agent links %d packages, more than %d", len(deps), max)
	}
	// The image server's side: SFTP upload, config, the cluster job, the
	// rsync export.
	for _, p := range []string{
		"github.com/pkg/sftp", "golang.org/x/crypto/ssh",
		"github.com/goldsync/goldsync/remote", "github.com/goldsync/goldsync/config",
		"github.com/goldsync/goldsync/cluster", "github.com/goldsync/goldsync/export",
		"github.com/goldsync/goldsync/snapshot",
		// The image server's CLI: its exit codes, terminal and text reports.
		"github.com/goldsync/goldsync/internal/exitcode", "github.com/goldsync/goldsync/internal/term",
		"github.com/goldsync/goldsync/internal/units",
		// A smaller binary: cobra, and what calls methods by name.
		"github.com/spf13/cobra", "text/template", "html/template",
		"github.com/goldsync/goldsync/internal/manpage/cobraman",
	} {
		if slices.Contains(deps, p) {
			t.Errorf("goldsync-agent links %s", p)
		}
	}
}
