package cluster

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goldsync/goldsync/remote/rsh"
)

// sshShares are the OpenSSH master connections of one replicate run: a
// replica's push and its build (two sessions to the same replica, one
// after the other) share one login. Each master belongs to the run that
// opened it: its socket is in a private directory made for the run, so no
// other run (nor a later sshd on the same address) is ever reached
// through it, and close ends every master and removes the directory.
// ControlPersist only bounds a master whose run was killed before close.
// Sessions through a replica to others (relays) are not shared: a master
// carries at most sshd's MaxSessions sessions at once.
type sshShares struct {
	log *slog.Logger

	mu    sync.Mutex
	dir   string
	n     int
	socks []shareSocket
}

type shareSocket struct{ ssh, path string }

// shareOpts are the options a shared rsh gets besides the socket: a
// master that outlives its run ends after a minute without sessions, and
// keepalives make a session over a master to an unplugged replica fail
// in seconds instead of waiting for the deadline.
var shareOpts = []string{"ControlMaster=auto", "ControlPersist=60", "ServerAliveInterval=5", "ServerAliveCountMax=3"}

// rsh returns rshCmd with connection sharing through a master of this run
// (a new socket on each call: one per replica), or rshCmd as it is when it
// is not OpenSSH's ssh named as a plain first word, or already sets
// connection sharing or keepalives, or the run's directory cannot be made.
func (s *sshShares) rsh(rshCmd string) string {
	if s == nil {
		return rshCmd
	}
	cmd := rshCmd
	if cmd == "" {
		cmd = "ssh"
	}
	words, err := rsh.SplitRsh(cmd)
	if err != nil || len(words) == 0 || filepath.Base(words[0]) != "ssh" || !strings.HasPrefix(cmd, words[0]) ||
		(len(cmd) > len(words[0]) && cmd[len(words[0])] != ' ' && cmd[len(words[0])] != '\t') {
		return rshCmd
	}
	for _, w := range words[1:] {
		lw := strings.ToLower(w)
		if strings.Contains(lw, "controlmaster") || strings.Contains(lw, "controlpath") || strings.Contains(lw, "controlpersist") ||
			strings.Contains(lw, "serveralive") || w == "-S" || w == "-M" {
			return rshCmd
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		d, err := os.MkdirTemp("", "goldsync-ssh-")
		if err != nil {
			s.log.Warn("replicas: ssh connections not shared", "err", err)
			return rshCmd
		}
		s.dir = d
	}
	s.n++
	sock := filepath.Join(s.dir, strconv.Itoa(s.n))
	// ssh appends a 17-character suffix while it creates the socket; a
	// Unix socket's path has at most 107 bytes.
	if len(sock)+17 > 107 || strings.ContainsAny(sock, " \t\n'\"\\%") {
		return rshCmd
	}
	s.socks = append(s.socks, shareSocket{ssh: words[0], path: sock})
	opts := ""
	for _, o := range append([]string{"ControlPath=" + sock}, shareOpts...) {
		opts += " -o " + o
	}
	return words[0] + opts + cmd[len(words[0]):]
}

// close ends the run's masters ("ssh -O exit") and removes their
// directory.
func (s *sshShares) close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sk := range s.socks {
		if _, err := os.Lstat(sk.path); err != nil {
			continue // no master was started (or it ended)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, sk.ssh, "-S", sk.path, "-O", "exit", "replica").CombinedOutput()
		cancel()
		if err != nil {
			s.log.Debug("replicas: ssh master not ended", "socket", sk.path, "err", err, "output", strings.TrimSpace(string(out)))
		}
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	s.socks, s.dir = nil, ""
}
