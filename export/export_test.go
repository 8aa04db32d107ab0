package export

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestListModules(t *testing.T) {
	a, b := mkImage(t, "a"), mkImage(t, "b")
	_, addr := serve(t, []Image{{Name: "rhel9", Root: a}, {Name: "rocky8.x86_64", Root: b}}, nil)
	out, code := rsyncRun(t, "rsync://"+addr+"/")
	if code != 0 {
		t.Fatalf("rsync exit %d:\n%s", code, out)
	}
	want := "rhel9          \tgoldsync image (read-only)\nrocky8.x86_64  \tgoldsync image (read-only)\n"
	if out != want {
		t.Errorf("module list:\n%q\nwant\n%q", out, want)
	}
}

func TestPullSmall(t *testing.T) {
	img := mkImage(t, "img")
	if err := os.MkdirAll(filepath.Join(img, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(img, "etc", "motd"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr := serve(t, []Image{{Name: "img", Root: img}}, nil)
	dst := filepath.Join(t.TempDir(), "dst")
	out, code := rsyncRun(t, "-a", "rsync://"+addr+"/img/", dst+"/")
	if code != 0 {
		t.Fatalf("rsync exit %d:\n%s", code, out)
	}
	got, err := os.ReadFile(filepath.Join(dst, "etc", "motd"))
	if err != nil || string(got) != "hello\n" {
		t.Fatalf("pulled etc/motd = %q, %v", got, err)
	}
	if strings.TrimSpace(out) != "" {
		t.Logf("rsync said: %s", out)
	}
}

// TestIdleTimeout stalls after the handshake: the child must give up and
// the connection close, instead of a process waiting forever.
func TestIdleTimeout(t *testing.T) {
	img := mkImage(t, "img")
	_, addr := serve(t, []Image{{Name: "img", Root: img}}, func(s *Server) { s.opts.IdleTimeout = 300 * time.Millisecond })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute)) // the test's own bound, far above the timeout
	br := bufio.NewReader(c)
	expect := func(want string) {
		t.Helper()
		line, err := br.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("server said %q, %v; want %q", line, err, want)
		}
	}
	expect("@RSYNCD: 27\n")
	io.WriteString(c, "@RSYNCD: 27.0\nimg\n")
	expect("@RSYNCD: OK\n")
	io.WriteString(c, "--server\n--sender\n-a\n.\nimg/\n\n")
	// The checksum seed comes, then the server waits for the filter list
	// this client never sends.
	seed := make([]byte, 4)
	if _, err := io.ReadFull(br, seed); err != nil {
		t.Fatalf("checksum seed: %v", err)
	}
	rest, err := io.ReadAll(br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the stalled connection open (read %d bytes)", len(rest))
	}
}
