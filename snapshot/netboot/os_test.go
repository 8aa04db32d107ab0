package netboot

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
	}{
		{name: "rhel5compute"},
		{name: "RHEL-8.10_x86_64"},
		{name: "a"},
		{name: "", wantErr: "empty"},
		{name: ".", wantErr: `"." and ".." are not allowed`},
		{name: "..", wantErr: `"." and ".." are not allowed`},
		{name: "a..b", wantErr: `"." and ".." are not allowed`},
		{name: "a/b", wantErr: "only letters, digits"},
		{name: "../../etc", wantErr: "only letters, digits"},
		{name: "a b", wantErr: "only letters, digits"},
		{name: "caf\xc3\xa9", wantErr: "only letters, digits"},
		{name: strings.Repeat("x", 65), wantErr: "longer than 64 bytes"},
		{name: "pxelinux.cfg", wantErr: "reserved"},
		{name: "goldsync", wantErr: "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckName(tt.name)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CheckName(%q) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestOSValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(o *OS)
		wantErr string
	}{
		{name: "seed OS", edit: func(o *OS) {}},
		{name: "IPv4 server", edit: func(o *OS) { o.NFSServer = "10.8.0.2" }},
		{name: "IPv6 server", edit: func(o *OS) { o.NFSServer = "fe80::1" }, wantErr: "want an IPv4 address or a host name"},
		{name: "no server", edit: func(o *OS) { o.NFSServer = "" }, wantErr: "NFS server: not set"},
		{name: "relative location", edit: func(o *OS) { o.Location = "diskless/x" }, wantErr: "location: \"diskless/x\": want a clean absolute path"},
		{name: "unclean image root", edit: func(o *OS) { o.ImageRoot = "/diskless/../root" }, wantErr: "image root"},
		{name: "blank in snapshot dir", edit: func(o *OS) { o.SnapshotDir = "/d/my snap" }, wantErr: "special characters"},
		{name: "no kernel", edit: func(o *OS) { o.Kernel = "" }, wantErr: "kernel version not set"},
		{name: "kernel with a blank", edit: func(o *OS) { o.Kernel = "2.6 x" }, wantErr: "only letters, digits"},
		{name: "kernel file escapes", edit: func(o *OS) { o.KernelFile = "../vmlinuz" }, wantErr: "bad kernel file"},
		{name: "initrd file absolute", edit: func(o *OS) { o.InitrdFile = "/initrd.img" }, wantErr: "bad initrd file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := rhel5
			tt.edit(&o)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestOSStore(t *testing.T) {
	// Modes must not depend on the umask: TFTP servers run unprivileged.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	tftp := t.TempDir()
	if list, err := ListOS(tftp); err != nil || list != nil {
		t.Fatalf("ListOS on an empty tree = %v, %v; want nothing", list, err)
	}
	if _, err := LoadOS(tftp, "rhel5compute"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadOS of a missing OS = %v, want fs.ErrNotExist", err)
	}
	rhel8 := rhel5
	rhel8.Name, rhel8.Kernel, rhel8.KernelFile, rhel8.InitrdFile = "rhel8", "4.18.0-553.el8", "rhel8/vmlinuz", "rhel8/initrd.img"
	for _, o := range []OS{rhel8, rhel5} {
		if err := SaveOS(tftp, o); err != nil {
			t.Fatal(err)
		}
	}
	got, err := LoadOS(tftp, "rhel5compute")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rhel5, got); diff != "" {
		t.Errorf("LoadOS (-want +got):\n%s", diff)
	}
	// Leftovers that are not records are ignored.
	store := filepath.Join(tftp, filepath.FromSlash(StoreDir))
	for _, f := range []string{".goldsync-tmp-x.json-ABC", "README"} {
		if err := os.WriteFile(filepath.Join(store, f), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list, err := ListOS(tftp)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]OS{rhel5, rhel8}, list); diff != "" {
		t.Errorf("ListOS (-want +got):\n%s", diff)
	}
	modes := walkModes(t, tftp)
	for _, p := range []string{"linux-install", "linux-install/goldsync", "linux-install/goldsync/os"} {
		if modes[p] != fs.ModeDir|0o755 {
			t.Errorf("%s: mode %v, want drwxr-xr-x", p, modes[p])
		}
	}
	if m := modes["linux-install/goldsync/os/rhel5compute.json"]; m != 0o644 {
		t.Errorf("record mode %v, want 0644", m)
	}

	// Saving again replaces.
	rhel5b := rhel5
	rhel5b.Kernel = "2.6.18-164.el5"
	if err := SaveOS(tftp, rhel5b); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadOS(tftp, rhel5.Name); got.Kernel != "2.6.18-164.el5" {
		t.Errorf("kernel after replacing = %s", got.Kernel)
	}

	// An invalid OS is not saved; a damaged record is reported by name.
	bad := rhel5
	bad.Name = "../x"
	if err := SaveOS(tftp, bad); err == nil {
		t.Error("SaveOS accepted a bad name")
	}
	if err := os.WriteFile(filepath.Join(store, "broken.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ListOS(tftp); err == nil || !strings.Contains(err.Error(), "goldsync/os/broken.json") {
		t.Errorf("ListOS with a damaged record = %v, want an error naming it", err)
	}
	if err := os.WriteFile(filepath.Join(store, "broken.json"), []byte(`{"name":"other"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOS(tftp, "broken"); err == nil || !strings.Contains(err.Error(), `records OS "other"`) {
		t.Errorf("LoadOS of a misnamed record = %v", err)
	}
	if err := RemoveOS(tftp, "broken"); err != nil {
		t.Errorf("RemoveOS of a damaged record: %v", err)
	}
	if _, err := LoadOS(tftp, "../../etc/passwd"); err == nil || !strings.Contains(err.Error(), "bad OS name") {
		t.Errorf("LoadOS with a path for a name = %v", err)
	}
}

// image builds a fake image root: files maps image paths to contents,
// links maps image paths to symlink targets.
func image(t *testing.T, files, links map[string]string) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "RHEL5-AS", "root")
	if err := os.MkdirAll(filepath.Join(root, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "secret"), []byte("outside the image"), 0o600); err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(p))); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var rhelBoot = map[string]string{
	"boot/vmlinuz-2.6.18-128.el5":       "kernel 128",
	"boot/initrd-2.6.18-128.el5.img":    "initrd 128",
	"boot/vmlinuz-2.6.18-164.el5":       "kernel 164",
	"boot/initrd-2.6.18-164.el5.img":    "initrd 164",
	"boot/vmlinuz-4.18.0-10":            "kernel 4.18",
	"boot/initramfs-4.18.0-10.img":      "initramfs 4.18",
	"boot/initramfs-4.18.0-10kdump.img": "kdump",
	"boot/config-4.18.0-10":             "config",
	"boot/.vmlinuz-4.18.0-10.hmac":      "hmac",
}

func with(base map[string]string, extra map[string]string) map[string]string {
	m := make(map[string]string)
	for k, v := range base {
		m[k] = v
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestAddOS(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		links      map[string]string
		kernel     string
		wantKernel string
		wantFiles  [2]string // vmlinuz, initrd.img contents
		wantErr    string
	}{
		{
			name:       "newest chosen",
			files:      rhelBoot,
			wantKernel: "4.18.0-10",
			wantFiles:  [2]string{"kernel 4.18", "initramfs 4.18"},
		},
		{
			name:       "named one chosen",
			files:      rhelBoot,
			kernel:     "2.6.18-128.el5",
			wantKernel: "2.6.18-128.el5",
			wantFiles:  [2]string{"kernel 128", "initrd 128"},
		},
		{
			name: "Debian names, numeric compare",
			files: map[string]string{
				"boot/vmlinuz-5.10.0-9-amd64":     "k9",
				"boot/initrd.img-5.10.0-9-amd64":  "i9",
				"boot/vmlinuz-5.10.0-28-amd64":    "k28",
				"boot/initrd.img-5.10.0-28-amd64": "i28",
			},
			wantKernel: "5.10.0-28-amd64",
			wantFiles:  [2]string{"k28", "i28"},
		},
		{
			name:    "newest has no initrd",
			files:   with(rhelBoot, map[string]string{"boot/vmlinuz-5.14.0-70.el9": "k"}),
			wantErr: "kernel 5.14.0-70.el9 has no initrd in ",
		},
		{
			name:    "named kernel has no initrd names the files tried",
			files:   with(rhelBoot, map[string]string{"boot/vmlinuz-3.10.0": "k"}),
			kernel:  "3.10.0",
			wantErr: "(looked for initramfs-3.10.0.img, initrd-3.10.0.img, initrd.img-3.10.0)",
		},
		{
			name:    "unknown kernel lists those found",
			files:   rhelBoot,
			kernel:  "9.9",
			wantErr: "no kernel 9.9 in ",
		},
		{
			name:    "no kernels",
			files:   map[string]string{"boot/grub/grub.conf": "x"},
			wantErr: "no kernel (vmlinuz-VERSION) in ",
		},
		{
			name:       "absolute symlink resolved inside the image",
			files:      map[string]string{"boot/real/vmlinuz": "real kernel", "boot/initramfs-6.1.img": "real initrd"},
			links:      map[string]string{"boot/vmlinuz-6.1": "/boot/real/vmlinuz"},
			wantKernel: "6.1",
			wantFiles:  [2]string{"real kernel", "real initrd"},
		},
		{
			name:       "relative symlink inside the image",
			files:      map[string]string{"usr/lib/modules/6.2/vmlinuz": "mod kernel", "boot/initramfs-6.2.img": "i"},
			links:      map[string]string{"boot/vmlinuz-6.2": "../usr/lib/modules/6.2/vmlinuz"},
			wantKernel: "6.2",
			wantFiles:  [2]string{"mod kernel", "i"},
		},
		{
			name:    "relative symlink leaving the image",
			files:   map[string]string{"boot/initramfs-6.3.img": "i"},
			links:   map[string]string{"boot/vmlinuz-6.3": "../../../secret"},
			wantErr: "leads outside the image",
		},
		{
			name:    "initrd symlink leaving the image",
			files:   map[string]string{"boot/vmlinuz-6.4": "k"},
			links:   map[string]string{"boot/initramfs-6.4.img": "../../../../../../../../secret"},
			wantErr: "leads outside the image",
		},
		{
			name:    "absolute symlink is confined to the image",
			files:   map[string]string{"boot/initramfs-6.5.img": "i"},
			links:   map[string]string{"boot/vmlinuz-6.5": "/../../secret"},
			wantErr: "secret: no such file",
		},
		{
			name:    "symlink to a directory",
			files:   map[string]string{"boot/initramfs-6.6.img": "i"},
			links:   map[string]string{"boot/vmlinuz-6.6": "/boot"},
			wantErr: "boot is not a regular file",
		},
		{
			name:    "symlink loop",
			files:   map[string]string{"boot/initramfs-6.7.img": "i"},
			links:   map[string]string{"boot/vmlinuz-6.7": "vmlinuz-6.7"},
			wantErr: "more than 40 symlinks",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := image(t, tt.files, tt.links)
			tftp := t.TempDir()
			o, _, err := AddOS(context.Background(), AddOSOptions{
				TFTPBoot:  tftp,
				Name:      "rhel5compute",
				Location:  filepath.Dir(img),
				NFSServer: "server",
				Kernel:    tt.kernel,
			})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("AddOS = %v, want an error containing %q", err, tt.wantErr)
				}
				if _, err := os.Lstat(filepath.Join(tftp, "linux-install", "rhel5compute", "vmlinuz")); err == nil {
					t.Error("kernel copied despite the error")
				}
				if list, _ := ListOS(tftp); len(list) != 0 {
					t.Errorf("OS recorded despite the error: %v", list)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := OS{
				Name:        "rhel5compute",
				Location:    filepath.Dir(img),
				ImageRoot:   img,
				SnapshotDir: filepath.Join(filepath.Dir(img), "snapshot"),
				NFSServer:   "server",
				Kernel:      tt.wantKernel,
				KernelFile:  "rhel5compute/vmlinuz",
				InitrdFile:  "rhel5compute/initrd.img",
				Style:       StyleDisklessrc, // no mkinitramfs or dracut in the image
			}
			if diff := cmp.Diff(want, o); diff != "" {
				t.Errorf("AddOS (-want +got):\n%s", diff)
			}
			for i, f := range []string{"vmlinuz", "initrd.img"} {
				p := filepath.Join(tftp, "linux-install", "rhel5compute", f)
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != tt.wantFiles[i] {
					t.Errorf("%s holds %q, want %q", f, data, tt.wantFiles[i])
				}
				if fi, _ := os.Lstat(p); fi.Mode() != 0o644 {
					t.Errorf("%s: mode %v, want 0644", f, fi.Mode())
				}
			}
			stored, err := LoadOS(tftp, "rhel5compute")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("stored OS (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddOSOptions(t *testing.T) {
	img := image(t, rhelBoot, nil)
	tests := []struct {
		name    string
		opts    AddOSOptions
		wantErr string
	}{
		{name: "bad name", opts: AddOSOptions{Name: "a/b", Location: filepath.Dir(img), NFSServer: "s"}, wantErr: "bad OS name"},
		{name: "no location", opts: AddOSOptions{Name: "x", NFSServer: "s"}, wantErr: "location: not set"},
		{name: "no server", opts: AddOSOptions{Name: "x", Location: filepath.Dir(img)}, wantErr: "NFS server: not set"},
		{name: "bad kernel version", opts: AddOSOptions{Name: "x", Location: filepath.Dir(img), NFSServer: "s", Kernel: "4.18 x"}, wantErr: "only letters, digits"},
		{name: "missing image", opts: AddOSOptions{Name: "x", Location: "/nonexistent/goldsync", NFSServer: "s"}, wantErr: "image: stat /nonexistent/goldsync/root"},
		{name: "missing TFTP root", opts: AddOSOptions{TFTPBoot: "/nonexistent/tftp", Name: "x", Location: filepath.Dir(img), NFSServer: "s"}, wantErr: "open TFTP root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.TFTPBoot == "" {
				tt.opts.TFTPBoot = t.TempDir()
			}
			_, _, err := AddOS(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("AddOS = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}

	// ImageRoot alone gives Location and SnapshotDir.
	o, _, err := AddOS(context.Background(), AddOSOptions{TFTPBoot: t.TempDir(), Name: "x", ImageRoot: img, NFSServer: "10.8.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Location != filepath.Dir(img) || o.SnapshotDir != filepath.Join(filepath.Dir(img), "snapshot") {
		t.Errorf("defaults from ImageRoot: location %s, snapshot %s", o.Location, o.SnapshotDir)
	}

	// A cancelled context copies nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tftp := t.TempDir()
	if _, _, err := AddOS(ctx, AddOSOptions{TFTPBoot: tftp, Name: "x", ImageRoot: img, NFSServer: "s"}); !errors.Is(err, context.Canceled) {
		t.Errorf("AddOS with a cancelled context = %v", err)
	}
	if _, err := os.Lstat(filepath.Join(tftp, "linux-install", "x", "vmlinuz")); err == nil {
		t.Error("kernel copied despite cancellation")
	}
}

// An image whose boot directory is a symlink out of the image is refused.
func TestAddOSBootEscapes(t *testing.T) {
	img := image(t, nil, nil)
	outside := filepath.Join(filepath.Dir(img), "outside-boot")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, data := range map[string]string{"vmlinuz-1.0": "k", "initramfs-1.0.img": "i"} {
		if err := os.WriteFile(filepath.Join(outside, f), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(img, "boot")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside-boot", filepath.Join(img, "boot")); err != nil {
		t.Fatal(err)
	}
	_, _, err := AddOS(context.Background(), AddOSOptions{TFTPBoot: t.TempDir(), Name: "x", ImageRoot: img, NFSServer: "s"})
	if err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("AddOS = %v, want an error about the escaping boot link", err)
	}
}

func TestRemoveOS(t *testing.T) {
	img := image(t, rhelBoot, nil)
	tftp := t.TempDir()
	if _, _, err := AddOS(context.Background(), AddOSOptions{TFTPBoot: tftp, Name: "rhel5compute", ImageRoot: img, NFSServer: "s"}); err != nil {
		t.Fatal(err)
	}
	if err := RemoveOS(tftp, "rhel5compute"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"linux-install/rhel5compute", "linux-install/goldsync/os/rhel5compute.json"} {
		if _, err := os.Lstat(filepath.Join(tftp, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if err := RemoveOS(tftp, "rhel5compute"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("second RemoveOS = %v, want fs.ErrNotExist", err)
	}
}

func TestCompareVersions(t *testing.T) {
	// Each list is in increasing order.
	chains := [][]string{
		{"2.6.18-128.el5", "2.6.18-164.el5", "4.18.0-10"},
		{"5.10.0-9", "5.10.0-28"},
		{"5.10.0-9-amd64", "5.10.0-28-amd64", "6.1.0-13-amd64"},
		{"0-rescue-0123abcd", "2.6.18-8.el5", "2.6.18-8.1.1.el5"},
		{"5.14.0-70.el9", "5.14.0-70.13.1.el9", "5.14.0-162.6.1.el9_1"},
		{"1.0~rc1", "1.0", "1.0a", "1.0.1"},
		{"a", "b", "1"},
		{"1.01", "1.2", "1.10"},
	}
	for _, c := range chains {
		for i := range c {
			for j := range c {
				want := 0
				if i < j {
					want = -1
				} else if i > j {
					want = 1
				}
				if got := CompareVersions(c[i], c[j]); got != want {
					t.Errorf("CompareVersions(%q, %q) = %d, want %d", c[i], c[j], got, want)
				}
			}
		}
	}
	for _, eq := range [][2]string{{"1.0", "1_0"}, {"1.001", "1.1"}, {"", ""}} {
		if got := CompareVersions(eq[0], eq[1]); got != 0 {
			t.Errorf("CompareVersions(%q, %q) = %d, want 0", eq[0], eq[1], got)
		}
	}
}

func TestFindKernels(t *testing.T) {
	img := image(t, with(rhelBoot, map[string]string{"boot/vmlinuz-5.0": "k"}), nil)
	ks, err := FindKernels(img)
	if err != nil {
		t.Fatal(err)
	}
	want := []Kernel{
		{Version: "5.0", Kernel: "boot/vmlinuz-5.0"},
		{Version: "4.18.0-10", Kernel: "boot/vmlinuz-4.18.0-10", Initrd: "boot/initramfs-4.18.0-10.img"},
		{Version: "2.6.18-164.el5", Kernel: "boot/vmlinuz-2.6.18-164.el5", Initrd: "boot/initrd-2.6.18-164.el5.img"},
		{Version: "2.6.18-128.el5", Kernel: "boot/vmlinuz-2.6.18-128.el5", Initrd: "boot/initrd-2.6.18-128.el5.img"},
	}
	if diff := cmp.Diff(want, ks); diff != "" {
		t.Errorf("FindKernels (-want +got):\n%s", diff)
	}
}

func TestCheckServer(t *testing.T) {
	for s, ok := range map[string]bool{
		"10.8.0.2": true, "node002": true, "nfs.example.org": true,
		"10.8.0.999": false, "300.1.1.1": false, "10.8.0": false, "": false, "::1": false,
	} {
		if err := CheckServer(s); (err == nil) != ok {
			t.Errorf("CheckServer(%q) = %v", s, err)
		}
	}
}

// TestAddOSDryRun: a dry run makes the checks of a real one (a missing
// kernel is the same error) and writes nothing, not even the TFTP root.
func TestAddOSDryRun(t *testing.T) {
	root := image(t, rhelBoot, nil)
	tftp := filepath.Join(t.TempDir(), "tftpboot")
	opts := AddOSOptions{TFTPBoot: tftp, Name: "rhel5compute", ImageRoot: root, NFSServer: "10.8.0.2", Style: StyleDisklessrc, DryRun: true}
	o, _, err := AddOS(context.Background(), opts)
	if err != nil || o.Kernel != "4.18.0-10" {
		t.Fatalf("AddOS dry run: %+v, %v; want kernel 4.18.0-10", o, err)
	}
	if _, err := os.Lstat(tftp); !os.IsNotExist(err) {
		t.Errorf("a dry run made the TFTP root: %v", err)
	}
	opts.Kernel = "9.9.9"
	_, _, dryErr := AddOS(context.Background(), opts)
	opts.DryRun = false
	_, _, realErr := AddOS(context.Background(), opts)
	if dryErr == nil || realErr == nil || dryErr.Error() != realErr.Error() {
		t.Errorf("a missing kernel: dry run %v, real run %v; want the same error", dryErr, realErr)
	}
}
