package snapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// A node's identity: the files of its snapshot that say which machine it
// is. Build creates each one in SnapshotDir/<host>/ when, and only when,
// it is absent, and never overwrites or copies it from the image (the
// golden node's hostname, machine-id, ssh host keys and fstab are its
// own, not the nodes'). They are left out of the image-following
// three-way refresh even when a list names them or a directory above
// them, such as /etc/ssh/.
const (
	// HostnamePath holds the host name and a newline.
	HostnamePath = "etc/hostname"
	// MachineIDPath holds 32 random lower-case hex digits and a newline,
	// mode 0444: identical machine-ids collide in DHCP (the DUID is
	// derived from it) and in journald.
	MachineIDPath = "etc/machine-id"
	// FstabPath is a diskless fstab: comments only, no disk (the golden
	// node's mounts its disks).
	FstabPath = "etc/fstab"
	// SSHDir holds the ssh host keys: one pair,
	// ssh_host_<type>_key (0600) and ssh_host_<type>_key.pub (0644), for
	// each type whose public key the image's etc/ssh has, made with
	// ssh-keygen on the image server.
	SSHDir = "etc/ssh"
)

// IsIdentityPath reports whether a tree path is one of a node's identity
// files: HostnamePath, MachineIDPath, FstabPath or an ssh host key
// (etc/ssh/ssh_host_*_key and .pub).
func IsIdentityPath(p string) bool {
	switch p {
	case HostnamePath, MachineIDPath, FstabPath:
		return true
	}
	dir, name := tree.Dir(p), tree.Base(p)
	if dir != SSHDir {
		return false
	}
	_, ok := sshKeyType(strings.TrimSuffix(name, ".pub"))
	return ok
}

// sshKeyType returns the type of a private host key name,
// ssh_host_<type>_key, type being lower-case letters and digits.
func sshKeyType(name string) (string, bool) {
	t, ok := strings.CutPrefix(name, "ssh_host_")
	if !ok {
		return "", false
	}
	t, ok = strings.CutSuffix(t, "_key")
	if !ok || t == "" {
		return "", false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return "", false
		}
	}
	return t, true
}

// withoutIdentity drops the identity paths from a list of entries (the
// image's wanted entries, or a node's record), and hard links to them.
func withoutIdentity(es []*tree.Entry) []*tree.Entry {
	out := es[:0:0]
	for _, e := range es {
		if IsIdentityPath(e.Path) {
			continue
		}
		if e.LinkTo != "" && IsIdentityPath(e.LinkTo) {
			e = e.Clone()
			e.LinkTo = ""
		}
		out = append(out, e)
	}
	return out
}

// imageSSHTypes lists the host key types of the image: those with an
// etc/ssh/ssh_host_<type>_key.pub, sorted. An image without etc/ssh has
// none.
func imageSSHTypes(imageRoot string) ([]string, error) {
	r, err := fsx.OpenRoot(imageRoot)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	d, err := r.OpenDir(SSHDir)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Names()
	if err != nil {
		return nil, err
	}
	var types []string
	for _, n := range names {
		if pub, ok := strings.CutSuffix(n, ".pub"); ok {
			if t, ok := sshKeyType(pub); ok {
				types = append(types, t)
			}
		}
	}
	slices.Sort(types)
	return types, nil
}

// fstabContent is the diskless fstab of a node.
func fstabContent(host string) []byte {
	return []byte(`# /etc/fstab of diskless node ` + host + `, written by goldsync once; yours to edit.
#
# No disk is mounted. The root file system is the image, mounted read-only
# over NFS by the initramfs (goldsync's client piece, from the kernel's
# nfsroot= or root=nfs: argument); the paths of the snapshot lists (files,
# files.custom, rwtab, statetab) are bound read-write from this node's
# snapshot (goldsync.snapshot= on the kernel command line), as listed in
# /.goldsync/boot.list of the snapshot.
#
# <file system> <mount point> <type> <options> <dump> <pass>
`)
}

// identityOut is what makeIdentity did for one node.
type identityOut struct {
	created  int
	present  []string // identity paths that exist after the build
	notices  []string
	problems []string // paths not written
}

// identityFile is one identity file to create.
type identityFile struct {
	path string
	data []byte
	mode uint32
}

// makeIdentity creates the node's identity files that are absent, through
// the node's root, never following a symlink. In a dry run it only counts
// what it would create.
func (b *builder) makeIdentity(ctx context.Context, root *fsx.Root, host string) identityOut {
	var out identityOut
	files := []identityFile{
		{path: HostnamePath, data: []byte(host + "\n"), mode: 0o644},
		{path: MachineIDPath, mode: 0o444}, // data made only when needed
		{path: FstabPath, data: fstabContent(host), mode: 0o644},
	}
	for _, f := range files {
		exists, err := lexists(root, f.path)
		if err != nil {
			out.problems = append(out.problems, fmt.Sprintf("%s: /%s: %v", host, f.path, err))
			continue
		}
		if exists {
			out.present = append(out.present, f.path)
			if f.path == MachineIDPath {
				out.notices = append(out.notices, b.sameAsImage(root, host, f.path)...)
			}
			continue
		}
		if b.opts.DryRun {
			out.created++
			continue
		}
		if f.path == MachineIDPath {
			var id [16]byte
			if _, err := rand.Read(id[:]); err != nil {
				out.problems = append(out.problems, fmt.Sprintf("%s: /%s: %v", host, f.path, err))
				continue
			}
			f.data = []byte(hex.EncodeToString(id[:]) + "\n")
		}
		created, err := createIdentity(root, f)
		if err != nil {
			out.problems = append(out.problems, fmt.Sprintf("%s: /%s: %v", host, f.path, err))
			continue
		}
		out.present = append(out.present, f.path)
		if created {
			out.created++
		}
	}
	for _, t := range b.sshTypes {
		key := SSHDir + "/ssh_host_" + t + "_key"
		haveKey, err1 := lexists(root, key)
		havePub, err2 := lexists(root, key+".pub")
		if err := errors.Join(err1, err2); err != nil {
			out.problems = append(out.problems, fmt.Sprintf("%s: /%s: %v", host, key, err))
			continue
		}
		if haveKey {
			out.present = append(out.present, key)
			out.notices = append(out.notices, b.sameAsImage(root, host, key)...)
		}
		if havePub {
			out.present = append(out.present, key+".pub")
		}
		switch {
		case haveKey && havePub:
			continue
		case haveKey || havePub:
			out.notices = append(out.notices, fmt.Sprintf("%s: /%s: only one half of the key pair is in the snapshot; left alone (remove it to get a new pair)", host, key))
			continue
		case b.opts.DryRun:
			out.created += 2
			continue
		}
		priv, pub, err := b.keygen(ctx, t, host)
		if err != nil {
			// This server's ssh-keygen may not make every type the
			// golden node has (DSA is gone from OpenSSH 9.8): say so,
			// the node's sshd then does without that type.
			out.notices = append(out.notices, fmt.Sprintf("%s: /%s not made: %v", host, key, err))
			continue
		}
		// The public half first: a private key without it is what a
		// crash may leave, and the next build then leaves it alone with a
		// notice rather than pairing it with another key.
		for _, f := range []identityFile{{path: key + ".pub", data: pub, mode: 0o644}, {path: key, data: priv, mode: 0o600}} {
			created, err := createIdentity(root, f)
			if err != nil {
				out.problems = append(out.problems, fmt.Sprintf("%s: /%s: %v", host, f.path, err))
				break
			}
			out.present = append(out.present, f.path)
			if created {
				out.created++
			}
		}
	}
	return out
}

// sameAsImage returns a notice when a node's identity file holds what the
// image's does: the golden node's, copied by a build of an older goldsync
// or by hand.
func (b *builder) sameAsImage(root *fsx.Root, host, p string) []string {
	if b.imgRoot == nil {
		return nil
	}
	mine, err1 := readSmall(root, p)
	theirs, err2 := readSmall(b.imgRoot, p)
	if err1 != nil || err2 != nil || len(mine) == 0 || !bytes.Equal(mine, theirs) {
		return nil
	}
	return []string{fmt.Sprintf("%s: /%s is the golden node's (copied by an older build?): remove it from the snapshot and build again to give the node its own", host, p)}
}

// readSmall reads a regular file of at most 64 KiB without following
// symlinks.
func readSmall(root *fsx.Root, p string) ([]byte, error) {
	f, err := root.OpenFile(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > 64<<10 {
		return nil, errors.New("not a small regular file")
	}
	return io.ReadAll(io.NewSectionReader(f, 0, 64<<10))
}

// keygen makes a host key pair of type t with ssh-keygen, in a private
// temporary directory of the server.
func (b *builder) keygen(ctx context.Context, t, host string) (priv, pub []byte, err error) {
	bin := b.opts.SSHKeygen
	if bin == "" {
		bin = "ssh-keygen"
	}
	dir, err := os.MkdirTemp("", "goldsync-keygen-")
	if err != nil {
		return nil, nil, fmt.Errorf("ssh-keygen: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("ssh-keygen: %w", err)
	}
	f := filepath.Join(dir, "key")
	cmd := exec.CommandContext(ctx, bin, "-q", "-t", t, "-N", "", "-C", "root@"+host, "-f", f)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("ssh-keygen -t %s: %w: %s", t, err, strings.TrimSpace(string(out)))
	}
	if priv, err = os.ReadFile(f); err == nil {
		pub, err = os.ReadFile(f + ".pub")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ssh-keygen -t %s: %w", t, err)
	}
	return priv, pub, nil
}

// lexists reports whether p exists in the node's snapshot (whatever its
// type; a symlink counts as present and is not followed). A parent that
// is missing means no; one that is not a directory is an error.
func lexists(root *fsx.Root, p string) (bool, error) {
	d, name, err := root.OpenParent(p)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, parentErr(err)
	}
	defer d.Close()
	var st unix.Stat_t
	err = d.Lstat(name, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return err == nil, err
}

func parentErr(err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("a parent is not a directory (a symlink?); refused: %w", err)
	}
	return err
}

// openDirAll opens dir beneath root, creating the missing directories
// (root-owned, 0755) one at a time without following symlinks.
func openDirAll(root *fsx.Root, dir string) (*fsx.Dir, error) {
	d, err := root.OpenDir(".")
	if err != nil {
		return nil, err
	}
	if dir == "." || dir == "" {
		return d, nil
	}
	for _, name := range strings.Split(dir, "/") {
		sub, err := d.Sub(name)
		if errors.Is(err, unix.ENOENT) {
			if err = d.Mkdir(name, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				_ = d.Chmod(name, 0o755)
				sub, err = d.Sub(name)
			}
		}
		d.Close()
		if err != nil {
			return nil, parentErr(err)
		}
		d = sub
	}
	return d, nil
}

// createIdentity writes f beneath root when its path does not exist: a
// temporary file (owner root when running as root, f.mode, synced) hard
// linked to the name, which fails if anything appeared there meanwhile,
// so an existing file is never replaced.
func createIdentity(root *fsx.Root, f identityFile) (bool, error) {
	d, err := openDirAll(root, tree.Dir(f.path))
	if err != nil {
		return false, err
	}
	defer d.Close()
	tmp, err := writeTemp(d, f.data, f.mode)
	if err != nil {
		return false, err
	}
	defer func() { _ = d.Unlink(tmp) }()
	err = unix.Linkat(d.FD, tmp, d.FD, tree.Base(f.path), 0)
	if errors.Is(err, unix.EEXIST) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("link into place: %w", err)
	}
	return true, unix.Fsync(d.FD)
}

// writeTemp writes data to a new temporary file in d, with the engine's
// temporary name (so the next build's walk removes a leftover), mode
// perm, owned by root when running as root, synced.
func writeTemp(d *fsx.Dir, data []byte, perm uint32) (string, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	tmp := imaging.TempPrefix + hex.EncodeToString(rnd[:])
	f, err := d.CreateFile(tmp, 0o600)
	if err != nil {
		return "", err
	}
	err = func() error {
		if _, err := f.WriteAt(data, 0); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := unix.Fchown(int(f.Fd()), 0, 0); err != nil {
				return &os.PathError{Op: "fchown", Path: f.Name(), Err: err}
			}
		}
		if err := unix.Fchmod(int(f.Fd()), perm); err != nil {
			return &os.PathError{Op: "fchmod", Path: f.Name(), Err: err}
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = d.Unlink(tmp)
		return "", err
	}
	return tmp, nil
}
