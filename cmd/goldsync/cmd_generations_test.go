package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/exitcode"
)

func listGens(t *testing.T, image string) []imaging.Generation {
	t.Helper()
	out, errs, code := gs(t, "generations", "--json", image)
	if code != 0 {
		t.Fatalf("generations: exit %d: %s", code, errs)
	}
	var got []struct {
		Image       string               `json:"image"`
		Generations []imaging.Generation `json:"generations"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("generations --json: %v: %s", err, out)
	}
	return got[0].Generations
}

func TestGenerationsRollbackCLI(t *testing.T) {
	base := t.TempDir()
	golden, image := filepath.Join(base, "golden"), filepath.Join(base, "image")
	writeFile(t, filepath.Join(golden, "usr/bin/a"), "a version 1\n")
	writeFile(t, filepath.Join(golden, "etc/b"), "b\n")
	mustGS := func(args ...string) (string, string) {
		t.Helper()
		out, errs, code := gs(t, args...)
		if code != 0 {
			t.Fatalf("goldsync %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		return out, errs
	}
	mustGS("pull", golden, image)
	writeFile(t, filepath.Join(golden, "usr/bin/a"), "a version 2, longer\n")
	if err := os.Remove(filepath.Join(golden, "etc/b")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(golden, "usr/lib/pkg/new"), "new\n")
	mustGS("pull", golden, image)

	gens := listGens(t, image)
	if len(gens) != 2 || gens[1].ID != 2 || gens[1].Source != golden || gens[1].Deleted != 1 || gens[1].Created < 2 {
		t.Fatalf("after two pulls: %+v", gens)
	}
	out, _ := mustGS("diff", image, "1", "2")
	for _, want := range []string{"*deleting   etc/b", "usr/bin/a", "cd+++++++++ usr/lib/pkg/"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff 1 2 lacks %q:\n%s", want, out)
		}
	}

	out, _ = mustGS("rollback", "-n", "-i", image, "1")
	if !strings.Contains(out, "*deleting   usr/lib/pkg/new") || !strings.Contains(out, "etc/b") {
		t.Errorf("rollback -n -i:\n%s", out)
	}
	if got := readFile(t, filepath.Join(image, "usr/bin/a")); got != "a version 2, longer\n" {
		t.Fatalf("dry run changed the image: %q", got)
	}
	mustGS("rollback", image, "1")
	if got := readFile(t, filepath.Join(image, "usr/bin/a")); got != "a version 1\n" {
		t.Errorf("after rollback usr/bin/a = %q", got)
	}
	if got := readFile(t, filepath.Join(image, "etc/b")); got != "b\n" {
		t.Errorf("after rollback etc/b = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(image, "usr/lib/pkg")); !os.IsNotExist(err) {
		t.Errorf("usr/lib/pkg still there after rollback: %v", err)
	}
	gens = listGens(t, image)
	if len(gens) != 3 || gens[2].RollbackOf != 1 {
		t.Fatalf("after rollback: %+v", gens)
	}

	// Without the kept content, rolling forward is refused, naming what
	// is missing, and the image is left alone.
	objs := filepath.Join(imaging.GenerationsDir(imaging.DefaultStateDir(image)), "objects")
	saved := objs + ".saved"
	if err := os.Rename(objs, saved); err != nil {
		t.Fatal(err)
	}
	_, errs, code := gs(t, "rollback", image, "2")
	if code != exitcode.Select || !strings.Contains(errs, "usr/bin/a") {
		t.Errorf("rollback without kept content: exit %d, stderr %s", code, errs)
	}
	if err := os.RemoveAll(objs); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(saved, objs); err != nil {
		t.Fatal(err)
	}
	mustGS("rollback", image, "2")
	if got := readFile(t, filepath.Join(image, "usr/bin/a")); got != "a version 2, longer\n" {
		t.Errorf("after rolling forward usr/bin/a = %q", got)
	}

	// prune records no generation: it has no --no-generations (which
	// crashed it: a nil policy).
	if _, errs, code := gs(t, "prune", "--no-generations", image); code != exitcode.Usage || strings.Contains(errs, "panic") {
		t.Errorf("prune --no-generations: exit %d, want %d (unknown flag): %s", code, exitcode.Usage, errs)
	}
	if out, _ = mustGS("--json", "pin", image, "1"); !strings.Contains(out, `"pin": [`) {
		t.Errorf("--json pin: %q", out)
	}
	out, _ = mustGS("prune", "--json", "--keep-generations", "1", image)
	var pr struct{ Removed []int64 }
	if err := json.Unmarshal([]byte(out), &pr); err != nil || len(pr.Removed) != 2 || pr.Removed[0] != 2 || pr.Removed[1] != 3 {
		t.Errorf("prune: %v %s", err, out)
	}
	gens = listGens(t, image)
	if len(gens) != 2 || gens[0].ID != 1 || !gens[0].Pinned || gens[1].ID != 4 {
		t.Errorf("after prune: %+v", gens)
	}
	if _, errs, code := gs(t, "rollback", image, "2"); code != exitcode.Select {
		t.Errorf("rollback to a pruned generation: exit %d, %s", code, errs)
	}
	mustGS("rollback", image, "1")
	if got := readFile(t, filepath.Join(image, "usr/bin/a")); got != "a version 1\n" {
		t.Errorf("rollback to the pinned generation: usr/bin/a = %q", got)
	}
}

// A rollback of a config image refreshes the netboot files (and snapshots)
// of its OS entries, so the nodes boot the rolled-back kernel.
func TestRollbackConfigImageNetbootFollows(t *testing.T) {
	needRootForCluster(t)
	c := newCluster(t, false)
	c.sync(t)
	vmlinuz := filepath.Join(c.tftpboot, "linux-install", "rhel9compute", "vmlinuz")
	// A rebuilt kernel of the same version on the golden node.
	writeFile(t, filepath.Join(c.golden, "boot/vmlinuz-"+goldenKernel), "kernel "+goldenKernel+", rebuilt")
	c.sync(t)
	if got := readFile(t, vmlinuz); got != "kernel "+goldenKernel+", rebuilt" {
		t.Fatalf("after the second sync vmlinuz = %q", got)
	}
	out, errs, code := gs(t, "--config", c.config, "rollback", "-n", "rhel9", "1")
	if code != 0 || !strings.Contains(out, "boot/vmlinuz-"+goldenKernel) {
		t.Fatalf("rollback -n: exit %d\n%s%s", code, out, errs)
	}
	// It says where the content comes from: the generation, not the golden node.
	if !strings.Contains(out, "== image rhel9: its generation 1 -> "+c.root) || !strings.Contains(out, "  rollback: entries ") || strings.Contains(out, c.golden) {
		t.Errorf("rollback -n talks of a pull:\n%s", out)
	}
	if got := readFile(t, vmlinuz); got != "kernel "+goldenKernel+", rebuilt" {
		t.Errorf("a dry run changed the boot files: vmlinuz = %q", got)
	}
	out, errs, code = gs(t, "--config", c.config, "rollback", "rhel9", "1")
	if code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, errs)
	}
	if got := readFile(t, filepath.Join(c.root, "boot/vmlinuz-"+goldenKernel)); got != "kernel "+goldenKernel {
		t.Errorf("image kernel after rollback = %q", got)
	}
	if got := readFile(t, vmlinuz); got != "kernel "+goldenKernel {
		t.Errorf("netboot kernel after rollback = %q, want the rolled-back one", got)
	}
	gens := listGens(t, c.root)
	if n := len(gens); n != 3 || gens[n-1].RollbackOf != 1 {
		t.Errorf("generations: %+v", gens)
	}
	out, _, _ = gs(t, "--config", c.config, "status")
	if !strings.Contains(out, "GENERATIONS") || !strings.Contains(out, "3, ") {
		t.Errorf("status does not show the generations:\n%s", out)
	}
	// A generation the image lacks is a bad argument: refused, and the
	// image's status (what monitoring reads) stays healthy.
	if _, errs, code := gs(t, "--config", c.config, "rollback", "rhel9", "99"); code != exitcode.Select || !strings.Contains(errs, "no such generation") {
		t.Errorf("rollback to a generation that is not there: exit %d, want %d: %s", code, exitcode.Select, errs)
	}
	if out, errs, code := gs(t, "--config", c.config, "status"); code != 0 || strings.Contains(out, "failed") {
		t.Errorf("status after a refused rollback: exit %d\n%s%s", code, out, errs)
	}
}

// A generation records the kernel its OS entries booted, and a rollback of
// a config image installs that kernel's boot files even when the config
// now names another: a kernel update with the config moved to the new
// kernel, rolled back to the generation before it, then forward again.
func TestRollbackConfigImageRecordedKernel(t *testing.T) {
	needRootForCluster(t)
	c := newCluster(t, false)
	c.writeConfig(t, fmt.Sprintf("kernel = %q\n", goldenKernel))
	c.sync(t)
	const newKernel = "5.14.0-503.el9"
	writeFile(t, filepath.Join(c.golden, "boot/vmlinuz-"+newKernel), "kernel "+newKernel)
	writeFile(t, filepath.Join(c.golden, "boot/initramfs-"+newKernel+".img"), "initramfs "+newKernel)
	writeFile(t, filepath.Join(c.golden, "lib/modules/"+newKernel+"/modules.dep"), "deps "+newKernel)
	c.writeConfig(t, fmt.Sprintf("kernel = %q\n", newKernel))
	c.sync(t)
	dir := filepath.Join(c.tftpboot, "linux-install", "rhel9compute")
	bootIs := func(when, k string) {
		t.Helper()
		if got := readFile(t, filepath.Join(dir, "vmlinuz")); got != "kernel "+k {
			t.Errorf("%s: vmlinuz = %q, want kernel %s", when, got, k)
		}
		if got := readFile(t, filepath.Join(dir, "initrd.img")); got != "initramfs "+k {
			t.Errorf("%s: initrd.img = %q, want initramfs %s", when, got, k)
		}
	}
	bootIs("after the kernel update", newKernel)
	gens := listGens(t, c.root)
	if len(gens) != 2 || gens[0].BootKernel("rhel9compute") != goldenKernel || gens[1].BootKernel("rhel9compute") != newKernel {
		t.Fatalf("generations do not record the booted kernels: %+v", gens)
	}

	out, errs, code := gs(t, "--config", c.config, "rollback", "rhel9", "1")
	if code != 0 {
		t.Fatalf("rollback to 1: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(c.root, "boot/vmlinuz-"+newKernel)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the new kernel is still in the image after the rollback: %v", err)
	}
	bootIs("after the rollback to 1", goldenKernel)
	gens = listGens(t, c.root)
	if n := len(gens); n != 3 || gens[2].BootKernel("rhel9compute") != goldenKernel {
		t.Errorf("the rollback's generation does not record the kernel it booted: %+v", gens)
	}

	// The image named by its directory: the boot files follow too.
	out, errs, code = gs(t, "--config", c.config, "rollback", c.root, "2")
	if code != 0 {
		t.Fatalf("rollback to 2: exit %d\n%s%s", code, out, errs)
	}
	bootIs("after the rollback forward to 2 (image named by its directory)", newKernel)
}

// TestRollbackDryRunChecksNetboot: rollback -n runs the netboot step's
// checks on the image as the rollback would leave it, so it fails where
// the real rollback does. Generation 1 comes from a plain pull (no boot
// record) before a kernel update; the config then names the new kernel,
// which generation 1 lacks: the real rollback cannot install it, and the
// dry run says so too (it used to report success).
func TestRollbackDryRunChecksNetboot(t *testing.T) {
	needRootForCluster(t)
	c := newCluster(t, false)
	mustRun(t, "pull", "--no-progress", "--exclude", "/home/*", "--exclude", "/proc/*", "--exclude", "/tmp/*", c.golden, c.root)
	const newKernel = "5.14.0-503.el9"
	writeFile(t, filepath.Join(c.golden, "boot/vmlinuz-"+newKernel), "kernel "+newKernel)
	writeFile(t, filepath.Join(c.golden, "boot/initramfs-"+newKernel+".img"), "initramfs "+newKernel)
	c.writeConfig(t, fmt.Sprintf("kernel = %q\n", newKernel))
	c.sync(t)
	if gens := listGens(t, c.root); len(gens) != 2 || gens[0].BootKernel("rhel9compute") != "" {
		t.Fatalf("want generation 1 without a boot record, 2 with one: %+v", gens)
	}

	out, errs, dryCode := gs(t, "--config", c.config, "rollback", "-n", "rhel9", "1")
	if dryCode == 0 || !strings.Contains(out+errs, "no kernel "+newKernel) {
		t.Errorf("rollback -n: exit %d, want a failure naming the missing kernel %s:\n%s%s", dryCode, newKernel, out, errs)
	}
	if strings.Contains(out+errs, "goldsync-bootcheck") {
		t.Errorf("rollback -n names its scratch dir instead of the image:\n%s%s", out, errs)
	}
	if got := readFile(t, filepath.Join(c.root, "boot/vmlinuz-"+newKernel)); got != "kernel "+newKernel {
		t.Errorf("the dry run changed the image: %q", got)
	}
	out, errs, code := gs(t, "--config", c.config, "rollback", "rhel9", "1")
	if code != dryCode || !strings.Contains(out+errs, "no kernel "+newKernel) {
		t.Errorf("rollback: exit %d (the dry run's: %d), want the same failure:\n%s%s", code, dryCode, out, errs)
	}
}
