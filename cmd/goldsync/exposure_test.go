package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/internal/exitcode"
)

// tmpfsAt mounts a tmpfs at dir with flags and unmounts it at cleanup.
func tmpfsAt(t *testing.T, dir string, flags uintptr) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: needs root to mount a tmpfs")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("goldsync-test", dir, "tmpfs", flags, "size=1m"); err != nil {
		t.Skipf("SKIPPED: cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

// TestExposureWarnings: render exports and status warn about an image
// whose filesystem is mounted without nosuid,nodev, and not about one
// mounted with them.
func TestExposureWarnings(t *testing.T) {
	base := t.TempDir()
	unsafe, safe := filepath.Join(base, "unsafe"), filepath.Join(base, "safe")
	tmpfsAt(t, unsafe, 0)
	tmpfsAt(t, safe, unix.MS_NOSUID|unix.MS_NODEV)
	for _, d := range []string{"unsafe/root", "unsafe/snapshot", "safe/root", "safe/snapshot"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	_, errs := mustRun(t, "render", "exports", "--image", unsafe+"/root", "--snapshot-dir", unsafe+"/snapshot")
	for _, want := range []string{unsafe + "/root is on " + unsafe + " (tmpfs) mounted without nosuid", unsafe + "/snapshot is on", "without nodev", "mount it nosuid,nodev"} {
		if !strings.Contains(errs, want) {
			t.Errorf("render exports of an unsafe image: stderr lacks %q:\n%s", want, errs)
		}
	}
	if _, errs := mustRun(t, "render", "exports", "--image", safe+"/root", "--snapshot-dir", safe+"/snapshot"); strings.Contains(errs, "warning") {
		t.Errorf("render exports of a nosuid,nodev image warns:\n%s", errs)
	}
	out, _ := mustRun(t, "--json", "render", "exports", "--image", unsafe+"/root", "--snapshot-dir", unsafe+"/snapshot")
	var rendered struct {
		Warnings []struct{ Dir, Problem string }
	}
	if err := json.Unmarshal([]byte(out), &rendered); err != nil || len(rendered.Warnings) != 4 {
		t.Errorf("render exports --json: %d warnings, %v, want 4 (suid and dev, twice):\n%s", len(rendered.Warnings), err, out)
	}

	cfg := filepath.Join(base, "goldsync.toml")
	put(t, cfg, fmt.Sprintf("[[image]]\nname = \"bad\"\nsource = \"golden:/\"\nroot = %q\n\n[[image]]\nname = \"good\"\nsource = \"golden:/\"\nroot = %q\n",
		unsafe+"/root", safe+"/root"))
	// Neither image was ever synced: status says so with exit 30.
	out, errs, code := run(t, "--config", cfg, "status")
	if code != exitcode.Timeout {
		t.Errorf("status of images never synced: exit %d, want %d\n%s", code, exitcode.Timeout, errs)
	}
	if !strings.Contains(out, "bad: warning: "+unsafe+"/root is on "+unsafe+" (tmpfs) mounted without nosuid") || strings.Contains(out, "good: warning") {
		t.Errorf("status: want warnings for image bad only:\n%s", out)
	}
	out, _, _ = run(t, "--config", cfg, "--json", "status")
	var reports []struct {
		Image    string
		Warnings []struct{ Dir, Problem string } `json:"exposure_warnings"`
	}
	if err := json.Unmarshal([]byte(out), &reports); err != nil || len(reports) != 2 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(reports[0].Warnings) != 2 || reports[0].Warnings[0].Problem != "suid" || reports[0].Warnings[1].Problem != "dev" || len(reports[1].Warnings) != 0 {
		t.Errorf("status --json warnings: %+v", reports)
	}
}
