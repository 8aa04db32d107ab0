package netboot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/snapshot"
)

// Layout of the TFTP tree, relative to the TFTP root (TFTPBOOT, /tftpboot
// on RHEL 5, served as the TFTP server's root directory).
const (
	// InstallDir holds pxelinux.0 and everything below; pxelinux resolves
	// the relative kernel and initrd paths of its config against it.
	InstallDir = "linux-install"
	// PXELinuxDir holds one pxelinux config per node, named HexIP.
	PXELinuxDir = InstallDir + "/pxelinux.cfg"
	// GrubDir holds one GRUB config per node, grub.cfg-<HEXIP>. Put the
	// GRUB EFI image here too: network GRUB looks for its configs in the
	// directory it was loaded from.
	GrubDir = InstallDir + "/grub"
	// IPXEDir holds one iPXE script per node, <IPv4>.ipxe, and boot.ipxe,
	// which chains to it.
	IPXEDir = InstallDir + "/ipxe"
	// StoreDir holds one JSON record per OS, NAME.json.
	StoreDir = InstallDir + "/goldsync/os"
)

// Modes of everything written under the TFTP root: TFTP servers run
// unprivileged and must read it all.
const (
	fileMode = 0o644
	dirMode  = 0o755
)

// OS is a bootable operating system image, what pxeos records: a kernel and
// initrd copied into the TFTP tree plus where the image is exported from.
type OS struct {
	// Name names the OS (pxeos -i): its pxelinux label and its directory
	// under InstallDir. Letters, digits, '.', '_' and '-' only.
	Name string `json:"name"`
	// Location is the image's base directory on the server (pxeos -L),
	// e.g. /diskless/i386/RHEL5-AS. Clients get NFSROOT=NFSServer:Location;
	// disklessrc mounts Location/root read-only and Location/snapshot
	// read-write from it.
	Location string `json:"location"`
	// ImageRoot is the image root directory, normally Location/root.
	ImageRoot string `json:"image_root"`
	// SnapshotDir holds the per-node snapshot trees, normally
	// Location/snapshot.
	SnapshotDir string `json:"snapshot_dir"`
	// NFSServer is the host name or IPv4 address clients mount from.
	NFSServer string `json:"nfs_server"`
	// Kernel is the kernel version booted, e.g. 2.6.18-128.el5.
	Kernel string `json:"kernel"`
	// KernelFile and InitrdFile are the kernel and initrd in the TFTP tree,
	// relative to InstallDir as pxelinux wants them: NAME/vmlinuz and
	// NAME/initrd.img.
	KernelFile string `json:"kernel_file"`
	InitrdFile string `json:"initrd_file"`
	// Style is how the node's initrd boots it: StyleNFSRoot (a modern
	// initramfs-tools or dracut initramfs with goldsync's client piece) or
	// StyleDisklessrc (RHEL 5's mkinitrd and disklessrc). Records written
	// before styles existed have none and load as StyleDisklessrc.
	Style string `json:"style,omitempty"`
	// Initramfs is the initramfs generator of an nfsroot image,
	// InitramfsTools or Dracut; empty for StyleDisklessrc.
	Initramfs string `json:"initramfs,omitempty"`
	// NFSOptions are the mount options of the read-only root in the
	// nfsroot style, in the syntax of Initramfs (DefaultNFSOptions); empty
	// means the default. Unused by StyleDisklessrc.
	NFSOptions string `json:"nfs_options,omitempty"`
}

// reserved are names an OS cannot take: goldsync's own directories under
// InstallDir.
var reserved = []string{"pxelinux.cfg", "grub", "ipxe", "goldsync", "pxelinux.0"}

// CheckName checks an OS name: 1 to 64 of [A-Za-z0-9._-], not "." or a name
// with "..", not one of goldsync's own directory names.
func CheckName(name string) error {
	bad := func(why string) error { return fmt.Errorf("bad OS name %q: %s", shortStr(name), why) }
	if name == "" {
		return bad("empty")
	}
	if len(name) > 64 {
		return bad("longer than 64 bytes")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return bad("only letters, digits, '.', '_' and '-' are allowed")
		}
	}
	if name == "." || strings.Contains(name, "..") {
		return bad(`"." and ".." are not allowed`)
	}
	if slices.Contains(reserved, name) {
		return bad("reserved for goldsync's own files")
	}
	return nil
}

// Validate checks that every field is set and safe to write into boot
// configs (no blanks, quotes or other characters a boot loader would read
// specially).
func (o OS) Validate() error {
	var errs []error
	if err := CheckName(o.Name); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct{ name, val string }{
		{"location", o.Location}, {"image root", o.ImageRoot}, {"snapshot directory", o.SnapshotDir},
	} {
		if err := checkServerPath(f.val); err != nil {
			errs = append(errs, fmt.Errorf("OS %s: %s: %w", o.Name, f.name, err))
		}
	}
	if err := checkServer(o.NFSServer); err != nil {
		errs = append(errs, fmt.Errorf("OS %s: NFS server: %w", o.Name, err))
	}
	if o.ImageRoot != "" && o.SnapshotDir != "" {
		if err := snapshot.CheckApart(o.ImageRoot, o.SnapshotDir); err != nil {
			errs = append(errs, fmt.Errorf("OS %s: %w", o.Name, err))
		}
	}
	if err := checkVersion(o.Kernel); err != nil {
		errs = append(errs, fmt.Errorf("OS %s: %w", o.Name, err))
	}
	if err := o.checkStyle(); err != nil {
		errs = append(errs, fmt.Errorf("OS %s: %w", o.Name, err))
	}
	for _, f := range []struct{ name, val string }{{"kernel file", o.KernelFile}, {"initrd file", o.InitrdFile}} {
		if err := tree.ValidatePath(f.val); err != nil || f.val == tree.Root || !safeWord(f.val) {
			errs = append(errs, fmt.Errorf("OS %s: bad %s %q: want a clean relative path of safe characters", o.Name, f.name, shortStr(f.val)))
		}
	}
	return errors.Join(errs...)
}

// checkServerPath checks a directory on the image server: absolute, clean,
// of safe characters.
func checkServerPath(p string) error {
	switch {
	case p == "":
		return errors.New("not set")
	case !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/":
		return fmt.Errorf("%q: want a clean absolute path below /", shortStr(p))
	case len(p) > tree.MaxPathLen || !safeWord(p):
		return fmt.Errorf("%q: too long, or has blanks, quotes or other special characters", shortStr(p))
	}
	return nil
}

// CheckServer checks an NFS or TFTP server: an IPv4 address or a host
// name; digits and dots that are not an IPv4 address are refused, not taken
// for a host name.
func CheckServer(s string) error { return checkServer(s) }

// checkServer checks an NFS or TFTP server: an IPv4 address or a host name.
func checkServer(s string) error {
	if s == "" {
		return errors.New("not set")
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		if !ip.Is4() {
			return fmt.Errorf("%s: want an IPv4 address or a host name", s)
		}
		return nil
	}
	if strings.Trim(s, "0123456789.") == "" {
		// All digits and dots: a mistyped address, not a host name.
		return fmt.Errorf("%s: not a valid IPv4 address", s)
	}
	return snapshot.CheckHostname(s)
}

// checkVersion checks a kernel version string.
func checkVersion(v string) error {
	if v == "" {
		return errors.New("kernel version not set")
	}
	if len(v) > 200 {
		return fmt.Errorf("kernel version %q: too long", shortStr(v))
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._+~-", c) >= 0) {
			return fmt.Errorf("kernel version %q: only letters, digits and . _ + ~ - are allowed", shortStr(v))
		}
	}
	return nil
}

// safeWord reports whether s is non-empty and every byte is printable
// ASCII that no boot loader, shell-like config language or the kernel
// command line reads specially: no blanks, quotes, backslashes, '$', ';',
// '#', braces, pipes, redirections or backquotes.
func safeWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"'\\$;#{}|&<>`", c) >= 0 {
			return false
		}
	}
	return true
}

func shortStr(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// openTFTP opens the TFTP root.
func openTFTP(tftpboot string) (*os.Root, error) {
	if tftpboot == "" {
		return nil, errors.New("TFTP root not set")
	}
	root, err := os.OpenRoot(tftpboot)
	if err != nil {
		return nil, fmt.Errorf("open TFTP root: %w", err)
	}
	return root, nil
}

// mkdirAll creates dir beneath root with mode 0755 for every directory it
// creates, whatever the umask.
func mkdirAll(root *os.Root, dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	fi, err := root.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := mkdirAll(root, path.Dir(dir)); err != nil {
		return err
	}
	if err := root.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return root.Chmod(dir, dirMode)
}

func recordPath(name string) string { return StoreDir + "/" + name + ".json" }

// SaveOS validates o and stores its record as
// TFTPBOOT/linux-install/goldsync/os/NAME.json, atomically, replacing any
// record of the same name.
func SaveOS(tftpboot string, o OS) error {
	if err := o.Validate(); err != nil {
		return err
	}
	root, err := openTFTP(tftpboot)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := mkdirAll(root, StoreDir); err != nil {
		return fmt.Errorf("save OS %s: %w", o.Name, err)
	}
	data, err := json.MarshalIndent(o, "", "\t")
	if err != nil {
		return fmt.Errorf("save OS %s: %w", o.Name, err)
	}
	if err := fsx.WriteFileAtomic(root, recordPath(o.Name), append(data, '\n'), fileMode); err != nil {
		return fmt.Errorf("save OS %s: %w", o.Name, err)
	}
	return nil
}

// LoadOS reads the record of OS name. A missing record gives an error that
// wraps fs.ErrNotExist.
func LoadOS(tftpboot, name string) (OS, error) {
	if err := CheckName(name); err != nil {
		return OS{}, err
	}
	root, err := openTFTP(tftpboot)
	if err != nil {
		return OS{}, err
	}
	defer root.Close()
	return loadOS(root, name)
}

func loadOS(root *os.Root, name string) (OS, error) {
	data, err := root.ReadFile(recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return OS{}, fmt.Errorf("no OS %q in %s (goldsync os list shows them, goldsync os add makes one): %w", name, root.Name(), err)
	}
	if err != nil {
		return OS{}, fmt.Errorf("load OS %s: %w", name, err)
	}
	var o OS
	if err := json.Unmarshal(data, &o); err != nil {
		return OS{}, fmt.Errorf("load OS %s: %s: %w", name, recordPath(name), err)
	}
	if o.Name != name {
		return OS{}, fmt.Errorf("load OS %s: %s records OS %q", name, recordPath(name), shortStr(o.Name))
	}
	if o.Style == "" {
		o.Style = StyleDisklessrc // a record from before boot styles
	}
	if err := o.Validate(); err != nil {
		return OS{}, fmt.Errorf("load OS %s: %s: %w", name, recordPath(name), err)
	}
	return o, nil
}

// ListOS returns every stored OS, sorted by name; none when the store does
// not exist yet. A damaged record is an error naming its file.
func ListOS(tftpboot string) ([]OS, error) {
	root, err := openTFTP(tftpboot)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	d, err := root.Open(StoreDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list OS records: %w", err)
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list OS records: %w", err)
	}
	var list []OS
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || fsx.IsAtomicTemp(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("list OS records: %s/%s: %w", StoreDir, e.Name(), err)
		}
		o, err := loadOS(root, name)
		if err != nil {
			return nil, err
		}
		list = append(list, o)
	}
	slices.SortFunc(list, func(a, b OS) int { return strings.Compare(a.Name, b.Name) })
	return list, nil
}

// RemoveOS deletes the record of OS name and its kernel and initrd from the
// TFTP tree (pxeos -d). Node configs that still name the OS are left alone.
// Removing an OS that does not exist is an error wrapping fs.ErrNotExist.
func RemoveOS(tftpboot, name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	root, err := openTFTP(tftpboot)
	if err != nil {
		return err
	}
	defer root.Close()
	// A damaged record can still be removed: only its presence counts.
	if _, err := root.Lstat(recordPath(name)); err != nil {
		return fmt.Errorf("remove OS %s: %w", name, err)
	}
	var errs []error
	for _, f := range []string{kernelDest(name), initrdDest(name)} {
		if err := root.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove OS %s: %w", name, err))
		}
	}
	// The OS directory goes only when nothing else was put in it.
	_ = root.Remove(InstallDir + "/" + name)
	if err := root.Remove(recordPath(name)); err != nil {
		errs = append(errs, fmt.Errorf("remove OS %s: %w", name, err))
	}
	return errors.Join(errs...)
}
