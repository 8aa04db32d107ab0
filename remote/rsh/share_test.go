package rsh

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestShareConnection(t *testing.T) {
	// Short paths: a socket path must fit in 107 bytes.
	short, err := os.MkdirTemp("/tmp", "gs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	dir := filepath.Join(short, "s")
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 80))
	for _, tc := range []struct {
		rsh, dir string
		persist  time.Duration
		want     []string // words, "" = unchanged
		sockDir  string
	}{
		{rsh: "ssh -p 2222", dir: dir, persist: time.Minute, sockDir: dir,
			want: []string{"ssh", "-o", "ControlMaster=auto", "-o", "ControlPath=" + dir + "/ssh-%C", "-o", "ControlPersist=60", "-p", "2222"}},
		{rsh: "/usr/bin/ssh -i 'my key'", dir: dir, persist: 1500 * time.Millisecond, sockDir: dir,
			want: []string{"/usr/bin/ssh", "-o", "ControlMaster=auto", "-o", "ControlPath=" + dir + "/ssh-%C", "-o", "ControlPersist=1", "-i", "my key"}},
		{rsh: "", dir: dir, persist: time.Minute, sockDir: dir,
			want: []string{"ssh", "-o", "ControlMaster=auto", "-o", "ControlPath=" + dir + "/ssh-%C", "-o", "ControlPersist=60"}},
		{rsh: "ssh -o ControlPath=none", dir: dir, persist: time.Minute},
		{rsh: "ssh -S /x", dir: dir, persist: time.Minute},
		{rsh: "rsh", dir: dir, persist: time.Minute},
		{rsh: "ssh", dir: dir, persist: 0},
	} {
		got, err := ShareConnection(tc.rsh, tc.dir, tc.persist)
		if err != nil {
			t.Fatalf("%q: %v", tc.rsh, err)
		}
		if tc.want == nil {
			if want := tc.rsh; got != want && !(want == "" && got == "ssh") {
				t.Errorf("%q: changed to %q, want it unchanged", tc.rsh, got)
			}
			continue
		}
		words, err := SplitRsh(got)
		if err != nil {
			t.Fatalf("%q: result %q does not split: %v", tc.rsh, got, err)
		}
		// The socket name carries a hash of the rsh: check its shape.
		for i, w := range words {
			if strings.HasPrefix(w, "ControlPath=") && len(w) > len(tc.want[i]) {
				name := filepath.Base(strings.TrimPrefix(w, "ControlPath="))
				if !regexp.MustCompile(`^ssh-[0-9a-f]{8}-%C$`).MatchString(name) {
					t.Errorf("%q: socket name %q, want ssh-<8 hex>-%%C", tc.rsh, name)
				}
				words[i] = "ControlPath=" + filepath.Join(filepath.Dir(strings.TrimPrefix(w, "ControlPath=")), "ssh-%C")
			}
		}
		if strings.Join(words, "\x00") != strings.Join(tc.want, "\x00") {
			t.Errorf("%q: got words %q, want %q", tc.rsh, words, tc.want)
		}
		if st, err := os.Stat(tc.sockDir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%q: socket dir %s: %v %v, want a 0700 directory", tc.rsh, tc.sockDir, st, err)
		}
	}
	// A state dir too deep for a socket path: the private temp dir.
	got, err := ShareConnection("ssh", long, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, long) || !strings.Contains(got, "goldsync-ssh-") {
		t.Errorf("long state dir: %q, want the socket in the temp dir", got)
	}
	// Different keys never share a master.
	a, _ := ShareConnection("ssh -i k1", dir, time.Minute)
	b, _ := ShareConnection("ssh -i k2", dir, time.Minute)
	if a == b || strings.Contains(a, "ssh-%C") {
		t.Errorf("two rsh with other keys got the same or an unhashed socket: %q, %q", a, b)
	}
	// A state dir an ssh option cannot hold: the temp dir.
	pct := filepath.Join(short, "50%")
	if got, err := ShareConnection("ssh", pct, time.Minute); err != nil || strings.Contains(got, pct) {
		t.Errorf("state dir with %%: %q, %v; want the temp dir", got, err)
	}
	// A missing state dir is created.
	deep := filepath.Join(t.TempDir(), "new", "state", "ssh")
	if _, err := ShareConnection("ssh", deep, time.Minute); err != nil {
		t.Errorf("missing state dir: %v", err)
	}
	// A word with both quote kinds cannot be joined: no sharing, no error.
	odd := `ssh -o 'Proxy"x'"'y"`
	if got, err := ShareConnection(odd, dir, time.Minute); err != nil || got != odd {
		t.Errorf("%q: got %q, %v; want it unchanged", odd, got, err)
	}
	// A socket dir others can write is refused.
	open := filepath.Join(short, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := ShareConnection("ssh", open, time.Minute); err == nil {
		t.Errorf("a world-writable socket dir was accepted")
	}
}
