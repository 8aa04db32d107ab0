package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootScript runs the piece's shell library as the initramfs would,
// in a private mount namespace, against a fake new root and a snapshot
// (bind-mounted instead of NFS-mounted): what it binds, what it refuses.
func TestBootScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: not root: the boot script's test mounts in a private namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("SKIPPED: unshare not found")
	}
	d := t.TempDir()
	root, snap, run := filepath.Join(d, "root"), filepath.Join(d, "export"), filepath.Join(d, "run")
	outside := filepath.Join(d, "outside")
	files := map[string]string{
		// the image, read-only at boot
		"root/etc/hostname":              "golden\n",
		"root/etc/machine-id":            "\n",
		"root/var/log/golden.log":        "golden log\n",
		"root/var/cache/apt/x":           "cache\n",
		"root/tmp/golden-tmp":            "x\n",
		"root/usr/bin/true":              "bin\n",
		"root/srv/data/f":                "image data\n",
		"outside/secret":                 "outside\n",
		"export/etc/hostname":            "node001\n",
		"export/etc/machine-id":          "0123456789abcdef0123456789abcdef\n",
		"export/var/log/node.log":        "node log\n",
		"export/var/cache/apt/x":         "node cache\n",
		"export/var/cache/apt/partial/y": "node cache\n",
		"export/srv/data/f":              "node data\n",
		"export/.goldsync/boot.list":     "",
	}
	for p, c := range files {
		full := filepath.Join(d, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The image's /var/run is a link to /run, and /opt links out of it: a
	// bind there would land in the initramfs, not the new root.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("/run", filepath.Join(root, "var/run")))
	must(os.Symlink(outside, filepath.Join(root, "opt")))
	must(os.MkdirAll(filepath.Join(snap, "var/run"), 0o755))
	must(os.MkdirAll(filepath.Join(snap, "opt"), 0o755))
	// The node planted a link in its own snapshot.
	must(os.Symlink(outside, filepath.Join(snap, "srv/evil")))
	must(os.MkdirAll(filepath.Join(root, "srv/evil"), 0o755))
	list := `# test list
bind /etc/hostname
bind /etc/machine-id
bind /var/log/
dirs /var/cache/
empty /tmp/
bind /var/run/
bind /opt/
bind /srv/evil/
bind /srv/../outside/
bind relative/path
bind /srv/data/f
frob /etc/hostname
bind /not/in/image
`
	must(os.WriteFile(filepath.Join(snap, ".goldsync/boot.list"), []byte(list), 0o644))
	cmdline := filepath.Join(d, "cmdline")
	must(os.WriteFile(cmdline, []byte("ro quiet goldsync.snapshot=10.0.2.2:"+snap+" goldsync.retries=2 console=ttyS0\n"), 0o644))

	lib := mustRead("goldsync-boot.sh")
	script := string(lib) + `
gs_mount_nfs() { mount --bind "${1#*:}" "$2"; }
goldsync_boot "$NEWROOT"
echo "hostname=$(cat $NEWROOT/etc/hostname)"
echo "machineid=$(cat $NEWROOT/etc/machine-id)"
echo "log=$(cat $NEWROOT/var/log/node.log)"
echo "data=$(cat $NEWROOT/srv/data/f)"
echo "cachedirs=$(ls $NEWROOT/var/cache/apt | tr '\n' ' ')"
echo "tmp=$(ls -A $NEWROOT/tmp | wc -l)"
touch $NEWROOT/tmp/new && echo tmpwritable
echo "outside=$(ls ` + outside + ` | tr '\n' ' ')"
[ -e $GS_RUN/done ] && echo done
[ -e $GS_RUN/failed ] && echo failed
echo ---
cat $GS_RUN/boot.log
`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "NEWROOT="+root, "GS_RUN="+run, "GS_CMDLINE="+cmdline)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := string(out)
	t.Logf("output:\n%s", got)
	for _, want := range []string{
		"hostname=node001",
		"machineid=0123456789abcdef0123456789abcdef",
		"log=node log",
		"data=node data",
		"cachedirs=partial ", // rwtab dirs: the structure, no files
		"tmp=0",              // rwtab empty: the image's /tmp/golden-tmp is hidden
		"tmpwritable",
		"outside=secret ", // nothing was mounted over or written outside
		"done",
		"/var/run: missing in the image or under a symbolic link there; not mounted",
		"/opt: missing in the image or under a symbolic link there; not mounted",
		"/srv/evil: not in the snapshot (or a symbolic link there); not mounted",
		"boot.list: bad path '/srv/../outside/' skipped",
		"boot.list: bad path 'relative/path' skipped",
		"boot.list: unknown kind 'frob'",
		"/not/in/image: missing in the image",
		"mounted 6 paths from the snapshot, 0 failed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, "\nfailed") {
		t.Error("boot marked failed")
	}
	// Nothing of it is left mounted or written outside the namespace.
	if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "golden\n" {
		t.Errorf("image's etc/hostname changed: %q", b)
	}
}

// TestBootScriptInert: without goldsync.snapshot= the piece does nothing,
// as on the golden node booting from its disk.
func TestBootScriptInert(t *testing.T) {
	d := t.TempDir()
	cmdline := filepath.Join(d, "cmdline")
	if err := os.WriteFile(cmdline, []byte("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := string(mustRead("goldsync-boot.sh")) + `
gs_mount_nfs() { echo MOUNTED; }
mount() { echo MOUNTED; }
goldsync_boot /nonexistent-root
ls -A "$GS_RUN" 2>/dev/null | wc -l
`
	cmd := exec.Command("sh", "-c", script)
	run := filepath.Join(d, "run")
	cmd.Env = append(os.Environ(), "GS_RUN="+run, "GS_CMDLINE="+cmdline)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.TrimSpace(string(out)) != "0" {
		t.Errorf("without goldsync.snapshot= the piece did something: %q", out)
	}
	// goldsync=off wins over goldsync.snapshot=.
	if err := os.WriteFile(cmdline, []byte("goldsync.snapshot=1.2.3.4:/x goldsync=off\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "GS_RUN="+run, "GS_CMDLINE="+cmdline)
	out, err = cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Errorf("goldsync=off: %q %v", out, err)
	}
}
