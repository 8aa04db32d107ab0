package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/remote/rsh"
)

// sshShares are the OpenSSH master connections of one replicate run: a
// replica's push and its build (two sessions to the same replica, one
// after the other) share one login, and so do the pushes of a
// cluster.Run's images to a replica that serves several (runMasters).
//
// By default each master belongs to the run that opened it: its socket is
// in a private directory made for the run, so no other run (nor a later
// sshd on the same address) is ever reached through it, and close ends
// every master and removes the directory. ControlPersist only bounds a
// master whose run was killed before close. Sessions through a replica to
// others (relays) are not shared: a master carries at most sshd's
// MaxSessions sessions at once.
//
// With persist (config.Image.ReplicaSSHPersist) the masters outlive the
// run, for the primary's own pushes too: each replica's socket is in the
// image's state dir (ssh/, 0700), beside a record of what the master is
// tied to (see masterTie). A later run uses the master only while the tie
// still holds, and ends it otherwise.
type sshShares struct {
	log *slog.Logger
	// persist keeps the masters up across runs; stateDir is the image's.
	persist  time.Duration
	stateDir string

	// run holds the masters that end with the run; ownRun says they are
	// this image's alone (else a cluster.Run shares them among its
	// images and ends them itself).
	run    *runMasters
	ownRun bool
}

// runMasters are the masters that belong to one run, their sockets in a
// private directory made for it: one a replica's rsh and address, so a
// replica that serves several of a cluster.Run's images is logged in to
// once a run, not once an image.
type runMasters struct {
	log *slog.Logger
	// multi are the keys (see masterKey) of replicas that serve more
	// than one of the run's images: their pushes share the master even
	// when nothing else of the image's goes to them.
	multi map[string]bool

	mu    sync.Mutex
	dir   string
	n     int
	socks []shareSocket
	byKey map[string]string // masterKey → socket
}

// newShares returns an image's sshShares: over run's masters when run is
// not nil, else over masters of its own.
func newShares(log *slog.Logger, img *config.Image, run *runMasters) *sshShares {
	s := &sshShares{log: log, persist: img.ReplicaSSHPersist, stateDir: img.StateDir, run: run}
	if run == nil {
		s.run, s.ownRun = &runMasters{log: log}, true
	}
	return s
}

// newRunMasters returns the masters a cluster.Run of images shares, nil
// when no replica serves more than one of them.
func newRunMasters(log *slog.Logger, images []*config.Image) *runMasters {
	seen, multi := map[string]int{}, map[string]bool{}
	for i, img := range images {
		for _, rep := range img.Replicas {
			k := masterKey(&rep)
			if j, ok := seen[k]; ok && j != i {
				multi[k] = true
			}
			seen[k] = i
		}
	}
	if len(multi) == 0 {
		return nil
	}
	return &runMasters{log: log, multi: multi}
}

// masterKey says which replicas one master serves: the same rsh to the
// same destination.
func masterKey(rep *config.Replica) string { return rep.Rsh + "\x00" + rep.SSH }

// wanted reports whether the primary's own sessions to rep go through a
// master: when a build follows the push, when masters are kept, or when
// the replica serves another of the run's images too.
func (s *sshShares) wanted(rep *config.Replica, build bool) bool {
	return s != nil && (build || s.keep() || s.run.multi[masterKey(rep)])
}

type shareSocket struct{ ssh, path string }

// shareOpts are the options a shared rsh gets besides the socket and the
// keepalives: a master that outlives its run ends after a minute without
// sessions.
var shareOpts = []string{"ControlMaster=auto", "ControlPersist=60"}

// keepalive is the ServerAliveInterval of a shared connection when the
// rsh sets no ConnectTimeout: with ServerAliveCountMax=3, a session over a
// master to an unplugged replica fails in about three times this instead
// of waiting for the deadline.
const keepalive = 5

// keepaliveOpts are the keepalive options for the words of an rsh: an
// interval of a third of its ConnectTimeout (at least a second), else
// keepalive seconds, three times.
func keepaliveOpts(words []string) []string {
	iv := keepalive
	for _, w := range words[1:] {
		w = strings.ToLower(strings.TrimPrefix(w, "-o"))
		v, ok := strings.CutPrefix(w, "connecttimeout")
		if !ok {
			continue
		}
		v = strings.TrimLeft(v, " \t=")
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			iv = max(1, n/3)
		}
	}
	return []string{"ServerAliveInterval=" + strconv.Itoa(iv), "ServerAliveCountMax=3"}
}

// shareable returns the rsh's words when it is OpenSSH's ssh named as a
// plain first word and sets no connection sharing or keepalives of its
// own; nil otherwise.
func shareable(rshCmd string) []string {
	cmd := rshCmd
	if cmd == "" {
		cmd = "ssh"
	}
	words, err := rsh.SplitRsh(cmd)
	if err != nil || len(words) == 0 || filepath.Base(words[0]) != "ssh" || !strings.HasPrefix(cmd, words[0]) ||
		(len(cmd) > len(words[0]) && cmd[len(words[0])] != ' ' && cmd[len(words[0])] != '\t') {
		return nil
	}
	for _, w := range words[1:] {
		lw := strings.ToLower(w)
		if strings.Contains(lw, "controlmaster") || strings.Contains(lw, "controlpath") || strings.Contains(lw, "controlpersist") ||
			strings.Contains(lw, "serveralive") || w == "-S" || w == "-M" {
			return nil
		}
	}
	return words
}

// withOpts is rshCmd with "-o OPT" for each of opts after its first word.
func withOpts(rshCmd string, words []string, opts []string) string {
	cmd := rshCmd
	if cmd == "" {
		cmd = "ssh"
	}
	s := ""
	for _, o := range opts {
		s += " -o " + o
	}
	return words[0] + s + cmd[len(words[0]):]
}

// socketOK reports whether sock can be a master's socket path: ssh
// appends a 17-character suffix while it creates the socket, a Unix
// socket's path has at most 107 bytes, and ControlPath expands '%'.
func socketOK(sock string) bool {
	return len(sock)+17 <= 107 && !strings.ContainsAny(sock, " \t\n'\"\\%")
}

// conn returns the rsh for the primary's own sessions to rep, sharing a
// master, and the connection's handle (nil when not shared: rep's rsh is
// returned as it is when it is not OpenSSH's ssh named as a plain first
// word, or already sets connection sharing or keepalives, or no socket
// can be made).
func (s *sshShares) conn(ctx context.Context, rep *config.Replica) (string, *shareConn) {
	if s == nil {
		return rep.Rsh, nil
	}
	words := shareable(rep.Rsh)
	if words == nil {
		return rep.Rsh, nil
	}
	if s.persist > 0 {
		if c := s.persistent(ctx, rep, words); c != nil {
			opts := append([]string{"ControlPath=" + c.sock, "ControlMaster=auto", fmt.Sprintf("ControlPersist=%d", max(1, int(s.persist.Seconds())))}, keepaliveOpts(words)...)
			return withOpts(rep.Rsh, words, opts), c
		}
	}
	sock, ok := s.run.socket(masterKey(rep), words[0])
	if !ok {
		return rep.Rsh, nil
	}
	opts := append(append([]string{"ControlPath=" + sock}, shareOpts...), keepaliveOpts(words)...)
	return withOpts(rep.Rsh, words, opts), &shareConn{ssh: words[0], sock: sock}
}

// socket returns the socket of the master for key, a new path in the
// run's directory the first time (the first session starts the master:
// ControlMaster=auto); false when none can be made.
func (m *runMasters) socket(key, sshBin string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sock, ok := m.byKey[key]; ok {
		return sock, true
	}
	if m.dir == "" {
		d, err := os.MkdirTemp("", "goldsync-ssh-")
		if err != nil {
			m.log.Warn("replicas: ssh connections not shared", "err", err)
			return "", false
		}
		m.dir = d
	}
	m.n++
	sock := filepath.Join(m.dir, strconv.Itoa(m.n))
	if !socketOK(sock) {
		return "", false
	}
	m.socks = append(m.socks, shareSocket{ssh: sshBin, path: sock})
	if m.byKey == nil {
		m.byKey = map[string]string{}
	}
	m.byKey[key] = sock
	return sock, true
}

// keep reports whether the masters outlive the run.
func (s *sshShares) keep() bool { return s != nil && s.persist > 0 }

// close ends the image's own masters (those of a cluster.Run of several
// images end with the run). Persistent masters stay up.
func (s *sshShares) close() {
	if s != nil && s.ownRun {
		s.run.close()
	}
}

// close ends the run's masters ("ssh -O exit") and removes their
// directory.
func (m *runMasters) close() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sk := range m.socks {
		if _, err := os.Lstat(sk.path); err != nil {
			continue // no master was started (or it ended)
		}
		if out, err := exitMaster(sk.ssh, sk.path); err != nil {
			m.log.Debug("replicas: ssh master not ended", "socket", sk.path, "err", err, "output", out)
		}
	}
	if m.dir != "" {
		os.RemoveAll(m.dir)
	}
	m.socks, m.dir, m.byKey = nil, "", nil
}

// exitMaster asks the master on sock to end ("ssh -O exit").
func exitMaster(sshBin, sock string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sshBin, "-S", sock, "-O", "exit", "replica").CombinedOutput()
	if err == nil {
		// "ssh -O exit" returns once the master was told; it unlinks
		// the socket as it ends.
		for range 100 {
			if _, serr := os.Lstat(sock); serr != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return strings.TrimSpace(string(out)), err
}

// shareConn is one replica's shared connection in a run.
type shareConn struct {
	ssh  string // the ssh binary
	sock string // the master's socket

	// Persistent masters only:
	log    *slog.Logger
	record string     // the tie record beside the socket
	tie    *masterTie // what the master must be tied to (read before the session)
	ino    uint64     // the socket's inode before the session, 0 if none
	reused bool       // a master tied to the same tie was up before the session
}

// masterTie is what a persistent master is tied to: the replica's rsh and
// destination, and the files ssh read to check the replica's host key
// when the master logged in (the known_hosts files "ssh -G" names, and
// the ssh config files), by the hash of their contents. A master is used
// only while the files hash the same: a replica reinstalled or replaced
// with another host key needs its known_hosts entry changed before a new
// login can reach it, and that change ends the old master instead of
// letting its session reach whatever the old connection still leads to.
type masterTie struct {
	SSH    string   `json:"ssh"`
	Socket string   `json:"socket"`
	Rsh    string   `json:"rsh"`
	Dest   string   `json:"dest"`
	Files  []string `json:"files"`
	Hash   string   `json:"hash"`
}

// errNoTie: the rsh turns off host key checking, so nothing ties a
// master to the server it logged in to.
var errNoTie = errors.New("StrictHostKeyChecking is off: a kept connection cannot be tied to the replica's host key")

// persistent prepares the persistent master of rep: its socket, and the
// check of the master already there (ended unless its tie holds). nil
// when none can be used (then the run's own master is).
func (s *sshShares) persistent(ctx context.Context, rep *config.Replica, words []string) *shareConn {
	dir := filepath.Join(s.stateDir, "ssh")
	if err := rsh.PrivateDir(dir); err != nil {
		s.log.Warn("replicas: ssh connections not kept across runs", "replica", rep.Name, "err", err)
		return nil
	}
	sum := sha256.Sum256([]byte(s.stateDir + "\x00" + rep.Name + "\x00" + rep.SSH + "\x00" + strings.Join(words, "\x00")))
	name := "m-" + hex.EncodeToString(sum[:8])
	c := &shareConn{ssh: words[0], log: s.log, record: filepath.Join(dir, name+".json"), sock: filepath.Join(dir, name)}
	if !socketOK(c.sock) {
		// The state dir's path is too long for a socket: a private
		// directory of this user's under the temp dir; the name
		// hashes the state dir.
		tmp := filepath.Join(os.TempDir(), fmt.Sprintf("goldsync-ssh-%d", os.Geteuid()))
		if err := rsh.PrivateDir(tmp); err != nil {
			s.log.Warn("replicas: ssh connections not kept across runs", "replica", rep.Name, "err", err)
			return nil
		}
		if c.sock = filepath.Join(tmp, name); !socketOK(c.sock) {
			return nil
		}
	}
	old, _ := readTie(c.record)
	if old != nil && (old.Socket != c.sock || old.SSH != c.ssh || old.Rsh != strings.Join(words, "\x00") || old.Dest != rep.SSH) {
		old = nil
	}
	c.ino = inode(c.sock)
	if c.ino != 0 && old != nil {
		// A master is up: it is used if the files its login read (no
		// "ssh -G" then) hash as they did.
		if t, err := tieOf(c.ssh, words, rep.SSH, old.Files); err == nil && t.Hash == old.Hash {
			t.Socket = c.sock
			c.tie, c.reused = t, true
			return c
		}
		c.drop("the replica's host key files changed since it logged in")
	} else if c.ino != 0 {
		c.drop("no record of what it logged in to")
	}
	t, err := newTie(ctx, words, rep.SSH)
	if err != nil {
		s.log.Warn("replicas: ssh connection not kept across runs", "replica", rep.Name, "err", err)
		return nil
	}
	t.Socket = c.sock
	c.tie = t
	return c
}

// drop ends the master on c's socket, if any, and removes its record: the
// next session logs in afresh.
func (c *shareConn) drop(why string) {
	if c == nil || c.record == "" {
		return
	}
	if inode(c.sock) != 0 {
		if out, err := exitMaster(c.ssh, c.sock); err != nil {
			c.log.Debug("replicas: ssh master not ended", "socket", c.sock, "err", err, "output", out)
			os.Remove(c.sock)
		}
		c.log.Info("replicas: kept ssh connection ended, logging in afresh", "socket", c.sock, "why", why)
	}
	os.Remove(c.record)
	c.ino, c.reused = 0, false
}

// retry reports whether a session that failed with err should be tried
// again with a fresh login: it went over a master kept from an earlier run
// and failed in ssh before the receiver answered (the master's connection
// had died, or leads to a server that is gone). The master is ended first.
func (c *shareConn) retry(err error) bool {
	if c == nil || !c.reused || !errors.Is(err, errNoSession) {
		return false
	}
	c.drop("a session over it failed before the receiver answered")
	return true
}

// opened records the tie of a master the run's session started (the
// socket is new), so a later run can use it.
func (c *shareConn) opened() {
	if c == nil || c.record == "" {
		return
	}
	ino := inode(c.sock)
	if ino == 0 || ino == c.ino && c.reused {
		return
	}
	data, err := json.Marshal(c.tie)
	if err == nil {
		err = fsx.WritePathAtomic(c.record, append(data, '\n'), 0o600)
	}
	if err != nil {
		c.log.Warn("replicas: kept ssh connection not recorded: ending it", "socket", c.sock, "err", err)
		c.drop("not recorded")
		return
	}
	c.ino, c.reused = ino, true
}

// inode is the inode of path's socket, 0 when there is none.
func inode(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return 0
	}
	return st.Ino
}

// readTie reads a tie record; nil when there is none or it does not parse.
func readTie(path string) (*masterTie, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t masterTie
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// newTie asks ssh which files it reads to check the replica's host key
// ("ssh -G": the known_hosts files), and ties to them and the ssh config
// files.
func newTie(ctx context.Context, words []string, dest string) (*masterTie, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	args := append(append([]string{"-G"}, words[1:]...), dest)
	out, err := exec.CommandContext(ctx, words[0], args...).Output()
	if err != nil {
		return nil, fmt.Errorf("ssh -G %s: %w", dest, err)
	}
	files, err := tieFiles(bytes.NewReader(out), words)
	if err != nil {
		return nil, err
	}
	return tieOf(words[0], words, dest, files)
}

// tieFiles are the files a master's login read to check the host key, from
// "ssh -G" output: the known_hosts files and the ssh config files (-F's,
// else the user's and the system's).
func tieFiles(g io.Reader, words []string) ([]string, error) {
	home, _ := os.UserHomeDir()
	expand := func(p string) string {
		if rest, ok := strings.CutPrefix(p, "~/"); ok && home != "" {
			return filepath.Join(home, rest)
		}
		return p
	}
	var files []string
	sc := bufio.NewScanner(g)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), " ")
		switch key {
		case "userknownhostsfile", "globalknownhostsfile":
			for _, f := range strings.Fields(val) {
				files = append(files, expand(f))
			}
		case "stricthostkeychecking":
			if val == "false" || val == "no" {
				return nil, errNoTie
			}
		case "knownhostscommand":
			if val != "" && val != "none" {
				return nil, errors.New("a KnownHostsCommand checks the host key: a kept connection cannot be tied to it")
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	cfg := ""
	for i, w := range words {
		if w == "-F" && i+1 < len(words) {
			cfg = words[i+1]
		} else if f, ok := strings.CutPrefix(w, "-F"); ok && f != "" {
			cfg = f
		}
	}
	switch cfg {
	case "none":
	case "":
		files = append(files, expand("~/.ssh/config"), "/etc/ssh/ssh_config")
	default:
		files = append(files, expand(cfg))
	}
	return files, nil
}

// tieOf hashes the files' contents (an absent file hashes as absent) with
// the rsh and destination.
func tieOf(sshBin string, words []string, dest string, files []string) (*masterTie, error) {
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		switch {
		case err == nil:
			fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
			h.Write(data)
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(h, "%s\x00absent\x00", f)
		default:
			return nil, err
		}
	}
	return &masterTie{SSH: sshBin, Rsh: strings.Join(words, "\x00"), Dest: dest, Files: files, Hash: hex.EncodeToString(h.Sum(nil))}, nil
}

// EndReplicaConnections ends the ssh connections to replicas that runs
// of the image whose state dir is stateDir keep up (config.Image's
// ReplicaSSHPersist) and removes their records; it returns how many
// masters it ended. A run that needs one logs in again.
func EndReplicaConnections(stateDir string) (int, error) {
	recs, err := filepath.Glob(filepath.Join(stateDir, "ssh", "m-*.json"))
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, r := range recs {
		t, _ := readTie(r)
		if t != nil && t.Socket != "" && inode(t.Socket) != 0 {
			if out, err := exitMaster(t.SSH, t.Socket); err != nil {
				errs = append(errs, fmt.Errorf("ssh -O exit %s: %w: %s", t.Socket, err, out))
			} else {
				n++
			}
		}
		os.Remove(r)
	}
	return n, errors.Join(errs...)
}
