package export

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckArgs(t *testing.T) {
	pull := func(rest ...string) []string {
		return append([]string{"--server", "--sender", "-logDtpr", "--numeric-ids", "."}, rest...)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		noPaths   bool // checkPaths false
		wantPaths []string
		wantErr   error  // errors.Is
		wantText  string // in the error
	}{
		{name: "whole image", args: pull("img/"), wantPaths: []string{"img/"}},
		{name: "subdirectory", args: pull("img/etc/"), wantPaths: []string{"img/etc/"}},
		{name: "file", args: pull("img/etc/motd"), wantPaths: []string{"img/etc/motd"}},
		{name: "dot elements are fine", args: pull("img/./etc/."), wantPaths: []string{"img/./etc/."}},
		{name: "name with dots", args: pull("img/...x/..y"), wantPaths: []string{"img/...x/..y"}},
		{name: "upload", args: []string{"--server", "-logDtpr", ".", "img/"}, wantErr: ErrReadOnly},
		{name: "sender after the dot is not a sender", args: []string{"--server", "-a", ".", "--sender", "img/"}, wantErr: ErrReadOnly},
		{name: "not a server line", args: []string{"--sender", ".", "img/"}, wantText: "no --server"},
		{name: "empty", args: nil, wantText: "no --server"},
		{name: "no path", args: pull(), wantErr: ErrBadPath},
		{name: "no dot", args: []string{"--server", "--sender", "-a"}, wantErr: ErrBadPath},
		{name: "two paths", args: pull("img/a", "img/b"), wantErr: ErrBadPath},
		{name: "bare module", args: pull("img"), wantErr: ErrBadPath, wantText: "trailing slash"},
		{name: "other module", args: pull("other/etc"), wantErr: ErrBadPath},
		{name: "prefix of module name", args: pull("imgx/etc"), wantErr: ErrBadPath},
		{name: "dotdot", args: pull("img/../etc/"), wantErr: ErrBadPath},
		{name: "dotdot at the end", args: pull("img/etc/.."), wantErr: ErrBadPath},
		{name: "dotdot deep", args: pull("img/a/b/../../../x"), wantErr: ErrBadPath},
		{name: "absolute inside module", args: pull("img//etc"), wantErr: ErrBadPath},
		{name: "absolute", args: pull("/etc/shadow"), wantErr: ErrBadPath},
		{name: "dotdot let through without path checks", args: pull("img/../etc/"), noPaths: true, wantPaths: []string{"img/../etc/"}},
		{name: "compression", args: []string{"--server", "--sender", "-logDtprz", ".", "img/"}, wantErr: ErrUnsupported},
		{name: "compression long", args: []string{"--server", "--sender", "--compress-level=9", ".", "img/"}, wantErr: ErrUnsupported},
		{name: "z after e is the e argument", args: []string{"--server", "--sender", "-logDtpre.iLsfxCz", ".", "img/"}, wantPaths: []string{"img/"}},
		{name: "hard links are fine", args: []string{"--server", "--sender", "-logDtprH", ".", "img/"}, wantPaths: []string{"img/"}},
		{name: "version would exit the library", args: []string{"--server", "--sender", "--version", ".", "img/"}, wantErr: ErrUnsupported},
		{name: "help", args: []string{"--server", "--sender", "--help", ".", "img/"}, wantErr: ErrUnsupported},
		{name: "info help", args: []string{"--server", "--sender", "--info=help", ".", "img/"}, wantErr: ErrUnsupported},
		{name: "daemon", args: []string{"--server", "--sender", "--daemon", ".", "img/"}, wantErr: ErrUnsupported},
		{name: "bare word before dot", args: []string{"--server", "--sender", "oops", ".", "img/"}, wantErr: ErrBadPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths, err := checkArgs("img", tc.args, !tc.noPaths)
			if tc.wantErr == nil && tc.wantText == "" {
				if err != nil {
					t.Fatalf("checkArgs: %v", err)
				}
				if diff := cmp.Diff(tc.wantPaths, paths); diff != "" {
					t.Errorf("paths (-want +got):\n%s", diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkArgs accepted %q", tc.args)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q, want it to say %q", err, tc.wantText)
			}
		})
	}
}

// pipeConn is a client script on one side and the server's writes on the
// other.
type pipeConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.out.Write(p) }

func TestHandshake(t *testing.T) {
	s := &Server{
		images: []Image{{Name: "rhel9", Root: "/x"}, {Name: "rocky8", Root: "/y"}},
		byName: map[string]Image{"rhel9": {Name: "rhel9", Root: "/x"}, "rocky8": {Name: "rocky8", Root: "/y"}},
	}
	pullArgs := "--server\n--sender\n-logDtpr\n.\nrhel9/\n\n"
	for _, tc := range []struct {
		name      string
		client    string
		wantOut   string // server's bytes, exactly, when not empty
		wantInOut string // in the server's bytes
		wantErr   string // in the error; "" for success
		wantArgs  []string
		wantAfter string // binary protocol bytes read ahead, after the text part
	}{
		{name: "list", client: "@RSYNCD: 32.0 sha512\n\n", wantErr: "module list sent",
			wantOut: "@RSYNCD: 27\nrhel9          \tgoldsync image (read-only)\nrocky8         \tgoldsync image (read-only)\n@RSYNCD: EXIT\n"},
		{name: "list explicitly", client: "@RSYNCD: 27.0\n#list\n", wantErr: "module list sent", wantInOut: "@RSYNCD: EXIT\n"},
		{name: "pull", client: "@RSYNCD: 32.0 sha512\nrhel9\n" + pullArgs,
			wantOut: "@RSYNCD: 27\n@RSYNCD: OK\n", wantArgs: []string{"--server", "--sender", "-logDtpr", ".", "rhel9/"}},
		{name: "read ahead", client: "@RSYNCD: 32.0\nrhel9\n" + pullArgs + "\x00\x00\x00\x00",
			wantArgs: []string{"--server", "--sender", "-logDtpr", ".", "rhel9/"}, wantAfter: "\x00\x00\x00\x00"},
		{name: "CRLF lines", client: "@RSYNCD: 32.0\r\nrhel9\r\n--server\r\n--sender\r\n.\r\nrhel9/\r\n\r\n",
			wantArgs: []string{"--server", "--sender", ".", "rhel9/"}},
		{name: "not rsync", client: "GET / HTTP/1.1\n", wantErr: "not an rsync client"},
		{name: "unknown module", client: "@RSYNCD: 32.0\nsecrets\n", wantErr: "unknown module", wantInOut: "@ERROR: Unknown module 'secrets'\n"},
		{name: "upload refused", client: "@RSYNCD: 32.0\nrhel9\n--server\n.\nrhel9/\n\n", wantErr: "read-only", wantInOut: "goldsync rsync export: the image is read-only"},
		{name: "eof in arguments", client: "@RSYNCD: 32.0\nrhel9\n--server\n", wantErr: "unexpected EOF"},
		{name: "line too long", client: "@RSYNCD: 32.0\n" + strings.Repeat("x", maxLine+10) + "\n", wantErr: "longer than"},
		{name: "NUL", client: "@RSYNCD: 32.0\nrhel9\x00\n", wantErr: "NUL"},
		{name: "too many arguments", client: "@RSYNCD: 32.0\nrhel9\n" + strings.Repeat("-v\n", maxArgs+1) + "\n", wantErr: "arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &pipeConn{in: strings.NewReader(tc.client)}
			req, err := s.handshake(c)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("handshake error %v, want %q", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				if diff := cmp.Diff(tc.wantArgs, req.args); diff != "" {
					t.Errorf("args (-want +got):\n%s", diff)
				}
				if string(req.replay) != tc.client {
					t.Errorf("replay %q, want everything the client sent, %q", req.replay, tc.client)
				}
				if got := string(req.replay[req.argsEnd:]); got != tc.wantAfter {
					t.Errorf("replay after the text part %q, want %q", got, tc.wantAfter)
				}
			}
			if tc.wantOut != "" && c.out.String() != tc.wantOut {
				t.Errorf("server wrote %q, want %q", c.out.String(), tc.wantOut)
			}
			if !strings.Contains(c.out.String(), tc.wantInOut) {
				t.Errorf("server wrote %q, want it to hold %q", c.out.String(), tc.wantInOut)
			}
		})
	}
}

func TestReadLine(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("a\r\nb\n\nrest"), maxLine)
	for _, want := range []string{"a", "b", ""} {
		got, err := readLine(br)
		if err != nil || got != want {
			t.Fatalf("readLine = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readLine(br); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("unterminated line: %v, want ErrUnexpectedEOF", err)
	}
}
