// Package testbin builds goldsync's binaries for end-to-end tests: a
// TestMain calls Main, and the tests run the real goldsync and
// goldsync-agent from the directory it returns.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// The packages of the two binaries.
const (
	Goldsync = "github.com/goldsync/goldsync/cmd/goldsync"
	Agent    = "github.com/goldsync/goldsync/cmd/goldsync-agent"
)

// Build compiles pkgs into a new temporary directory and returns it with a
// function that removes it.
func Build(pkgs ...string) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", "goldsync-testbin")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	args := append([]string{"build", "-o", dir + "/"}, pkgs...)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build %v: %v\n%s", pkgs, err, out)
	}
	return dir, cleanup, nil
}

// Main builds pkgs, hands the directory to set, runs the tests and exits:
// the whole of a TestMain.
func Main(m *testing.M, set func(dir string), pkgs ...string) {
	d, cleanup, err := Build(pkgs...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	set(d)
	code := m.Run()
	cleanup()
	os.Exit(code)
}
