package export

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gokrazy/rsync"
)

// The text part of the rsync daemon protocol, as rsync's clientserver.c
// speaks it:
//
//	server: @RSYNCD: 27\n
//	client: @RSYNCD: 32.0 ...\n
//	client: MODULE\n               ("" or "#list": the module list, then @RSYNCD: EXIT)
//	server: @RSYNCD: OK\n          (or @ERROR: ...\n and close)
//	client: ARG\n ... \n           (the server-side rsync command line, ended by an empty line)
//
// Then the binary protocol starts, which the child's library speaks. The
// parent reads all of the above itself, checks it, and hands the bytes it
// read to the child, which replays them to the library and swallows the
// library's copy of the two server lines.

// Limits on what a client may send before the binary protocol.
const (
	maxLine      = 4096
	maxArgs      = 256
	maxHandshake = 32 << 10
)

var (
	greeting = fmt.Sprintf("@RSYNCD: %d\n", rsync.ProtocolVersion)
	okLine   = "@RSYNCD: OK\n"
	// libraryPrefix is what the library writes before the binary
	// protocol, already sent by the parent.
	libraryPrefix = greeting + okLine
)

// errListed is returned by handshake when the client asked for the module
// list and got it.
var errListed = errors.New("module list sent")

// request is an accepted client request.
type request struct {
	module string
	args   []string // the server-side command line
	paths  []string // the requested paths, "MODULE/..."
	replay []byte   // every byte read from the client, verbatim
	// argsEnd is where the text part ends in replay; the bytes after it
	// were read ahead and belong to the binary protocol.
	argsEnd int
}

// handshake speaks the text part of the protocol on conn. The caller
// holds a connection slot for it (Server.admit).
func (s *Server) handshake(conn io.ReadWriter) (*request, error) {
	rec := &bytes.Buffer{}
	br := bufio.NewReaderSize(io.TeeReader(io.LimitReader(conn, maxHandshake), rec), maxLine)
	if _, err := io.WriteString(conn, greeting); err != nil {
		return nil, err
	}
	hello, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(hello, "@RSYNCD: ") {
		return nil, fmt.Errorf("not an rsync client: greeting %q", truncate(hello))
	}
	module, err := readLine(br)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	if module == "" || module == "#list" {
		var list strings.Builder
		for _, img := range s.images {
			fmt.Fprintf(&list, "%-15s\tgoldsync image (read-only)\n", img.Name) // as rsyncd pads
		}
		list.WriteString("@RSYNCD: EXIT\n")
		io.WriteString(conn, list.String())
		return nil, errListed
	}
	if _, ok := s.byName[module]; !ok {
		fmt.Fprintf(conn, "@ERROR: Unknown module '%s'\n", truncate(module))
		return nil, fmt.Errorf("unknown module %q", truncate(module))
	}
	if _, err := io.WriteString(conn, okLine); err != nil {
		return nil, err
	}
	var args []string
	for {
		arg, err := readLine(br)
		if err != nil {
			return nil, fmt.Errorf("read arguments: %w", err)
		}
		if arg == "" {
			break
		}
		if len(args) == maxArgs {
			return nil, refuse(conn, fmt.Errorf("more than %d arguments", maxArgs))
		}
		args = append(args, arg)
	}
	paths, err := checkArgs(module, args, !s.noPathCheck)
	if s.noArgCheck && len(args) > 0 {
		paths, err = args[len(args)-1:], nil
	}
	if err != nil {
		return nil, refuse(conn, err)
	}
	// Whatever the reader buffered past the empty line is the client's
	// and belongs to the library too: rec holds it all.
	return &request{module: module, args: args, paths: paths, replay: rec.Bytes(), argsEnd: rec.Len() - br.Buffered()}, nil
}

// readLine reads one line, without its "\n" (a "\r" before it is
// dropped too, as rsync does).
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("line longer than %d bytes", maxLine)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	s := strings.TrimSuffix(string(line[:len(line)-1]), "\r")
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("NUL byte in line")
	}
	return s, nil
}

// refuse tells a client whose arguments were refused why, in the form it
// expects once "@RSYNCD: OK" was sent: a checksum seed, then a multiplexed
// error message (as the library does for arguments it cannot parse). It
// returns err.
func refuse(w io.Writer, err error) error {
	const seed = 0xee
	msg := fmt.Sprintf("goldsync rsync export: %v\n", err)
	b := binary.LittleEndian.AppendUint32(nil, seed)
	b = binary.LittleEndian.AppendUint32(b, muxHeader(muxError, len(msg)))
	b = append(b, msg...)
	w.Write(b)
	return err
}

// Multiplexed message tags (rsync's io.h: MPLEX_BASE + MSG_*).
const (
	muxBase  = 7
	muxError = 1
)

func muxHeader(tag, n int) uint32 { return uint32(muxBase+tag)<<24 | uint32(n) }

// Errors checkArgs returns; the client sees their text.
var (
	// ErrReadOnly refuses an upload.
	ErrReadOnly = errors.New("the image is read-only: uploads are refused")
	// ErrUnsupported refuses an option the library gets wrong.
	ErrUnsupported = errors.New("option not supported by this export")
	// ErrBadPath refuses a requested path.
	ErrBadPath = errors.New("bad path")
)

// checkArgs checks the server-side command line a client sent for module
// and returns the requested paths. The line is "--server" "--sender"
// OPTIONS... "." PATH...; each PATH is "MODULE/" or "MODULE/sub/path".
// With checkPaths false only the options are checked (a test hook).
func checkArgs(module string, args []string, checkPaths bool) ([]string, error) {
	if len(args) == 0 || args[0] != "--server" {
		return nil, errors.New("not a server command line (no --server)")
	}
	dot := -1
	sender := false
	for i, a := range args {
		if a == "." {
			dot = i
			break
		}
		if err := checkOption(a); err != nil {
			return nil, err
		}
		if a == "--sender" {
			sender = true
		}
	}
	if !sender {
		return nil, ErrReadOnly
	}
	if dot < 0 || dot == len(args)-1 {
		return nil, fmt.Errorf("%w: no path requested", ErrBadPath)
	}
	paths := args[dot+1:]
	if len(paths) > 1 {
		// The child maps file list names back to paths to restore set-id
		// bits and hard links; with several roots that is ambiguous.
		return nil, fmt.Errorf("%w: one path per transfer, got %d", ErrBadPath, len(paths))
	}
	if !checkPaths {
		return paths, nil
	}
	for _, p := range paths {
		if err := checkPath(module, p); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// checkOption refuses the options gokrazy/rsync v0.2.2 accepts but does
// not honour (-z: the client then reads plain data as compressed tokens),
// or that end its process (--help, --version...).
func checkOption(a string) error {
	if long, ok := strings.CutPrefix(a, "--"); ok {
		name, _, _ := strings.Cut(long, "=")
		switch {
		case strings.HasPrefix(name, "compress") || name == "new-compress" || name == "old-compress" || name == "zc" || name == "zl":
			return fmt.Errorf("%w: --%s: compression is not implemented; pull without -z", ErrUnsupported, name)
		case name == "daemon" || name == "help" || name == "version" || name == "remote-option":
			return fmt.Errorf("%w: --%s", ErrUnsupported, name)
		case (name == "info" || name == "debug") && strings.Contains(long, "help"):
			return fmt.Errorf("%w: --%s=help", ErrUnsupported, name)
		}
		return nil
	}
	short, ok := strings.CutPrefix(a, "-")
	if !ok {
		return fmt.Errorf("%w: unexpected argument %q before \".\"", ErrBadPath, truncate(a))
	}
	// Letters up to 'e' (whose argument fills the rest) are flags.
	for _, c := range short {
		switch c {
		case 'e':
			return nil
		case 'z':
			return fmt.Errorf("%w: -z: compression is not implemented; pull without -z", ErrUnsupported)
		}
	}
	return nil
}

// checkPath accepts "MODULE/" and "MODULE/rel/path" where no element of
// rel/path is "..". Bare "MODULE" is refused with a hint: the library
// would look for a directory of that name inside the image.
func checkPath(module, p string) error {
	if p == module {
		return fmt.Errorf("%w: ask for %s/ (with a trailing slash) to pull the image", ErrBadPath, module)
	}
	rel, ok := strings.CutPrefix(p, module+"/")
	if !ok {
		return fmt.Errorf("%w: %q is not inside module %s", ErrBadPath, truncate(p), module)
	}
	if strings.HasPrefix(rel, "/") {
		return fmt.Errorf("%w: %q is absolute inside the module", ErrBadPath, truncate(p))
	}
	for elem := range strings.SplitSeq(rel, "/") {
		if elem == ".." {
			return fmt.Errorf("%w: %q leaves the module", ErrBadPath, truncate(p))
		}
	}
	return nil
}

// truncate shortens a client-supplied string for messages.
func truncate(s string) string {
	const n = 200
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
