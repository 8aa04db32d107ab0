package rsh

import (
	"context"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/internal/stdio"
)

// TestStartGrowsPipes: the pipes to and from the remote shell hold
// stdio.PipeSize bytes, so a pull's content (stdout) and a push's (stdin)
// wake the reader once a MiB rather than every 64 KiB.
func TestStartGrowsPipes(t *testing.T) {
	p, err := Start(context.Background(), "/bin/cat", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for name, f := range map[string]any{"stdin": p.stdin, "stdout": p.stdout} {
		sc, ok := f.(syscall.Conn)
		if !ok {
			t.Fatalf("%s: %T has no descriptor", name, f)
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var ferr error
		rc.Control(func(fd uintptr) { n, ferr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) })
		if ferr != nil {
			t.Fatalf("%s: %v", name, ferr)
		}
		if n < stdio.PipeSize {
			t.Errorf("%s pipe holds %d bytes, want %d", name, n, stdio.PipeSize)
		}
	}
}
