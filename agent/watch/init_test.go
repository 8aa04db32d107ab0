package watch

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// TestInitMakesNoTable: this package's init allocates almost nothing.
// Every start of goldsync (each replica update's receiver) runs it; it
// used to make the CRC-32C table at init, 9 KB and ~0.15 ms of hash/crc32's
// SSE4.2 tables, for binaries that never read a journal.
func TestInitMakesNoTable(t *testing.T) {
	if os.Getenv("GOLDSYNC_INITTRACE_CHILD") != "" {
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInitMakesNoTable$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", "GOLDSYNC_INITTRACE_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m := regexp.MustCompile(`(?m)^init github\.com/goldsync/goldsync/agent/watch @\S+ ms, \S+ ms clock, (\d+) bytes`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no init line for agent/watch in:\n%s", out)
	}
	if n, _ := strconv.Atoi(string(m[1])); n > 4096 {
		t.Errorf("agent/watch's init allocated %d bytes, want at most 4096 (no CRC table)", n)
	}
}
