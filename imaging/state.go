package imaging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnsafeStateDir is wrapped when a state dir, or a path in it, fails the
// checks that make it safe to trust: the state dir holds the manifest (which
// vouches for the image's content), the lock and the retention links, and
// goldsync runs as root there.
var ErrUnsafeStateDir = errors.New("unsafe state dir")

// PrepareStateDir creates the state dir (mode 0700) if it is missing and
// checks it: a real directory, not a symlink, owned by the effective user
// (root when goldsync runs as root), with no permission for group or others.
// It does not repair a state dir that fails: someone else could have made
// it, and could have put anything in it.
func PrepareStateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := unix.Mkdir(dir, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("state dir: %w", &os.PathError{Op: "mkdir", Path: dir, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return fmt.Errorf("state dir: %w", &os.PathError{Op: "lstat", Path: dir, Err: err})
	}
	return checkStateStat(dir, &st, unix.S_IFDIR)
}

// checkStateStat checks the lstat of a state dir or of a path in it.
func checkStateStat(path string, st *unix.Stat_t, want uint32) error {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%w: %s is a symlink", ErrUnsafeStateDir, path)
	case st.Mode&unix.S_IFMT != want:
		return fmt.Errorf("%w: %s is not a %s", ErrUnsafeStateDir, path, map[uint32]string{unix.S_IFDIR: "directory", unix.S_IFREG: "regular file"}[want])
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%w: %s is owned by uid %d, not %d (the user goldsync runs as)", ErrUnsafeStateDir, path, st.Uid, os.Geteuid())
	case want == unix.S_IFDIR && st.Mode&0o077 != 0:
		return fmt.Errorf("%w: %s has mode %#o; want 0700 (chmod 0700 it once you have checked its contents)", ErrUnsafeStateDir, path, st.Mode&0o7777)
	}
	return nil
}

// OpenStateFile opens (creating it with mode 0600 when flag has O_CREATE)
// the file name in a state dir checked by PrepareStateDir, never following a
// symlink: a lock or record planted as a symlink is refused, not opened.
func OpenStateFile(dir, name string, flag int) (*os.File, error) {
	p := filepath.Join(dir, name)
	fd, err := unix.Open(p, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("%w: %s is a symlink", ErrUnsafeStateDir, p)
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if err := checkStateStat(p, &st, unix.S_IFREG); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// ResolvePath returns p made absolute with the symlinks of its longest
// existing prefix resolved, so that a path reached through a symlink is
// compared by where it really is (the rest may not exist yet).
func ResolvePath(p string) string { return resolved(p) }

func resolved(p string) string {
	p, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	rest := ""
	for cur := p; ; {
		if r, err := filepath.EvalSymlinks(cur); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

// within reports whether p is dir or lies beneath it (both cleaned).
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
