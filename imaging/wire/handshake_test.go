package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
)

func helloBytes(t *testing.T, h Hello) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := NewEncoder(&buf).WriteHello(h); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadHello(t *testing.T) {
	server := Hello{Role: RoleServer, MinVersion: 1, MaxVersion: 3, Software: "goldsync-agent 1.2"}
	good := helloBytes(t, server)
	tests := []struct {
		name    string
		in      []byte
		wantErr error  // sentinel, nil for success
		want    string // substring of the error
	}{
		{name: "clean", in: good},
		{name: "shell noise", in: append([]byte("Welcome to node004\n"), good...), wantErr: ErrNotProtocol,
			want: `remote printed "Welcome to node004\n" before the protocol started: remove output from the remote shell's startup files (.bashrc`},
		{name: "short noise", in: append([]byte("hi\n"), good...), wantErr: ErrNotProtocol, want: `remote printed "hi\n" before`},
		{name: "command not found", in: []byte("bash: line 1: goldsync-agent: command not found\n"), wantErr: ErrRemoteExited,
			want: `remote printed "bash: line 1: goldsync-agent: command not found\n" and exited before the protocol started`},
		{name: "short output then exit", in: []byte("no\n"), wantErr: ErrRemoteExited, want: `remote printed "no\n" and exited`},
		{name: "nothing", in: nil, wantErr: ErrRemoteExited, want: "remote closed the stream before the protocol started"},
		{name: "echo", in: helloBytes(t, Hello{Role: RoleClient, MinVersion: 1, MaxVersion: 1}), wantErr: ErrNotProtocol, want: "echoed our own handshake"},
		{name: "endless garbage", in: bytes.Repeat([]byte("garbage "), 100), wantErr: ErrNotProtocol, want: `remote sent "garbage garbage`},
		{name: "truncated hello", in: good[:9], want: "decode hello: max version: unexpected EOF"},
		{name: "bad range", in: append([]byte(ServerMagic), 3, 1, 0), want: "bad range 3..1"},
		{name: "software too long", in: binary.AppendUvarint([]byte(ServerMagic+"\x01\x01"), 1000), want: "software: 1000 exceeds limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewDecoder(bytes.NewReader(tt.in)).ReadHello(RoleServer)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if h != server {
					t.Errorf("hello = %+v, want %+v", h, server)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.wantErr)
			}
		})
	}
}

func TestNoiseIsBounded(t *testing.T) {
	in := bytes.Repeat([]byte("x"), 10000)
	r := bytes.NewReader(in)
	_, err := NewDecoder(r).ReadHello(RoleServer)
	if !errors.Is(err, ErrNotProtocol) {
		t.Fatalf("err = %v", err)
	}
	if len(err.Error()) > 600 {
		t.Errorf("error is %d bytes long: %s", len(err.Error()), err)
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name         string
		local, remot Hello
		want         uint32
		err          string
	}{
		{name: "same", local: Hello{MinVersion: 1, MaxVersion: 1}, remot: Hello{MinVersion: 1, MaxVersion: 1}, want: 1},
		{name: "highest common", local: Hello{MinVersion: 1, MaxVersion: 4}, remot: Hello{MinVersion: 2, MaxVersion: 7}, want: 4},
		{name: "disjoint", local: Hello{MinVersion: 1, MaxVersion: 2}, remot: Hello{MinVersion: 3, MaxVersion: 5, Software: "goldsync 9.0"},
			err: "no common protocol version: we speak 1..2, the remote (\"goldsync 9.0\") speaks 3..5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Negotiate(tt.local, tt.remot)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrVersion) {
					t.Fatalf("err = %v, want ErrVersion containing %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// Both sides write first; over an unbuffered pipe that needs the concurrent
// write Handshake does.
func TestHandshakeOverPipe(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	type result struct {
		h   Hello
		v   uint32
		err error
	}
	done := make(chan result, 1)
	go func() {
		h, v, err := Handshake(NewEncoder(b), NewDecoder(b), Hello{Role: RoleServer, MinVersion: 1, MaxVersion: 2, Software: "srv"})
		done <- result{h, v, err}
	}()
	h, v, err := Handshake(NewEncoder(a), NewDecoder(a), Hello{Role: RoleClient, MinVersion: 1, MaxVersion: 1, Software: "cli"})
	if err != nil || v != 1 || h.Software != "srv" || h.Role != RoleServer {
		t.Errorf("client: %+v %d %v", h, v, err)
	}
	r := <-done
	if r.err != nil || r.v != 1 || r.h.Software != "cli" || r.h.Role != RoleClient {
		t.Errorf("server: %+v %d %v", r.h, r.v, r.err)
	}
}
