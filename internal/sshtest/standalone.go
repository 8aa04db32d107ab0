//go:build linux

package sshtest

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
)

// ErrNotInstalled is wrapped by StartServer when sshd, ssh or ssh-keygen is
// missing (scripts/ci-deps.sh installs them).
var ErrNotInstalled = errors.New("openssh not installed")

// StartServer is Start for programs that are not tests (the benchmark
// runner): it starts an sshd on a free port of 127.0.0.1 (or where opts
// say) with its keys,
// config and log in dir (created if missing; it should be empty or hold only
// a previous StartServer's files), waits until an ssh round-trip works, and
// returns the server and a function that stops it. The caller must call stop;
// sshd also dies with the thread that started it.
func StartServer(dir string, opts Options) (s *Server, stop func(), err error) {
	if _, err := os.Stat(SSHDPath); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrNotInstalled, SSHDPath, err)
	}
	sshPath, err := exec.LookPath("ssh")
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	u, err := user.Current()
	if err != nil {
		return nil, nil, fmt.Errorf("current user: %w", err)
	}
	if opts.NetNS != "" && opts.Port == 0 {
		return nil, nil, errors.New("sshtest: Options.NetNS needs Options.Port")
	}
	if err := ensurePrivsepDir(); err != nil {
		return nil, nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("server dir: %w", err)
	}
	s = &Server{
		Dir:            dir,
		User:           u.Username,
		sshPath:        sshPath,
		clientKey:      filepath.Join(dir, "id_ed25519"),
		knownHostsFile: filepath.Join(dir, "known_hosts"),
		logFile:        filepath.Join(dir, "sshd.log"),
		Address:        cmp.Or(opts.Address, "127.0.0.1"),
		netns:          opts.NetNS,
	}
	hostKey := filepath.Join(dir, "ssh_host_ed25519_key")
	for _, key := range []string{hostKey, s.clientKey} {
		// ssh-keygen asks before overwriting: start from a clean slate.
		os.Remove(key)
		os.Remove(key + ".pub")
		if err := genKey(keygen, key); err != nil {
			return nil, nil, err
		}
	}
	clientPub, err := os.ReadFile(s.clientKey + ".pub")
	if err != nil {
		return nil, nil, fmt.Errorf("read client key: %w", err)
	}
	authorizedKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorizedKeys, clientPub, 0o600); err != nil {
		return nil, nil, fmt.Errorf("write authorized_keys: %w", err)
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, nil, fmt.Errorf("read host key: %w", err)
	}
	forceCommand := ""
	if opts.ForceCommand != "" || opts.ShellNoise != "" {
		wrapper := filepath.Join(dir, "force-command.sh")
		if err := os.WriteFile(wrapper, []byte(wrapperScript(opts)), 0o755); err != nil {
			return nil, nil, fmt.Errorf("write ForceCommand wrapper: %w", err)
		}
		forceCommand = ShellQuote(wrapper)
		s.wrapped = true
	}
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(s.Address); err != nil {
				return nil, nil, err
			}
		}
		s.Port = port
		cfg := sshdConfig(configParams{
			address:        s.Address,
			port:           port,
			dir:            dir,
			hostKey:        hostKey,
			authorizedKeys: authorizedKeys,
			forceCommand:   forceCommand,
			extra:          opts.ExtraConfig,
		})
		cfgFile := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
			return nil, nil, fmt.Errorf("write sshd_config: %w", err)
		}
		kh := knownHostsName(s.Address, port) + " " + string(hostPub)
		if err := os.WriteFile(s.knownHostsFile, []byte(kh), 0o600); err != nil {
			return nil, nil, fmt.Errorf("write known_hosts: %w", err)
		}
		err = s.start(cfgFile)
		if err == nil {
			err = s.waitListening()
		}
		if err == nil {
			break
		}
		s.stop()
		if attempt < startAttempts && opts.Port == 0 && strings.Contains(s.Log(), "Address already in use") {
			continue
		}
		return nil, nil, fmt.Errorf("start sshd: %w\nsshd log (%s):\n%s", err, s.logFile, s.Log())
	}
	if err := s.probe(); err != nil {
		s.stop()
		return nil, nil, fmt.Errorf("sshd on port %d does not answer: %w\nsshd log (%s):\n%s", s.Port, err, s.logFile, s.Log())
	}
	return s, s.stop, nil
}
