package rsh

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// maxSocketPath is the longest path a Unix socket may have (sun_path less
// its terminating NUL).
const maxSocketPath = 107

// ShareConnection returns rsh with OpenSSH connection sharing turned on:
// the first command starts a master connection that stays up for persist
// after the last session ends, and later commands run as new sessions over
// it, without a new login (the login is most of a small push's time). The
// master's socket lives in dir (created 0700; a private directory under
// the temp dir when dir's path is too long for a socket).
//
// rsh is returned as it is when it is not OpenSSH's ssh, when it already
// sets ControlMaster or ControlPath, or when persist is not positive.
func ShareConnection(rsh, dir string, persist time.Duration) (string, error) {
	if rsh == "" {
		rsh = "ssh"
	}
	if persist <= 0 {
		return rsh, nil
	}
	words, err := SplitRsh(rsh)
	if err != nil {
		return "", err
	}
	if filepath.Base(words[0]) != "ssh" {
		return rsh, nil
	}
	for _, w := range words[1:] {
		lw := strings.ToLower(w)
		if strings.Contains(lw, "controlmaster") || strings.Contains(lw, "controlpath") || w == "-S" || w == "-M" {
			return rsh, nil
		}
	}
	// The socket's name: a hash of the whole rsh (so commands with other
	// keys or options never share a master) and "%C", which ssh expands to
	// a 40-character hash of the endpoints; ssh appends up to 17
	// characters while it creates the socket.
	sum := sha256.Sum256([]byte(strings.Join(words, "\x00")))
	name := "ssh-" + hex.EncodeToString(sum[:4]) + "-%C"
	const expanded = len("/ssh-") + 8 + 1 + 40 + 17
	if dir == "" || len(dir)+expanded > maxSocketPath || strings.ContainsAny(dir, "% \t\n\"'") {
		// Too long for a socket, or not expressible in an ssh option.
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("goldsync-ssh-%d", os.Geteuid()))
	}
	if err := PrivateDir(dir); err != nil {
		return "", fmt.Errorf("ssh connection sharing: %w", err)
	}
	opts := []string{
		"-o", "ControlMaster=auto",
		"-o", "ControlPath=" + filepath.Join(dir, name),
		"-o", fmt.Sprintf("ControlPersist=%d", max(1, int(persist.Seconds()))),
	}
	all := append(append([]string{words[0]}, opts...), words[1:]...)
	out, err := joinRsh(all)
	if err != nil {
		return rsh, nil // a word joinRsh cannot quote: no sharing, as before
	}
	return out, nil
}

// joinRsh joins words into a command SplitRsh splits back into them.
func joinRsh(words []string) (string, error) {
	out := make([]string, len(words))
	for i, w := range words {
		switch {
		case w != "" && !strings.ContainsAny(w, " \t\n'\""):
			out[i] = w
		case !strings.Contains(w, "'"):
			out[i] = "'" + w + "'"
		case !strings.Contains(w, `"`):
			out[i] = `"` + w + `"`
		default:
			return "", fmt.Errorf("remote shell word %q has both kinds of quotes", w)
		}
	}
	return strings.Join(out, " "), nil
}

// PrivateDir makes dir (0700) or checks that the one there is a directory
// of ours that nobody else can write: a master's socket gives whoever can
// reach it the logged-in session.
func PrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return fmt.Errorf("%s is not a private directory of uid %d (owner %d, mode %#o)", dir, os.Geteuid(), st.Uid, st.Mode&0o777)
	}
	return nil
}
