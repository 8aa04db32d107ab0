package manpage

import (
	"runtime"
	"strings"
	"testing"
	"testing/fstest"
)

// TestHelpFilesReplaceOnlyPlaceholders: a text with a placeholder gets
// it filled; one without is not passed through Vars at all. Every start
// of goldsync (a replica's receiver, each update) reads every help file,
// 44 of which 4 hold a placeholder: Vars's generic replacer copied and
// scanned all 180 KB of them, a third of the command tree's setup.
func TestHelpFilesReplaceOnlyPlaceholders(t *testing.T) {
	plain := strings.Repeat("a line of help text with no placeholder in it\n", 1<<12) // 188 KB
	h := &HelpFiles{FS: fstest.MapFS{
		"fill.txt":  {Data: []byte("exit status: {{exit-status}}\n")},
		"plain.txt": {Data: []byte(plain)},
	}, Vars: strings.NewReplacer("{{exit-status}}", "0 ok", "{{excludes}}", "/proc /sys")}
	var long, example string
	h.Set("fill", &long, &example)
	if long != "exit status: 0 ok" {
		t.Errorf("Long = %q, want the placeholder filled", long)
	}
	var before, after runtime.MemStats
	const runs = 10
	runtime.ReadMemStats(&before)
	for range runs {
		h.Set("plain", &long, &example)
	}
	runtime.ReadMemStats(&after)
	if long != strings.TrimSuffix(plain, "\n") {
		t.Fatalf("Long of plain.txt is not its text")
	}
	// Reading the file and making it a string: two copies. Through the
	// replacer: two more (its buffer and its result).
	perRun := (after.TotalAlloc - before.TotalAlloc) / runs
	if limit := uint64(3 * len(plain)); perRun > limit {
		t.Errorf("setting a %d-byte text without placeholders allocated %d bytes, want at most %d (no pass through Vars)", len(plain), perRun, limit)
	}
}
