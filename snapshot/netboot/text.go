package netboot

import (
	"fmt"
	"io"
	"path/filepath"
)

// WriteText writes what InstallLoaders did as goldsync prints it: a line
// with the counts for the TFTP root tftp, and with verbose a line per
// file installed. The notices are the caller's to show.
func (r *LoaderResult) WriteText(w io.Writer, tftp string, verbose bool) error {
	_, err := fmt.Fprintf(w, "goldsync: boot loaders in %s: %d installed, %d up to date\n", filepath.Join(tftp, InstallDir), len(r.Installed), len(r.Unchanged))
	for _, p := range r.Installed {
		if err != nil || !verbose {
			break
		}
		_, err = fmt.Fprintf(w, "  installed %s\n", p)
	}
	return err
}

// Summary is the line goldsync os add ends with: the OS, its boot style
// (with its initramfs generator and NFS options) and the kernel and
// initrd in the TFTP tree.
func (o *OS) Summary() string {
	style := o.Style
	if o.Initramfs != "" {
		style += ", " + o.Initramfs + ", NFS options " + o.NFSOptions
	}
	return fmt.Sprintf("goldsync: added OS %s (boot style %s): %s/%s, %s/%s", o.Name, style, InstallDir, o.KernelFile, InstallDir, o.InitrdFile)
}

// MakeAbs makes the paths of o absolute, as an admin types them: relative
// to the working directory, a trailing slash from tab completion
// allowed. Records hold them absolute.
func (o *AddOSOptions) MakeAbs() {
	for _, p := range []*string{&o.ImageRoot, &o.Location, &o.SnapshotDir, &o.TFTPBoot} {
		if *p != "" {
			if a, err := filepath.Abs(*p); err == nil {
				*p = a
			}
		}
	}
}

// WriteRemoved writes what RemoveNodes removed, a line a boot config
// and a line a snapshot.
func WriteRemoved(w io.Writer, removed []RemovedNode) error {
	for _, r := range removed {
		if _, err := fmt.Fprintf(w, "goldsync: removed the boot configs of %s (%s)\n", r.Node.Host, r.Node.IP); err != nil {
			return err
		}
		if r.Snapshot != "" {
			if _, err := fmt.Fprintf(w, "goldsync: removed the snapshot %s\n", r.Snapshot); err != nil {
				return err
			}
		}
	}
	return nil
}
