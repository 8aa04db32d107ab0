package imaging_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging"
)

func TestCheckImageDest(t *testing.T) {
	base := t.TempDir()
	mk := func(p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(base, p), 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(base, p)
	}
	full := mk("full/etc")
	full = filepath.Dir(full)
	tests := []struct {
		name, dest, stateDir string
		notImage             bool
	}{
		{name: "missing", dest: filepath.Join(base, "none")},
		{name: "empty", dest: mk("empty")},
		{name: "files, no state", dest: full, notImage: true},
		{name: "files, state dir given but missing", dest: full, stateDir: filepath.Join(base, "st"), notImage: true},
		{name: "files, default state dir", dest: mk("img/etc") + "/..", stateDir: ""},
		{name: "files, given state dir", dest: full, stateDir: mk("given")},
	}
	mk(".img.goldsync")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Clean(tt.dest)
			err := imaging.CheckImageDest(dest, tt.stateDir)
			if got := errors.Is(err, imaging.ErrNotImage); got != tt.notImage || (err != nil && !got) {
				t.Fatalf("CheckImageDest(%s, %q) = %v, want ErrNotImage %v", dest, tt.stateDir, err, tt.notImage)
			}
			if err != nil && !strings.Contains(err.Error(), "etc") {
				t.Errorf("error %q does not name an entry", err)
			}
		})
	}
}
