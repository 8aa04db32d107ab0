package reliability

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goldsync/goldsync/internal/sshtest"
)

// TestRestrictedReceiveKey sets up the golden node's key on the image server
// as agent/hooks/README.md says — restrict,command="goldsync receive --stdio
// --image NAME" in authorized_keys — and checks through the real sshd that
// the golden node can push to its image and do nothing else: a push naming
// another image lands in its own, a shell command does not run, and
// forwarding is refused.
func TestRestrictedReceiveKey(t *testing.T) {
	needRoot(t, "the image server writes owners and runs as root")
	srv := sshtest.Start(t, sshtest.Options{})
	base := t.TempDir()
	golden := filepath.Join(base, "golden")
	writeFile(t, golden, "etc/hostname", "golden\n", 0o644)
	img1, img2 := filepath.Join(base, "images", "img1"), filepath.Join(base, "images", "img2")
	os.MkdirAll(filepath.Dir(img1), 0o755)
	cfg := filepath.Join(base, "goldsync.toml")
	conf := "[[image]]\nname = \"img1\"\nsource = \"" + golden + "\"\nroot = \"" + img1 + "\"\n\n" +
		"[[image]]\nname = \"img2\"\nsource = \"" + golden + "\"\nroot = \"" + img2 + "\"\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(srv.ClientKey() + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	line := `restrict,command="` + goldsync + ` --config ` + cfg + ` receive --stdio --image img1" ` + string(pub)
	if err := os.WriteFile(filepath.Join(srv.Dir, "authorized_keys"), []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	// The golden node pushes, naming img2 and asking for no deletes limit:
	// the server's config decides.
	push := exec.CommandContext(ctx, filepath.Join(binDir, "goldsync-agent.real"), "--root", golden,
		"--state-dir", filepath.Join(base, "agent-state"), "push", "--to", srv.Target(img2),
		"-e", srv.RshCommand(), "--receive-arg=--max-delete=-1")
	out, err := push.CombinedOutput()
	t.Logf("push: %v\n%s", err, out)
	if err != nil {
		t.Errorf("the push to the key's own image failed: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(img1, "etc/hostname")); err != nil || string(b) != "golden\n" {
		t.Errorf("img1/etc/hostname: %q, %v; want the pushed file in the key's image", b, err)
	}
	if _, err := os.Lstat(img2); err == nil {
		t.Errorf("the push reached %s, the image the client named", img2)
	}

	// A shell command runs the forced receive instead, which fails on
	// garbage and runs nothing.
	pwned := filepath.Join(base, "pwned")
	out, err = srv.Command(ctx, "touch "+pwned).CombinedOutput()
	t.Logf("shell command: %v: %s", err, strings.TrimSpace(string(out)))
	if _, serr := os.Lstat(pwned); serr == nil {
		t.Errorf("the key ran a shell command")
	}
	if err == nil {
		t.Errorf("the shell command's session succeeded")
	}

	// No forwarding: a stdio forward to the sshd itself is refused.
	fwd := exec.CommandContext(ctx, srv.SSHArgs()[0], append(srv.SSHArgs()[1:], "-W", "127.0.0.1:22", srv.UserHost())...)
	fwd.Stdin = strings.NewReader("")
	out, err = fwd.CombinedOutput()
	t.Logf("forward: %v: %s", err, strings.TrimSpace(string(out)))
	if err == nil {
		t.Errorf("the key could open a forwarding channel")
	}
}
