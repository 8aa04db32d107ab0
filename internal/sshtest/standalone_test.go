//go:build linux

package sshtest

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

func TestStartServerStandalone(t *testing.T) {
	s, stop, err := StartServer(t.TempDir(), Options{})
	if errors.Is(err, ErrNotInstalled) {
		t.Skip("sshtest: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	out, errOut, code := run(t, s.Command(ctx, "echo standalone"))
	if code != 0 || out != "standalone\n" {
		t.Fatalf("ssh echo: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	stop()
	if c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))); err == nil {
		c.Close()
		t.Errorf("port %d still accepts connections after stop", s.Port)
	}
	stop() // a second stop is harmless
}
