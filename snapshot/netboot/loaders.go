package netboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/goldsync/goldsync/imaging/fsx"
)

// LoaderSource is a boot loader file of the image server's own packages
// and where it goes in the TFTP tree.
type LoaderSource struct {
	// From is the file on the server, an absolute path; symlinks are
	// followed (they are the server's packages, not a node's data).
	From string
	// To are its paths in the TFTP tree, relative to the TFTP root.
	To []string
	// Package names the Debian package that ships it, for the notice
	// when it is missing.
	Package string
}

// DefaultLoaderSources are the loaders InstallLoaders copies from a Debian
// or Ubuntu image server:
//
//   - pxelinux.0 (package pxelinux) and ldlinux.c32 (syslinux-common),
//     which pxelinux loads from its own directory, into linux-install/
//     for BIOS clients;
//   - the signed network GRUB (grub-efi-amd64-signed) into
//     linux-install/grub/ as grubnetx64.efi and as grubx64.efi, the name
//     shim loads from its own directory, and the signed shim (shim-signed)
//     as shimx64.efi, for x86-64 UEFI clients, Secure Boot included. This
//     GRUB reads its config from /grub/grub.cfg of the TFTP root (its
//     built-in prefix), which WriteNodeConfigs writes (GrubPrefixDir);
//     InstallLoaders says so when another tool's config is there;
//   - iPXE (package ipxe), undionly.kpxe and ipxe.efi where present, into
//     linux-install/ipxe/.
var DefaultLoaderSources = []LoaderSource{
	{From: "/usr/lib/PXELINUX/pxelinux.0", To: []string{InstallDir + "/pxelinux.0"}, Package: "pxelinux"},
	{From: "/usr/lib/syslinux/modules/bios/ldlinux.c32", To: []string{InstallDir + "/ldlinux.c32"}, Package: "syslinux-common"},
	{From: "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", To: []string{GrubDir + "/grubnetx64.efi", GrubDir + "/grubx64.efi"}, Package: "grub-efi-amd64-signed"},
	{From: "/usr/lib/shim/shimx64.efi.signed", To: []string{GrubDir + "/shimx64.efi"}, Package: "shim-signed"},
	{From: "/usr/lib/ipxe/undionly.kpxe", To: []string{IPXEDir + "/undionly.kpxe"}, Package: "ipxe"},
	{From: "/usr/lib/ipxe/ipxe.efi", To: []string{IPXEDir + "/ipxe.efi"}, Package: "ipxe"},
}

// LoaderOptions are the settings of InstallLoaders.
type LoaderOptions struct {
	// TFTPBoot is the TFTP root, e.g. /tftpboot.
	TFTPBoot string
	// Sources are the loaders to install; nil means
	// DefaultLoaderSources.
	Sources []LoaderSource
}

// LoaderResult says what InstallLoaders did.
type LoaderResult struct {
	// Installed are the TFTP paths written (new or changed).
	Installed []string `json:"installed,omitempty"`
	// Unchanged are the TFTP paths that already held the same content.
	Unchanged []string `json:"unchanged,omitempty"`
	// Notices say which loaders the server lacks and which package has
	// them.
	Notices []string `json:"notices,omitempty"`
}

// maxLoaderSize bounds a loader file: the largest, signed GRUB, is a few
// MiB.
const maxLoaderSize = 64 << 20

// InstallLoaders copies the boot loaders of the image server's own
// packages into the TFTP tree (opts.Sources, by default
// DefaultLoaderSources). It is idempotent: a file already holding the same
// content is left alone; others are replaced atomically (temporary file,
// fsync, rename), mode 0644 in directories of mode 0755. A loader the
// server lacks is skipped with a notice naming its package. Only a file
// that exists but cannot be read or written is an error; the other loaders
// are still installed.
func InstallLoaders(ctx context.Context, opts LoaderOptions) (*LoaderResult, error) {
	srcs := opts.Sources
	if srcs == nil {
		srcs = DefaultLoaderSources
	}
	for _, s := range srcs {
		if !path.IsAbs(s.From) || len(s.To) == 0 {
			return nil, fmt.Errorf("install loaders: bad source %q: want an absolute path and a destination", shortStr(s.From))
		}
		for _, to := range s.To {
			if to == "" || path.IsAbs(to) || path.Clean(to) != to || to == "." || to == ".." || strings.HasPrefix(to, "../") {
				return nil, fmt.Errorf("install loaders: bad destination %q: want a clean path relative to the TFTP root", shortStr(to))
			}
		}
	}
	root, err := openTFTP(opts.TFTPBoot)
	if err != nil {
		return nil, fmt.Errorf("install loaders: %w", err)
	}
	defer root.Close()
	res := &LoaderResult{}
	var errs []error
	for _, s := range srcs {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		data, err := readLoader(s.From)
		if errors.Is(err, fs.ErrNotExist) {
			res.Notices = append(res.Notices, fmt.Sprintf("%s not found: skipped (install package %s on this server to serve it)", s.From, s.Package))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("install loaders: %w", err))
			continue
		}
		for _, to := range s.To {
			if same, _ := root.ReadFile(to); same != nil && bytes.Equal(same, data) {
				if fi, err := root.Lstat(to); err == nil && fi.Mode().IsRegular() {
					if fi.Mode().Perm() != fileMode {
						_ = root.Chmod(to, fileMode)
					}
					res.Unchanged = append(res.Unchanged, to)
					continue
				}
			}
			if err := mkdirAll(root, path.Dir(to)); err != nil {
				errs = append(errs, fmt.Errorf("install loaders: %s: %w", to, err))
				continue
			}
			if _, err := fsx.WriteAtomic(ctx, root, to, bytes.NewReader(data), fileMode); err != nil {
				errs = append(errs, fmt.Errorf("install loaders: %s to %s: %w", s.From, to, err))
				continue
			}
			res.Installed = append(res.Installed, to)
		}
	}
	if !ownGrubPrefixConfig(root) && slices.ContainsFunc(srcs, func(s LoaderSource) bool { return slices.Contains(s.To, GrubDir+"/grubx64.efi") }) {
		res.Notices = append(res.Notices, fmt.Sprintf("%s/%s was not written by goldsync: the signed network GRUB reads it (its prefix is /%s), so add goldsync's lines to it (see GrubSharedConfig in package netboot, or linux-install/grub/grub.cfg once node add ran)",
			GrubPrefixDir, GrubSharedName, GrubPrefixDir))
	}
	slices.Sort(res.Installed)
	slices.Sort(res.Unchanged)
	return res, errors.Join(errs...)
}

// readLoader reads a regular file of at most maxLoaderSize bytes.
func readLoader(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	if fi.Size() > maxLoaderSize {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxLoaderSize>>20)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxLoaderSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}
