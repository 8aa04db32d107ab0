package treetest

import (
	"os/exec"
	"strings"
	"testing"
)

// RsyncCopy mirrors src into dst with stock rsync, the reference for what a
// faithful copy is:
//
//	rsync -aHAXS --numeric-ids --delete [extraArgs...] src/ dst/
//
// dst is created if missing. The test is skipped, saying why, when rsync is
// not installed; an rsync failure fails the test with rsync's output.
func RsyncCopy(t testing.TB, src, dst string, extraArgs ...string) {
	t.Helper()
	bin, err := exec.LookPath("rsync")
	if err != nil {
		t.Skipf("SKIPPED: stock rsync is not installed, so the reference copy cannot be made: %v", err)
	}
	args := append([]string{"-aHAXS", "--numeric-ids", "--delete"}, extraArgs...)
	args = append(args, withSlash(src), withSlash(dst))
	out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("treetest: rsync %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func withSlash(p string) string {
	if strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}
