package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
