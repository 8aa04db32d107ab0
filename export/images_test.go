package export

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseImages(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseImages([]string{"rhel9=/diskless/rhel9/root", "test=rel/dir"})
	if err != nil || len(got) != 2 || got[0] != (Image{Name: "rhel9", Root: "/diskless/rhel9/root"}) || got[1].Root != filepath.Join(wd, "rel/dir") {
		t.Errorf("ParseImages: %+v, %v", got, err)
	}
	for _, bad := range []string{"rhel9", "=/x", "x="} {
		if _, err := ParseImages([]string{bad}); err == nil {
			t.Errorf("ParseImages(%q) took it", bad)
		}
	}
}
