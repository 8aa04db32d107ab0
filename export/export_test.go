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

// TestWithoutLandlock plays a kernel without Landlock: New refuses unless
// Unconfined, and then says what is left.
func TestWithoutLandlock(t *testing.T) {
	img := mkImage(t, "img")
	saved := landlockVersion
	landlockVersion = func() int { return 0 }
	defer func() { landlockVersion = saved }()
	if _, err := New(Options{Images: []Image{{Name: "img", Root: img}}}); !errors.Is(err, ErrNoLandlock) {
		t.Fatalf("New without Landlock: %v, want ErrNoLandlock", err)
	}
	s, err := New(Options{Images: []Image{{Name: "img", Root: img}}, Unconfined: true})
	if err != nil {
		t.Fatalf("New without Landlock, Unconfined: %v", err)
	}
	c := s.Confinement()
	want := "UNCONFINED"
	if os.Geteuid() == 0 {
		want = "chroot into the image"
	}
	if !strings.Contains(c, "NO Landlock") && !strings.Contains(c, "no Landlock") || !strings.Contains(c, want) {
		t.Errorf("Confinement() = %q, want it to say there is no Landlock and %q", c, want)
	}
}

func TestNewChecksImages(t *testing.T) {
	img := mkImage(t, "img")
	file := filepath.Join(img, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		images []Image
		want   string
	}{
		{name: "none", want: "no images"},
		{name: "bad name", images: []Image{{Name: "a/b", Root: img}}, want: "only letters"},
		{name: "dot name", images: []Image{{Name: ".x", Root: img}}, want: "must not start"},
		{name: "duplicate", images: []Image{{Name: "a", Root: img}, {Name: "a", Root: img}}, want: "twice"},
		{name: "relative root", images: []Image{{Name: "a", Root: "img"}}, want: "absolute"},
		{name: "missing root", images: []Image{{Name: "a", Root: img + "/none"}}, want: "no such file"},
		{name: "file root", images: []Image{{Name: "a", Root: file}}, want: "not a directory"},
		{name: "whole filesystem", images: []Image{{Name: "a", Root: "/"}}, want: "whole filesystem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Images: tc.images})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
