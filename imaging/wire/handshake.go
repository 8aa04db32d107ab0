package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Role is a side of the protocol. The client (the receiver) drives the
// session and the server (the sender) answers, whichever of them started
// the other.
type Role uint8

// The roles.
const (
	RoleClient Role = iota + 1
	RoleServer
)

// String names the role ("client" or "server").
func (r Role) String() string {
	switch r {
	case RoleClient:
		return "client"
	case RoleServer:
		return "server"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// The magic bytes that open each direction. The two differ, so a stream
// that echoes what it is sent is caught, and each holds a NUL so shell
// output cannot pass for it.
const (
	ClientMagic = "GSYNC\x00C\n"
	ServerMagic = "GSYNC\x00S\n"
)

func magicOf(r Role) string {
	if r == RoleClient {
		return ClientMagic
	}
	return ServerMagic
}

// The protocol versions this package speaks.
const (
	VersionMin = 1
	VersionMax = 1
)

// Hello is what each side announces right after its magic.
type Hello struct {
	Role       Role   // from the magic
	MinVersion uint32 // lowest protocol version spoken
	MaxVersion uint32 // highest protocol version spoken
	Software   string // free text such as "goldsync 0.3.1", at most MaxSoftware bytes
}

// Handshake failures that callers branch on: a transport may upload a
// fresh agent on ErrRemoteExited or ErrVersion.
var (
	// ErrRemoteExited: the stream ended before the peer's magic, so the
	// remote command failed or is missing.
	ErrRemoteExited = errors.New("remote exited before the protocol started")
	// ErrNotProtocol: the peer sent something other than the magic.
	ErrNotProtocol = errors.New("remote does not speak the goldsync protocol")
	// ErrVersion: the two sides share no protocol version.
	ErrVersion = errors.New("no common protocol version")
)

// handshakeError carries a full message and the sentinel it is a case of.
type handshakeError struct {
	msg  string
	kind error
}

func (e *handshakeError) Error() string { return e.msg }
func (e *handshakeError) Unwrap() error { return e.kind }

// maxNoise is how much unexpected output is read and quoted.
const maxNoise = 200

// WriteHello writes the magic of h.Role and the hello fields, and flushes.
func (e *Encoder) WriteHello(h Hello) error {
	if h.Role != RoleClient && h.Role != RoleServer {
		return encErr("hello", "role", "bad role %d", h.Role)
	}
	if h.MinVersion == 0 || h.MinVersion > h.MaxVersion {
		return encErr("hello", "version", "bad range %d..%d", h.MinVersion, h.MaxVersion)
	}
	b := append(e.buf[:0], magicOf(h.Role)...)
	b = binary.AppendUvarint(b, uint64(h.MinVersion))
	b = binary.AppendUvarint(b, uint64(h.MaxVersion))
	b = appendString(b, cut(h.Software, MaxSoftware))
	e.buf = b
	if _, err := e.w.Write(b); err != nil {
		return err
	}
	return e.w.Flush()
}

// ReadHello reads the peer's magic and hello; peer is the role expected of
// it. Anything else in front of the magic is reported with a quote of what
// arrived: shell startup output, an error from a missing command, or our
// own magic echoed back.
func (d *Decoder) ReadHello(peer Role) (Hello, error) {
	want := magicOf(peer)
	var head [len(ClientMagic)]byte
	n, err := io.ReadFull(d.r, head[:])
	if err != nil {
		return Hello{}, d.noise(head[:n], err, want)
	}
	if string(head[:]) != want {
		own := magicOf(RoleClient + RoleServer - peer)
		if string(head[:]) == own {
			return Hello{}, &handshakeError{kind: ErrNotProtocol,
				msg: "remote echoed our own handshake back: the remote command is not a goldsync " + peer.String() + " (a shell or cat?)"}
		}
		return Hello{}, d.noise(head[:], nil, want)
	}
	h := Hello{Role: peer}
	field := func(name string, limit uint64) uint64 {
		if err != nil {
			return 0
		}
		var v uint64
		if v, err = binary.ReadUvarint(d.r); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			err = &DecodeError{Msg: "hello", Field: name, Err: err}
		} else if v > limit {
			err = &DecodeError{Msg: "hello", Field: name, Err: fmt.Errorf("%d exceeds limit %d", v, limit)}
		}
		return v
	}
	h.MinVersion = uint32(field("min version", math.MaxUint32))
	h.MaxVersion = uint32(field("max version", math.MaxUint32))
	sw := make([]byte, field("software", MaxSoftware))
	if err != nil {
		return Hello{}, err
	}
	if _, err := io.ReadFull(d.r, sw); err != nil {
		return Hello{}, &DecodeError{Msg: "hello", Field: "software", Err: io.ErrUnexpectedEOF}
	}
	h.Software = string(sw)
	if h.MinVersion == 0 || h.MinVersion > h.MaxVersion {
		return Hello{}, &DecodeError{Msg: "hello", Field: "version", Err: fmt.Errorf("bad range %d..%d", h.MinVersion, h.MaxVersion)}
	}
	return h, nil
}

// noise reads on from got (bytes that were not the magic) until the magic
// shows up, the stream ends or maxNoise bytes are collected, and describes
// what happened. readErr is the error that ended the first read, if any.
func (d *Decoder) noise(got []byte, readErr error, magic string) error {
	buf := bytes.Clone(got)
	found := false
	for readErr == nil && len(buf) < maxNoise+len(magic) {
		if bytes.HasSuffix(buf, []byte(magic)) {
			found = true
			break
		}
		var c byte
		if c, readErr = d.r.ReadByte(); readErr == nil {
			buf = append(buf, c)
		}
	}
	if !found && bytes.HasSuffix(buf, []byte(magic)) {
		found = true
	}
	if found {
		buf = buf[:len(buf)-len(magic)]
	}
	quote := fmt.Sprintf("%q", cut(string(buf), maxNoise))
	if len(buf) > maxNoise {
		quote += "..."
	}
	switch {
	case len(buf) == 0 && readErr != nil:
		return &handshakeError{kind: ErrRemoteExited,
			msg: fmt.Sprintf("remote closed the stream before the protocol started (%v): the remote command failed or exited (not installed? wrong path?); its error output may say why", readErr)}
	case found:
		return &handshakeError{kind: ErrNotProtocol,
			msg: fmt.Sprintf("remote printed %s before the protocol started: remove output from the remote shell's startup files (.bashrc, .profile) and login banners on stdout", quote)}
	case readErr != nil:
		return &handshakeError{kind: ErrRemoteExited,
			msg: fmt.Sprintf("remote printed %s and exited before the protocol started: the remote command failed (not installed? wrong path?)", quote)}
	default:
		return &handshakeError{kind: ErrNotProtocol,
			msg: fmt.Sprintf("remote sent %s instead of the goldsync handshake: is the remote command goldsync-agent, and of a compatible version?", quote)}
	}
}

// Negotiate returns the highest protocol version both sides speak.
func Negotiate(local, remote Hello) (uint32, error) {
	lo := max(local.MinVersion, remote.MinVersion)
	hi := min(local.MaxVersion, remote.MaxVersion)
	if lo > hi {
		sw := Inert(strings.TrimSpace(remote.Software))
		if sw == "" {
			sw = "unnamed software"
		}
		return 0, &handshakeError{kind: ErrVersion,
			msg: fmt.Sprintf("no common protocol version: we speak %d..%d, the remote (%s) speaks %d..%d: install matching goldsync versions on both sides",
				local.MinVersion, local.MaxVersion, sw, remote.MinVersion, remote.MaxVersion)}
	}
	return hi, nil
}

// Handshake sends local's hello and reads the peer's at the same time (so
// it works over unbuffered pipes), then negotiates the version. On error
// the caller must close the stream, which also ends a write still blocked.
func Handshake(enc *Encoder, dec *Decoder, local Hello) (remote Hello, version uint32, err error) {
	werr := make(chan error, 1)
	go func() { werr <- enc.WriteHello(local) }()
	remote, err = dec.ReadHello(RoleClient + RoleServer - local.Role)
	if err != nil {
		return remote, 0, err
	}
	if err := <-werr; err != nil {
		return remote, 0, fmt.Errorf("send handshake: %w", err)
	}
	version, err = Negotiate(local, remote)
	return remote, version, err
}
