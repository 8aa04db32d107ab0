package boot

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFilesAndDetect(t *testing.T) {
	for _, f := range []Flavor{InitramfsTools, Dracut} {
		fs, err := Files(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range fs {
			if len(file.Data) == 0 {
				t.Errorf("%s: %s is empty", f, file.Path)
			}
			if file.Mode&0o111 != 0 {
				// Every script is valid sh.
				cmd := exec.Command("sh", "-n")
				cmd.Stdin = strings.NewReader(string(file.Data))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s: sh -n %s: %v\n%s", f, file.Path, err, out)
				}
			}
		}
	}
	if _, err := Files("mkinitrd"); err == nil {
		t.Error("Files(mkinitrd) did not fail")
	}

	root := t.TempDir()
	if got := Detect(root); len(got) != 0 {
		t.Errorf("Detect(empty) = %v", got)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/sbin/mkinitramfs"), []byte("#!/bin/sh\n"), 0o755))
	if got := Detect(root); !slices.Equal(got, []Flavor{InitramfsTools}) {
		t.Errorf("Detect(initramfs-tools) = %v", got)
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/dracut"), []byte("#!/bin/sh\n"), 0o755))
	if got := Detect(root); !slices.Equal(got, []Flavor{InitramfsTools, Dracut}) {
		t.Errorf("Detect(both) = %v", got)
	}
}

func TestInstallIdempotent(t *testing.T) {
	root := t.TempDir()
	if _, err := Install(context.Background(), InstallOptions{Root: root, NoRegenerate: true}); err == nil {
		t.Fatal("Install into a root without an initramfs tool did not fail")
	}
	o := InstallOptions{Root: root, Flavors: []Flavor{InitramfsTools, Dracut}, NoRegenerate: true}
	res, err := Install(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 6 || len(res.Unchanged) != 0 {
		t.Errorf("first install: written %v, unchanged %v", res.Written, res.Unchanged)
	}
	fi, err := os.Stat(filepath.Join(root, ScriptPath))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v %v", ScriptPath, fi, err)
	}
	res, err = Install(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 0 || len(res.Unchanged) != 6 {
		t.Errorf("second install: written %v, unchanged %v", res.Written, res.Unchanged)
	}
	// A changed file is put right.
	if err := os.WriteFile(filepath.Join(root, ScriptPath), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err = Install(context.Background(), o)
	if err != nil || !slices.Equal(res.Written, []string{ScriptPath}) {
		t.Errorf("repair: written %v, %v", res.Written, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(filepath.Join(root, ScriptPath)))
	for _, e := range ents {
		if strings.Contains(e.Name(), "tmp") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}
