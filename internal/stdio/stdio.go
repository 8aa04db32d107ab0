// Package stdio joins a process's stdin and stdout into one stream for the
// protocol (goldsync-agent serve --stdio, goldsync receive --stdio).
package stdio

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Stream is stdin and stdout as one io.ReadWriteCloser. Close closes both,
// so a stalled or cancelled session unblocks a pending read.
type Stream struct {
	In  *os.File
	Out *os.File
}

// New returns the process's stdin and stdout as a Stream. Each that is a
// pipe is asked for PipeSize bytes of room (GrowPipe): an agent's content
// leaves on stdout, a push's arrives on a receiver's stdin.
func New() Stream {
	GrowPipe(os.Stdin)
	GrowPipe(os.Stdout)
	return Stream{In: os.Stdin, Out: os.Stdout}
}

// PipeSize is the capacity GrowPipe asks for. Through a default 64 KiB
// pipe a bulk transfer wakes its reader (ssh, sshd, the agent, goldsync)
// for every 64 KiB; 1 MiB is what an unprivileged process may ask on
// Linux by default (/proc/sys/fs/pipe-max-size).
const PipeSize = 1 << 20

// GrowPipe asks for a PipeSize pipe behind f, if f is a pipe; a failure
// (not a pipe, a lower limit) leaves it as it was.
func GrowPipe(f syscall.Conn) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.FcntlInt(fd, unix.F_SETPIPE_SZ, PipeSize)
	})
}

// Read reads stdin.
func (s Stream) Read(p []byte) (int, error) { return s.In.Read(p) }

// Write writes stdout.
func (s Stream) Write(p []byte) (int, error) { return s.Out.Write(p) }

// Close closes stdout, then stdin.
func (s Stream) Close() error {
	err := s.Out.Close()
	if ierr := s.In.Close(); err == nil {
		err = ierr
	}
	return err
}
