package exclude

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadFilesAndCheck(t *testing.T) {
	f := filepath.Join(t.TempDir(), "excludes")
	if err := os.WriteFile(f, []byte("# comment\n/proc/*\n\n  ; also a comment\n  /tmp/*  \n/a[\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := ReadFiles([]string{f})
	want := []Pattern{{Text: "/proc/*", From: f + ":2"}, {Text: "/tmp/*", From: f + ":5"}, {Text: "/a[", From: f + ":6"}}
	if err != nil || !cmp.Equal(want, ps) {
		t.Fatalf("ReadFiles: %v (-want +got):\n%s", err, cmp.Diff(want, ps))
	}
	if got, err := Check(ps[:2]); err != nil || !cmp.Equal(got, []string{"/proc/*", "/tmp/*"}) {
		t.Errorf("Check(good) = %q, %v", got, err)
	}
	_, err = Check(ps)
	if err == nil || !strings.HasPrefix(err.Error(), f+":6: bad exclude pattern \"/a[\": ") || strings.Contains(err.Error(), "exclude pattern 1") {
		t.Errorf("Check(bad) = %v; want it to name %s:6 once", err, f)
	}
	if _, err := ReadFiles([]string{f + ".missing"}); !os.IsNotExist(err) {
		t.Errorf("ReadFiles(missing) = %v, want not-exist", err)
	}
}
