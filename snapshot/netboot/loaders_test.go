package netboot

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixtureLoaders makes a fake server's package files under a temp dir and
// returns sources pointing at them: the default layout, with iPXE's EFI
// image missing.
func fixtureLoaders(t *testing.T) (string, []LoaderSource) {
	t.Helper()
	dir := t.TempDir()
	var srcs []LoaderSource
	for _, s := range DefaultLoaderSources {
		s.From = filepath.Join(dir, s.From)
		srcs = append(srcs, s)
		if strings.HasSuffix(s.From, "ipxe.efi") {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(s.From), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.From, []byte("loader "+filepath.Base(s.From)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, srcs
}

func TestInstallLoaders(t *testing.T) {
	_, srcs := fixtureLoaders(t)
	tftp := t.TempDir()
	ctx := context.Background()
	all := []string{
		"linux-install/grub/grubnetx64.efi",
		"linux-install/grub/grubx64.efi",
		"linux-install/grub/shimx64.efi",
		"linux-install/ipxe/undionly.kpxe",
		"linux-install/ldlinux.c32",
		"linux-install/pxelinux.0",
	}

	res, err := InstallLoaders(ctx, LoaderOptions{TFTPBoot: tftp, Sources: srcs})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all, res.Installed); diff != "" {
		t.Errorf("first run installed (-want +got):\n%s", diff)
	}
	if len(res.Notices) != 1 || !strings.Contains(res.Notices[0], "ipxe.efi not found: skipped (install package ipxe") {
		t.Errorf("notices %q, want one about ipxe.efi", res.Notices)
	}
	// Another tool's grub/grub.cfg: said, not touched.
	if err := os.MkdirAll(filepath.Join(tftp, GrubPrefixDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tftp, GrubPrefixDir, GrubSharedName), []byte("menuentry x {\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = InstallLoaders(ctx, LoaderOptions{TFTPBoot: tftp, Sources: srcs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Notices) != 2 || !strings.Contains(res.Notices[1], "grub/grub.cfg was not written by goldsync") {
		t.Errorf("notices %q, want one about grub/grub.cfg", res.Notices)
	}
	if err := os.RemoveAll(filepath.Join(tftp, GrubPrefixDir)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ file, data string }{
		{"linux-install/pxelinux.0", "loader pxelinux.0"},
		{"linux-install/grub/grubx64.efi", "loader grubnetx64.efi.signed"},
		{"linux-install/grub/grubnetx64.efi", "loader grubnetx64.efi.signed"},
		{"linux-install/grub/shimx64.efi", "loader shimx64.efi.signed"},
	} {
		got, err := os.ReadFile(filepath.Join(tftp, want.file))
		if err != nil || string(got) != want.data {
			t.Errorf("%s = %q, %v; want %q", want.file, got, err, want.data)
		}
	}
	modes := walkModes(t, tftp)
	for p, m := range modes {
		if want := os.FileMode(0o644); !m.IsDir() && m != want || m.IsDir() && m.Perm() != 0o755 {
			t.Errorf("%s: mode %v", p, m)
		}
	}

	// Again: nothing to do.
	res, err = InstallLoaders(ctx, LoaderOptions{TFTPBoot: tftp, Sources: srcs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Installed) != 0 || !cmp.Equal(all, res.Unchanged) {
		t.Errorf("second run: installed %q, unchanged %q; want nothing installed", res.Installed, res.Unchanged)
	}

	// A package update changes one loader; a symlink planted where
	// another goes is replaced by the file, its target untouched.
	if err := os.WriteFile(srcs[0].From, []byte("pxelinux 6.04"), 0o644); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(tftp, "linux-install/grub/shimx64.efi")
	if err := os.Remove(shim); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, shim); err != nil {
		t.Fatal(err)
	}
	res, err = InstallLoaders(ctx, LoaderOptions{TFTPBoot: tftp, Sources: srcs})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"linux-install/grub/shimx64.efi", "linux-install/pxelinux.0"}; !cmp.Equal(want, res.Installed) {
		t.Errorf("after an update: installed %q, want %q", res.Installed, want)
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep" {
		t.Errorf("symlink target written: %q", got)
	}
	if fi, err := os.Lstat(shim); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("shimx64.efi: %v, %v; want a regular file", fi, err)
	}
}

func TestInstallLoadersRefuses(t *testing.T) {
	tests := []struct {
		name    string
		src     LoaderSource
		wantErr string
	}{
		{name: "relative source", src: LoaderSource{From: "pxelinux.0", To: []string{"a"}}, wantErr: "want an absolute path"},
		{name: "no destination", src: LoaderSource{From: "/x"}, wantErr: "want an absolute path and a destination"},
		{name: "destination outside", src: LoaderSource{From: "/x", To: []string{"../x"}}, wantErr: "bad destination"},
		{name: "absolute destination", src: LoaderSource{From: "/x", To: []string{"/x"}}, wantErr: "bad destination"},
		{name: "unclean destination", src: LoaderSource{From: "/x", To: []string{"a//b"}}, wantErr: "bad destination"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := InstallLoaders(context.Background(), LoaderOptions{TFTPBoot: t.TempDir(), Sources: []LoaderSource{tt.src}})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("InstallLoaders = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	// A source that is a directory is an error, the others still go in.
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	if err := os.WriteFile(ok, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tftp := t.TempDir()
	res, err := InstallLoaders(context.Background(), LoaderOptions{TFTPBoot: tftp, Sources: []LoaderSource{
		{From: dir, To: []string{"d"}}, {From: ok, To: []string{"linux-install/ok"}},
	}})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("error %v, want one saying not a regular file", err)
	}
	if res == nil || !cmp.Equal([]string{"linux-install/ok"}, res.Installed) {
		t.Errorf("result %+v, want linux-install/ok installed", res)
	}
}
