// Package stdio joins a process's stdin and stdout into one stream for the
// protocol (goldsync-agent serve --stdio, goldsync receive --stdio).
package stdio

import "os"

// Stream is stdin and stdout as one io.ReadWriteCloser. Close closes both,
// so a stalled or cancelled session unblocks a pending read.
type Stream struct {
	In  *os.File
	Out *os.File
}

// New returns the process's stdin and stdout as a Stream.
func New() Stream { return Stream{In: os.Stdin, Out: os.Stdout} }

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
