package stdio

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// pipeMaxOK reports whether this system lets an unprivileged process ask
// for PipeSize (root may always).
func pipeMaxOK() bool {
	if os.Geteuid() == 0 {
		return true
	}
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if err != nil {
		return false
	}
	var n int
	for _, c := range b {
		if c >= '0' && c <= '9' {
			n = n*10 + int(c-'0')
		}
	}
	return n >= PipeSize
}

// TestGrowPipe: a pipe handed to GrowPipe holds PipeSize bytes (the
// default, 64 KiB, woke the reader of a bulk transfer 16 times as often);
// a file that is not a pipe is left alone.
func TestGrowPipe(t *testing.T) {
	if !pipeMaxOK() {
		t.Skip("pipe-max-size is below PipeSize here")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	GrowPipe(w)
	n, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n < PipeSize {
		t.Fatalf("pipe holds %d bytes after GrowPipe, want %d", n, PipeSize)
	}
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	GrowPipe(f) // not a pipe: nothing to do, nothing to fail
}
