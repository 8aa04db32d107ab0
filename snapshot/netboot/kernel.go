package netboot

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/goldsync/goldsync/imaging/fsx"
)

// Kernel is a kernel found in an image's /boot.
type Kernel struct {
	// Version is the part after "vmlinuz-", e.g. 2.6.18-128.el5.
	Version string
	// Kernel is the kernel's path in the image, relative to the image
	// root: boot/vmlinuz-VERSION.
	Kernel string
	// Initrd is the matching initrd's path in the image, relative to the
	// image root, or "" when there is none.
	Initrd string
}

// initrdNames are the initrd names tried for a version, in order: Red Hat
// since RHEL 6 (dracut), Red Hat up to RHEL 5 (mkinitrd), Debian.
func initrdNames(version string) []string {
	return []string{
		"initramfs-" + version + ".img",
		"initrd-" + version + ".img",
		"initrd.img-" + version,
	}
}

// FindKernels lists the kernels in imageRoot/boot: every vmlinuz-VERSION
// (a file or a symlink), with its initrd when one of initramfs-VERSION.img,
// initrd-VERSION.img or initrd.img-VERSION exists. The list is sorted
// newest first by CompareVersions.
func FindKernels(imageRoot string) ([]Kernel, error) {
	root, err := os.OpenRoot(imageRoot)
	if err != nil {
		return nil, fmt.Errorf("find kernels: %w", err)
	}
	defer root.Close()
	return findKernels(root, imageRoot)
}

func findKernels(root *os.Root, imageRoot string) ([]Kernel, error) {
	d, err := root.Open("boot")
	if err != nil {
		return nil, fmt.Errorf("find kernels in %s: %w", imageRoot, err)
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("find kernels in %s/boot: %w", imageRoot, err)
	}
	names := make(map[string]bool, len(ents))
	for _, e := range ents {
		if !e.IsDir() {
			names[e.Name()] = true
		}
	}
	var ks []Kernel
	for _, e := range ents {
		v, ok := strings.CutPrefix(e.Name(), "vmlinuz-")
		if !ok || e.IsDir() || checkVersion(v) != nil {
			continue
		}
		k := Kernel{Version: v, Kernel: "boot/" + e.Name()}
		for _, n := range initrdNames(v) {
			if names[n] {
				k.Initrd = "boot/" + n
				break
			}
		}
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b Kernel) int {
		if c := CompareVersions(b.Version, a.Version); c != 0 {
			return c
		}
		return strings.Compare(b.Version, a.Version)
	})
	return ks, nil
}

// CompareVersions compares two version strings the way RPM does
// (rpmvercmp): split into runs of digits and runs of letters, compare digit
// runs as numbers and letter runs as strings, a digit run is newer than a
// letter run, '~' sorts before anything (pre-releases), and when all runs
// are equal the one with more runs is newer. Other characters only separate
// runs. It returns -1, 0 or +1; 2.6.18-128.el5 < 2.6.18-164.el5 < 4.18.0-10
// and 5.10.0-9 < 5.10.0-28.
func CompareVersions(a, b string) int {
	isSep := func(r rune) bool { return !isAlnum(r) && r != '~' }
	for {
		a = strings.TrimLeftFunc(a, isSep)
		b = strings.TrimLeftFunc(b, isSep)
		ta, tb := strings.HasPrefix(a, "~"), strings.HasPrefix(b, "~")
		if ta || tb {
			switch {
			case !tb:
				return -1
			case !ta:
				return 1
			}
			a, b = a[1:], b[1:]
			continue
		}
		if a == "" || b == "" {
			break
		}
		var ra, rb string
		if isDigit(a[0]) {
			if !isDigit(b[0]) {
				return 1
			}
			ra, a = cutRun(a, isDigit)
			rb, b = cutRun(b, isDigit)
			ra, rb = strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if len(ra) != len(rb) {
				if len(ra) < len(rb) {
					return -1
				}
				return 1
			}
		} else {
			if isDigit(b[0]) {
				return -1
			}
			ra, a = cutRun(a, isLetter)
			rb, b = cutRun(b, isLetter)
		}
		if c := strings.Compare(ra, rb); c != 0 {
			return c
		}
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	default:
		return 1
	}
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(r rune) bool  { return r < 0x80 && (isDigit(byte(r)) || isLetter(byte(r))) }

func cutRun(s string, in func(byte) bool) (run, rest string) {
	i := 0
	for i < len(s) && in(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// AddOSOptions says where an OS comes from and where it goes.
type AddOSOptions struct {
	// TFTPBoot is the TFTP root, e.g. /tftpboot.
	TFTPBoot string
	// Name names the OS (pxeos -i); see CheckName.
	Name string
	// Location is the image's base directory (pxeos -L), e.g.
	// /diskless/i386/RHEL5-AS. When empty it is the parent of ImageRoot.
	Location string
	// ImageRoot is the image root; empty means Location/root.
	ImageRoot string
	// SnapshotDir holds the per-node snapshots; empty means
	// Location/snapshot.
	SnapshotDir string
	// NFSServer is the host name or IPv4 address clients mount from
	// (pxeos -s).
	NFSServer string
	// Kernel is the version to boot (pxeos -k); empty picks the newest
	// kernel of the image.
	Kernel string
	// Style is the boot style, StyleNFSRoot or StyleDisklessrc; empty
	// detects it from the image (DetectStyle).
	Style string
	// Initramfs is the generator of an nfsroot image, InitramfsTools or
	// Dracut; empty detects it from the image. Must be empty for
	// StyleDisklessrc.
	Initramfs string
	// NFSOptions are the root's NFS mount options in the nfsroot style;
	// empty means DefaultNFSOptions of the generator.
	NFSOptions string
	// DryRun makes AddOS check all it would do (the options, the style,
	// the kernel and initrd it would copy, which it opens) and write
	// nothing: the TFTP root is not touched.
	DryRun bool
}

func kernelDest(name string) string { return InstallDir + "/" + name + "/vmlinuz" }
func initrdDest(name string) string { return InstallDir + "/" + name + "/initrd.img" }

// AddOS adds or updates an OS, as pxeos -a does: it finds the kernels in
// the image's /boot, picks opts.Kernel or, when that is empty, the newest
// one, copies its kernel and initrd to TFTPBOOT/linux-install/NAME/vmlinuz
// and .../initrd.img (each atomically), and stores the OS record (SaveOS).
// The returned OS says which kernel was chosen.
//
// The newest kernel must have an initrd: AddOS never falls back silently to
// an older one. Symlinks in the image are resolved as if the image root were
// "/" (a boot/vmlinuz-V -> /boot/... link works); one that leads outside the
// image is an error, and only regular files are copied.
//
// The boot style is opts.Style, or detected from the image (DetectStyle);
// an nfsroot OS gets its generator's default NFS options when none are
// given. When an nfsroot image lacks goldsync's client piece
// (ClientPiecePaths), the OS is still added and a warning says how to
// install it; warnings are for the user, not errors.
func AddOS(ctx context.Context, opts AddOSOptions) (OS, []string, error) {
	o := OS{
		Name:        opts.Name,
		Location:    opts.Location,
		ImageRoot:   opts.ImageRoot,
		SnapshotDir: opts.SnapshotDir,
		NFSServer:   opts.NFSServer,
		KernelFile:  opts.Name + "/vmlinuz",
		InitrdFile:  opts.Name + "/initrd.img",
		Style:       opts.Style,
		Initramfs:   opts.Initramfs,
		NFSOptions:  opts.NFSOptions,
	}
	if o.Location == "" && o.ImageRoot != "" {
		o.Location = path.Dir(o.ImageRoot)
	}
	if o.Location != "" && o.ImageRoot == "" {
		o.ImageRoot = path.Join(o.Location, "root")
	}
	if o.Location != "" && o.SnapshotDir == "" {
		o.SnapshotDir = path.Join(o.Location, "snapshot")
	}
	// Check everything but the kernel and the style before touching any
	// file.
	if o.ImageRoot != "" {
		if st, err := os.Stat(o.ImageRoot); err != nil {
			return OS{}, nil, fmt.Errorf("add OS %s: image: %w", o.Name, err)
		} else if !st.IsDir() {
			return OS{}, nil, fmt.Errorf("add OS %s: image %s is not a directory", o.Name, o.ImageRoot)
		}
	}
	if o.Style == "" && o.Initramfs != "" {
		o.Style = StyleNFSRoot // only nfsroot has a generator
	}
	probe := o
	probe.Kernel = "0"
	if probe.Style == "" {
		probe.Style = StyleNFSRoot
	}
	if probe.Style == StyleNFSRoot && probe.Initramfs == "" {
		probe.Initramfs = InitramfsTools
	}
	if err := probe.Validate(); err != nil {
		return OS{}, nil, fmt.Errorf("add OS: %w", err)
	}
	if opts.Kernel != "" {
		if err := checkVersion(opts.Kernel); err != nil {
			return OS{}, nil, fmt.Errorf("add OS %s: %w", o.Name, err)
		}
	}

	img, err := os.OpenRoot(o.ImageRoot)
	if err != nil {
		return OS{}, nil, fmt.Errorf("add OS %s: open image: %w", o.Name, err)
	}
	defer img.Close()
	if o.Style == "" || (o.Style == StyleNFSRoot && o.Initramfs == "") {
		style, initramfs := detectStyle(img)
		if o.Style == "" {
			o.Style = style
		}
		if o.Style == StyleNFSRoot && o.Initramfs == "" {
			if initramfs == "" {
				return OS{}, nil, fmt.Errorf("add OS %s: boot style %s: no initramfs generator (mkinitramfs or dracut) in the image: give --initramfs", o.Name, StyleNFSRoot)
			}
			o.Initramfs = initramfs
		}
	}
	if o.Style == StyleNFSRoot && o.NFSOptions == "" {
		o.NFSOptions = DefaultNFSOptions(o.Initramfs)
	}
	if o.Style == StyleDisklessrc && o.NFSOptions != "" {
		return OS{}, nil, fmt.Errorf("add OS %s: NFS options are for boot style %s (disklessrc mounts with its own)", o.Name, StyleNFSRoot)
	}
	if err := o.checkStyle(); err != nil {
		return OS{}, nil, fmt.Errorf("add OS %s: %w", o.Name, err)
	}
	var warnings []string
	if w := clientPieceWarning(img, o); w != "" {
		warnings = append(warnings, w)
	}
	ks, err := findKernels(img, o.ImageRoot)
	if err != nil {
		return OS{}, nil, fmt.Errorf("add OS %s: %w", o.Name, err)
	}
	k, err := chooseKernel(ks, opts.Kernel, o.ImageRoot)
	if err != nil {
		return OS{}, nil, fmt.Errorf("add OS %s: %w", o.Name, err)
	}
	o.Kernel = k.Version

	// Open both files before writing either.
	var srcs [2]*os.File
	for i, name := range []string{k.Kernel, k.Initrd} {
		f, err := openInImage(img, name)
		if err != nil {
			return OS{}, nil, fmt.Errorf("add OS %s: open %s in image: %w", o.Name, name, err)
		}
		defer f.Close()
		srcs[i] = f
	}
	if w := staleInitrdWarning(img, o, srcs[1], k.Initrd); w != "" {
		warnings = append(warnings, w)
	}
	if opts.DryRun {
		return o, warnings, nil
	}

	tftp, err := openTFTP(opts.TFTPBoot)
	if err != nil {
		return OS{}, nil, fmt.Errorf("add OS %s: %w", o.Name, err)
	}
	defer tftp.Close()
	if err := mkdirAll(tftp, InstallDir+"/"+o.Name); err != nil {
		return OS{}, nil, fmt.Errorf("add OS %s: %w", o.Name, err)
	}
	for i, to := range []string{kernelDest(o.Name), initrdDest(o.Name)} {
		if _, err := fsx.WriteAtomic(ctx, tftp, to, srcs[i], fileMode); err != nil {
			return OS{}, nil, fmt.Errorf("add OS %s: copy %s to %s: %w", o.Name, []string{k.Kernel, k.Initrd}[i], to, err)
		}
	}
	if err := SaveOS(opts.TFTPBoot, o); err != nil {
		return OS{}, nil, fmt.Errorf("add OS %s: %w", o.Name, err)
	}
	return o, warnings, nil
}

// chooseKernel picks the wanted version, or the newest, and insists on an
// initrd.
func chooseKernel(ks []Kernel, want, imageRoot string) (Kernel, error) {
	if len(ks) == 0 {
		return Kernel{}, fmt.Errorf("no kernel (vmlinuz-VERSION) in %s/boot", imageRoot)
	}
	k := ks[0]
	if want != "" {
		i := slices.IndexFunc(ks, func(k Kernel) bool { return k.Version == want })
		if i < 0 {
			var have []string
			for _, k := range ks {
				have = append(have, k.Version)
			}
			return Kernel{}, fmt.Errorf("no kernel %s in %s/boot (found: %s)", want, imageRoot, strings.Join(have, ", "))
		}
		k = ks[i]
	}
	if k.Initrd == "" {
		return Kernel{}, fmt.Errorf("kernel %s has no initrd in %s/boot (looked for %s)",
			k.Version, imageRoot, strings.Join(initrdNames(k.Version), ", "))
	}
	return k, nil
}

// maxLinks bounds symlink hops, as Linux does (MAXSYMLINKS).
const maxLinks = 40

// openInImage opens a regular file of the image, resolving symlinks as if
// the image root were "/". All access goes through img, so nothing outside
// the image can be reached even if the image changes meanwhile.
func openInImage(img *os.Root, name string) (*os.File, error) {
	p := name
	for hops := 0; ; hops++ {
		fi, err := img.Lstat(p)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		if hops == maxLinks {
			return nil, fmt.Errorf("%s: more than %d symlinks", name, maxLinks)
		}
		target, err := img.Readlink(p)
		if err != nil {
			return nil, err
		}
		var next string
		if path.IsAbs(target) {
			next = strings.TrimPrefix(path.Clean(target), "/")
		} else {
			next = path.Join(path.Dir(p), target)
		}
		if next == ".." || strings.HasPrefix(next, "../") {
			return nil, fmt.Errorf("%s: symlink %s -> %s leads outside the image", name, p, target)
		}
		if next == "" || next == "." {
			return nil, fmt.Errorf("%s: symlink %s -> %s leads to the image root", name, p, target)
		}
		p = next
	}
	f, err := img.Open(p)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %s is not a regular file", name, p)
	}
	return f, nil
}

// staleInitrdWarning returns a warning when the image carries goldsync's
// client piece but the initrd is older than it: the piece was installed
// without rebuilding the initramfs (boot install --no-regenerate), so the
// nodes would boot without it.
func staleInitrdWarning(img *os.Root, o OS, initrd *os.File, initrdName string) string {
	if o.style() != StyleNFSRoot {
		return ""
	}
	fi, err := initrd.Stat()
	if err != nil {
		return ""
	}
	for _, p := range clientPiece[o.Initramfs] {
		pi, err := img.Lstat(p)
		// A second of slack: building an initramfs takes longer than that.
		if err == nil && fi.ModTime().Before(pi.ModTime().Add(-time.Second)) {
			return fmt.Sprintf("OS %s: %s is older than goldsync's client piece (%s): it was probably built without it, and nodes would boot without mounting their snapshots; run update-initramfs -u or dracut -f on the golden node (goldsync-agent boot install does), pull again and re-run os add",
				o.Name, initrdName, p)
		}
	}
	return ""
}
