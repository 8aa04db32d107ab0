package boot

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

//go:embed files
var files embed.FS

// Flavor is an initramfs generator the piece can be installed for.
type Flavor string

// The flavours.
const (
	InitramfsTools Flavor = "initramfs-tools"
	Dracut         Flavor = "dracut"
)

// File is one file of the piece: where it goes, relative to the golden
// node's root, its mode and content.
type File struct {
	Path string
	Mode fs.FileMode
	Data []byte
}

// Paths of the installed piece, relative to the root. Other tools (the
// image server's `os add`) look for ScriptPath and ModulePath to tell
// whether an image carries the piece.
const (
	HookPath       = "etc/initramfs-tools/hooks/goldsync"
	ScriptPath     = "etc/initramfs-tools/scripts/nfs-bottom/goldsync"
	ModuleDir      = "usr/lib/dracut/modules.d/95goldsync"
	ModulePath     = ModuleDir + "/module-setup.sh"
	PrePivotPath   = ModuleDir + "/goldsync-pre-pivot.sh"
	ModulesPath    = ModuleDir + "/goldsync-modules.sh"
	DracutConfPath = "etc/dracut.conf.d/90-goldsync.conf"
)

func mustRead(name string) []byte {
	b, err := files.ReadFile("files/" + name)
	if err != nil {
		panic(err) // embedded: a missing file is a build error
	}
	return b
}

// Files returns the files of a flavour's piece.
func Files(f Flavor) ([]File, error) {
	lib := mustRead("goldsync-boot.sh")
	join := func(head, tail string) []byte {
		return slices.Concat(mustRead(head), lib, mustRead(tail))
	}
	switch f {
	case InitramfsTools:
		return []File{
			{Path: HookPath, Mode: 0o755, Data: mustRead("initramfs-tools/hook")},
			{Path: ScriptPath, Mode: 0o755, Data: join("initramfs-tools/nfs-bottom.head", "initramfs-tools/nfs-bottom.tail")},
		}, nil
	case Dracut:
		return []File{
			{Path: ModulePath, Mode: 0o755, Data: mustRead("dracut/module-setup.sh")},
			{Path: PrePivotPath, Mode: 0o755, Data: join("dracut/pre-pivot.head", "dracut/pre-pivot.tail")},
			{Path: ModulesPath, Mode: 0o755, Data: mustRead("dracut/goldsync-modules.sh")},
			{Path: DracutConfPath, Mode: 0o644, Data: mustRead("dracut/dracut.conf")},
		}, nil
	}
	return nil, fmt.Errorf("unknown initramfs flavour %q (want %s or %s)", f, InitramfsTools, Dracut)
}

// Detect returns the initramfs generators installed under root: dracut
// when root has usr/bin/dracut or usr/sbin/dracut, initramfs-tools when it
// has usr/sbin/mkinitramfs (or sbin/).
func Detect(root string) []Flavor {
	var out []Flavor
	has := func(paths ...string) bool {
		for _, p := range paths {
			if fi, err := os.Stat(filepath.Join(root, p)); err == nil && fi.Mode().IsRegular() {
				return true
			}
		}
		return false
	}
	if has("usr/sbin/mkinitramfs", "sbin/mkinitramfs") {
		out = append(out, InitramfsTools)
	}
	if has("usr/bin/dracut", "usr/sbin/dracut", "sbin/dracut") {
		out = append(out, Dracut)
	}
	return out
}

// InstallOptions say where and how to install.
type InstallOptions struct {
	// Root is the golden node's root; "" means "/". With another root the
	// initramfs tool runs in a chroot of it.
	Root string
	// Flavors to install; empty means every one Detect finds.
	Flavors []Flavor
	// NoRegenerate leaves the existing initramfs images alone: they get the
	// piece at the next kernel update or update-initramfs/dracut run.
	NoRegenerate bool
	// Logger receives the initramfs tool's output at debug level; nil is
	// silent.
	Logger *slog.Logger
}

// InstallResult says what Install did.
type InstallResult struct {
	// Flavors installed.
	Flavors []Flavor
	// Written are the files written, relative to the root; Unchanged those
	// that already held the same content and mode.
	Written, Unchanged []string
	// Regenerated are the commands run to rebuild the initramfs images.
	Regenerated []string
}

// ErrNoInitramfsTool means the root has neither initramfs-tools nor dracut.
var ErrNoInitramfsTool = errors.New("neither initramfs-tools (mkinitramfs) nor dracut is installed")

// Install writes the piece for each flavour under the root and, unless
// NoRegenerate, rebuilds the root's initramfs images with its own tool
// (update-initramfs -u -k all, or dracut -f --regenerate-all), so the
// golden node's next boot images, and every one built later, carry it.
// Files are written atomically (temp file and rename beside them) and a
// file already right is not touched. It is idempotent.
func Install(ctx context.Context, o InstallOptions) (*InstallResult, error) {
	root := o.Root
	if root == "" {
		root = "/"
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return nil, fmt.Errorf("install boot piece: root %s: %w", root, err)
	}
	flavors := o.Flavors
	if len(flavors) == 0 {
		flavors = Detect(root)
		if len(flavors) == 0 {
			return nil, fmt.Errorf("install boot piece in %s: %w", root, ErrNoInitramfsTool)
		}
	}
	var all []File
	for _, f := range flavors {
		fs, err := Files(f)
		if err != nil {
			return nil, fmt.Errorf("install boot piece: %w", err)
		}
		all = append(all, fs...)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("install boot piece: %w", err)
	}
	defer r.Close()
	res := &InstallResult{Flavors: flavors}
	for _, f := range all {
		same, err := writeFile(r, f)
		if err != nil {
			return res, fmt.Errorf("install boot piece: %s: %w", f.Path, err)
		}
		if same {
			res.Unchanged = append(res.Unchanged, f.Path)
		} else {
			res.Written = append(res.Written, f.Path)
		}
	}
	if o.NoRegenerate {
		return res, nil
	}
	for _, f := range flavors {
		argv := regenerateCommand(f)
		if root != "/" {
			argv = append([]string{"chroot", root}, argv...)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		out, err := cmd.CombinedOutput()
		if o.Logger != nil {
			o.Logger.Debug("initramfs tool output", "command", strings.Join(argv, " "), "output", string(out))
		}
		if err != nil {
			return res, fmt.Errorf("install boot piece: %s: %w: %s", strings.Join(argv, " "), err, lastLines(out, 5))
		}
		res.Regenerated = append(res.Regenerated, strings.Join(argv, " "))
	}
	return res, nil
}

func regenerateCommand(f Flavor) []string {
	if f == Dracut {
		return []string{"dracut", "-f", "--regenerate-all"}
	}
	return []string{"update-initramfs", "-u", "-k", "all"}
}

// writeFile writes f under r unless it already holds the same data and
// mode; it reports whether it was already right.
func writeFile(r *os.Root, f File) (same bool, err error) {
	if old, err := r.ReadFile(f.Path); err == nil && bytes.Equal(old, f.Data) {
		if fi, err := r.Lstat(f.Path); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == f.Mode {
			return true, nil
		}
	}
	if err := r.MkdirAll(path.Dir(f.Path), 0o755); err != nil {
		return false, err
	}
	tmp := path.Join(path.Dir(f.Path), ".goldsync-tmp-"+path.Base(f.Path))
	_ = r.Remove(tmp)
	w, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode)
	if err != nil {
		return false, err
	}
	if _, err := w.Write(f.Data); err != nil {
		w.Close()
		_ = r.Remove(tmp)
		return false, err
	}
	err = w.Chmod(f.Mode)
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, f.Path)
	}
	if err != nil {
		_ = r.Remove(tmp)
	}
	return false, err
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
