// Package exposure checks how an image or snapshot directory is exposed
// to the image server's own local users. An image holds setuid-root
// binaries and device nodes by design (it is a copy of a golden node's
// root, /dev/* aside); on the server they must be neither runnable nor
// openable by a local user. Two things stop that, and Check warns when
// either is missing:
//
//   - the filesystem holding the directory is mounted nosuid and nodev
//     (a setuid bit then grants nothing, a device node opens nothing);
//   - a directory above it is not searchable by others (mode o-x, such as
//     /diskless 0700 or 0750), so a local user cannot reach the image at
//     all. The directory's own mode is not considered: a pull sets it to
//     the golden node's "/" (0755).
//
// The check reads /proc/self/mountinfo and the modes of the parents; it
// does not consider ACLs, group membership or other namespaces. It
// changes nothing: the admin's fix is a mount option or a chmod (see
// docs/SECURITY.md).
package exposure

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	// MountPoint is where the filesystem is mounted, unescaped.
	MountPoint string `json:"mount_point"`
	// FSType is the filesystem type ("ext4", "tmpfs", "nfs4").
	FSType string `json:"fs_type"`
	// Source is the mounted device or "none".
	Source string `json:"source"`
	// Options are the per-mount options ("rw", "nosuid", "nodev",
	// "relatime"), where nosuid and nodev appear.
	Options      []string `json:"options"`
	major, minor uint32
}

// Has reports whether the mount has option opt ("nosuid").
func (m Mount) Has(opt string) bool { return slices.Contains(m.Options, opt) }

// Problems Check reports.
const (
	// ProblemSuid: the filesystem is mounted without nosuid.
	ProblemSuid = "suid"
	// ProblemDev: the filesystem is mounted without nodev.
	ProblemDev = "dev"
	// ProblemTraversable: every directory above it is searchable by
	// others.
	ProblemTraversable = "traversable"
)

// Warning is one way a directory is exposed.
type Warning struct {
	// Dir is the directory checked, as given.
	Dir string `json:"dir"`
	// Problem is ProblemSuid, ProblemDev or ProblemTraversable.
	Problem string `json:"problem"`
	// Message says what is wrong and what to do, in one line.
	Message string `json:"message"`
}

func (w Warning) String() string { return w.Message }

// Check returns the warnings for dir, an image root or snapshot
// directory on this server (none when it is safe). A directory that
// does not exist yet has none.
func Check(dir string) ([]Warning, error) {
	return check(dir, "/proc/self/mountinfo")
}

func check(dir, mountinfo string) ([]Warning, error) {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, err
	}
	m, err := mountOf(real, mountinfo)
	if err != nil {
		return nil, err
	}
	var out []Warning
	var missing []string
	for _, c := range []struct{ opt, problem, what string }{
		{"nosuid", ProblemSuid, "its setuid and setgid binaries run with their owner's rights"},
		{"nodev", ProblemDev, "its device nodes (disks, memory) can be opened"},
	} {
		if !m.Has(c.opt) {
			missing = append(missing, c.opt)
			out = append(out, Warning{Dir: dir, Problem: c.problem, Message: fmt.Sprintf(
				"%s is on %s (%s) mounted without %s: %s for whoever reaches them on this server",
				dir, m.MountPoint, m.FSType, c.opt, c.what)})
		}
	}
	for i := range out {
		out[i].Message += "; mount it " + strings.Join(missing, ",")
	}
	open, err := traversable(real)
	if err != nil {
		return nil, err
	}
	if open {
		out = append(out, Warning{Dir: dir, Problem: ProblemTraversable, Message: fmt.Sprintf(
			"%s: every directory above it is searchable by others, so any local user reaches its setuid binaries and device nodes; %s",
			dir, fixTraversable(real))})
	}
	return out, nil
}

// traversable reports whether every directory from "/" to dir's parent
// has the search bit for others.
func traversable(dir string) (bool, error) {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return false, fmt.Errorf("stat %s: %w", p, err)
		}
		if st.Mode&0o001 == 0 {
			return false, nil
		}
		if p == "/" {
			return true, nil
		}
	}
}

// fixTraversable says how to close the way to dir: the search bit off
// its parent when that parent is the image's own, or a directory of its
// own when the parent is shared (/tmp, /srv, a sticky or world-writable
// one), whose search bit other users need.
func fixTraversable(dir string) string {
	parent := filepath.Dir(dir)
	var st unix.Stat_t
	shared := sharedDirs[parent] || unix.Stat(parent, &st) != nil || st.Mode&(unix.S_ISVTX|0o002) != 0
	if shared {
		// Taking the search bit off /tmp, /srv or / would break every
		// other user of it: the image wants a directory of its own.
		return fmt.Sprintf("move it into a directory of its own that others cannot search (e.g. install -d -m 0700 %s; the NFS server and goldsync run as root); do not chmod o-x %s",
			filepath.Join(parent, "goldsync"), parent)
	}
	return fmt.Sprintf("chmod o-x %s (its parent; the NFS server and goldsync run as root and do not need it)", parent)
}

// sharedDirs are directories other users and programs need to search:
// never the place to take the search bit off.
var sharedDirs = map[string]bool{
	"/": true, "/tmp": true, "/var": true, "/var/tmp": true, "/var/lib": true, "/srv": true,
	"/home": true, "/usr": true, "/usr/local": true, "/opt": true, "/mnt": true, "/media": true,
	"/run": true, "/dev/shm": true, "/export": true, "/exports": true,
}

// MountOf returns the mount that dir (an absolute path, symlinks
// resolved) is on, from /proc/self/mountinfo: the mount with the longest
// mount point above it, the one mounted last when several are stacked,
// preferring one whose device is dir's.
func MountOf(dir string) (Mount, error) { return mountOf(dir, "/proc/self/mountinfo") }

func mountOf(dir, mountinfo string) (Mount, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return Mount{}, err
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return Mount{}, fmt.Errorf("%s: %w", mountinfo, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return Mount{}, fmt.Errorf("stat %s: %w", dir, err)
	}
	best, bestDev := -1, -1
	for i, m := range mounts {
		if !under(dir, m.MountPoint) {
			continue
		}
		if best < 0 || len(m.MountPoint) >= len(mounts[best].MountPoint) {
			best = i
		}
		if m.major == unix.Major(st.Dev) && m.minor == unix.Minor(st.Dev) &&
			(bestDev < 0 || len(m.MountPoint) >= len(mounts[bestDev].MountPoint)) {
			bestDev = i
		}
	}
	switch {
	case bestDev >= 0 && len(mounts[bestDev].MountPoint) == len(mounts[best].MountPoint):
		return mounts[bestDev], nil
	case best >= 0:
		return mounts[best], nil
	}
	return Mount{}, fmt.Errorf("%s: no mount holds %s", mountinfo, dir)
}

// under reports whether path is mountPoint or beneath it.
func under(path, mountPoint string) bool {
	return mountPoint == "/" || path == mountPoint || strings.HasPrefix(path, mountPoint+"/")
}

// parseMountinfo reads proc(5)'s mountinfo format:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if len(f) < 6 || sep < 6 || len(f) < sep+3 {
			return nil, fmt.Errorf("line %d: not a mountinfo line", n)
		}
		maj, min, ok := strings.Cut(f[2], ":")
		major, err1 := strconv.ParseUint(maj, 10, 32)
		minor, err2 := strconv.ParseUint(min, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("line %d: device %q", n, f[2])
		}
		out = append(out, Mount{
			MountPoint: unescape(f[4]),
			Options:    strings.Split(f[5], ","),
			FSType:     f[sep+1],
			Source:     unescape(f[sep+2]),
			major:      uint32(major),
			minor:      uint32(minor),
		})
	}
	return out, sc.Err()
}

// unescape undoes the kernel's octal escapes (\040 for a blank) in
// mountinfo paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
