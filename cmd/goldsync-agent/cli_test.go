package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/cli.golden with the agent's answers")

// TestCLIAnswers runs the agent with each argument list of
// testdata/cli.golden (its "=== " lines) and compares what it prints on
// stdout and stderr, and its exit status, with what is recorded there:
// the help texts, usage errors and exit codes users see. The file was
// recorded from the agent built on cobra (main at cdb5739), then edited
// where internal/cli answers differently on purpose: no completion
// command, and `help TOPIC` for an unknown topic lists --help and
// --version with the root's flags. -update rewrites it.
func TestCLIAnswers(t *testing.T) {
	golden := filepath.Join("testdata", "cli.golden")
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(want), "\n") {
		argv, ok := strings.CutPrefix(line, "=== ")
		if !ok && line != "===" {
			continue
		}
		args := strings.Fields(argv)
		cmd := exec.Command(filepath.Join(bin, "goldsync-agent"), args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		code := 0
		if err := cmd.Run(); err != nil {
			var x *exec.ExitError
			if !errors.As(err, &x) {
				t.Fatalf("%s: %v", argv, err)
			}
			code = x.ExitCode()
		}
		fmt.Fprintf(&b, "=== %s\nexit %d\n--- stdout\n%s--- stderr\n%s", argv, code, o.String(), e.String())
	}
	got := b.String()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("the agent's answers differ from %s at line %d:\ngot:  %q\nwant: %q\n(go test -run TestCLIAnswers -update rewrites it)", golden, i+1, g, w)
			}
		}
	}
}
