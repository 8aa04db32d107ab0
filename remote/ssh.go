package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/internal/version"
	"github.com/goldsync/goldsync/remote/rsh"
)

// CacheDir is where uploaded agents live on a golden node, relative to the
// login user's home: one file per release and build hash, so several image
// servers of different versions never overwrite each other's agent.
const CacheDir = ".cache/goldsync"

// agentBinary is the local agent to upload and the version it reports.
type agentBinary struct {
	path, sha, software string
}

func localAgentBinary(opts Options) (*agentBinary, error) {
	p := findLocalAgent(opts.LocalAgent)
	if p == "" {
		return nil, nil
	}
	sum, err := version.FileSHA256(p)
	if err != nil {
		return nil, fmt.Errorf("hash local agent: %w", err)
	}
	return &agentBinary{path: p, sha: sum, software: version.AgentPrefix + version.Version + "+" + sum[:12]}, nil
}

func (b *agentBinary) remoteName() string {
	return "goldsync-agent-" + version.Version + "-" + b.sha[:12]
}

func openSSH(ctx context.Context, sp Spec, opts Options) (imaging.Source, error) {
	rshCmd := opts.Rsh
	if rshCmd == "" {
		rshCmd = "ssh"
	}
	words, err := rsh.SplitRsh(rshCmd)
	if err != nil {
		return nil, err
	}
	bin, err := localAgentBinary(opts)
	if err != nil {
		return nil, err
	}
	// Which agent command to run: the one named, else the cached upload
	// of exactly our build, else whatever goldsync-agent is on $PATH.
	agentCmd := func(explicit string) string {
		tail := " serve --stdio"
		if explicit != "" {
			return rsh.ShellQuote(explicit) + tail
		}
		if bin != nil {
			// Run the cached upload only if it is still exactly what
			// was uploaded (a truncated or tampered file is never run;
			// the fallback then fails and a fresh upload follows).
			p := `"$HOME"/` + CacheDir + "/" + bin.remoteName()
			return `if [ -x ` + p + ` ] && [ "$(sha256sum < ` + p + ` 2>/dev/null)" = "` + bin.sha + `  -" ]; then exec ` + p + tail +
				`; else exec goldsync-agent` + tail + `; fi`
		}
		return "goldsync-agent" + tail
	}
	start := func(cmd string) (*rsh.Process, error) {
		args := append(append([]string(nil), words[1:]...), sp.Dest(), cmd)
		return rsh.Start(ctx, words[0], args, opts.Logger)
	}
	connect := func(cmd string, explicit string) (*client, error) {
		c := &client{}
		for i := range opts.Streams {
			p, err := start(cmd)
			if err != nil {
				c.closeAll()
				return nil, fmt.Errorf("%w: %v", ErrSSH, err)
			}
			c.conns = append(c.conns, p)
			if err := c.attach(ctx, i, p, sp.Path, opts); err != nil {
				c.closeAll()
				return nil, err
			}
			if i == 0 && !agentMatches(c, bin, explicit) {
				c.closeAll()
				return nil, fmt.Errorf("%w: %s", errStaleAgent, wire.Inert(c.Client.Remote().Software))
			}
		}
		return c, nil
	}
	c, err := connect(agentCmd(opts.AgentPath), opts.AgentPath)
	if err == nil {
		return c, nil
	}
	if opts.AgentPath != "" || bin == nil || !(errors.Is(err, errAgentMissing) || errors.Is(err, errStaleAgent)) {
		if bin == nil && errors.Is(err, errAgentMissing) {
			return nil, fmt.Errorf("%w; no local goldsync-agent to upload (put it beside goldsync or on $PATH)", err)
		}
		return nil, err
	}
	opts.Logger.Info("uploading the agent", "host", sp.Host, "reason", err)
	remotePath, err := upload(ctx, words, sp, bin, opts)
	if err != nil {
		return nil, err
	}
	c, err = connect(agentCmd(remotePath), "")
	if errors.Is(err, errStaleAgent) {
		return nil, fmt.Errorf("%w: the uploaded agent reports another version", ErrVersion)
	}
	return c, err
}

var errStaleAgent = errors.New("agent of another build")

// agentMatches: an explicitly named agent is taken as it is; otherwise the
// agent must be exactly the build we would upload (when we have one).
func agentMatches(c *client, bin *agentBinary, explicit string) bool {
	sw := c.Client.Remote().Software
	if explicit != "" || bin == nil {
		return strings.HasPrefix(sw, version.AgentPrefix)
	}
	return sw == bin.software
}

// upload copies the local agent over SFTP (through the same ssh) into the
// per-user cache, verifies it by reading it back and comparing SHA-256, and
// returns its path ("~"-relative paths are resolved by sftp's home dir).
func upload(ctx context.Context, words []string, sp Spec, bin *agentBinary, opts Options) (string, error) {
	args := append(append([]string(nil), words[1:]...), "-s", sp.Dest(), "sftp")
	p, err := rsh.Start(ctx, words[0], args, opts.Logger)
	if err != nil {
		return "", fmt.Errorf("%w: start sftp: %v", ErrSSH, err)
	}
	defer p.Close()
	cl, err := sftp.NewClientPipe(p, p)
	if err != nil {
		code := p.ExitCode()
		if code == 255 {
			return "", fmt.Errorf("%w: sftp: %v; %s", ErrSSH, err, wire.InertLines(p.Stderr()))
		}
		return "", fmt.Errorf("sftp to %s: %w (remote printed something before the sftp protocol? %s)", sp.Host, err, wire.InertLines(p.Stderr()))
	}
	defer cl.Close()
	home, err := cl.Getwd()
	if err != nil {
		return "", fmt.Errorf("sftp: home dir: %w", err)
	}
	dir := path.Join(home, CacheDir)
	if err := cl.MkdirAll(dir); err != nil {
		return "", fmt.Errorf("sftp: mkdir %s: %w", dir, err)
	}
	cl.Chmod(dir, 0o700)
	final := path.Join(dir, bin.remoteName())
	tmp := final + ".upload"
	src, err := os.Open(bin.path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return "", fmt.Errorf("sftp: create %s: %w", tmp, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", fmt.Errorf("sftp: upload: %w", err)
	}
	if err := dst.Close(); err != nil {
		return "", fmt.Errorf("sftp: upload: %w", err)
	}
	// Verify what landed before anything runs it.
	rf, err := cl.Open(tmp)
	if err != nil {
		return "", fmt.Errorf("sftp: verify: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, rf)
	rf.Close()
	if err != nil {
		return "", fmt.Errorf("sftp: verify: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != bin.sha {
		cl.Remove(tmp)
		return "", fmt.Errorf("uploaded agent hashes to %s, want %s: removed it", got[:12], bin.sha[:12])
	}
	if err := cl.Chmod(tmp, 0o700); err != nil {
		return "", fmt.Errorf("sftp: chmod: %w", err)
	}
	if err := cl.PosixRename(tmp, final); err != nil {
		if err := cl.Rename(tmp, final); err != nil {
			return "", fmt.Errorf("sftp: rename: %w", err)
		}
	}
	pruneAgents(cl, dir, path.Base(final), time.Now(), opts.Logger)
	return final, nil
}

// agentPruneAge is how old another build's agent in the cache must be
// before an upload removes it: younger ones may belong to another image
// server's pull under way (or its upload in progress).
const agentPruneAge = time.Hour

// pruneAgents removes, from the golden node's agent cache dir, the agents
// of other builds (and abandoned uploads) not modified for agentPruneAge,
// so upgrades do not pile up binaries. A running agent keeps running: its
// file is only unlinked. Failures are logged, never fatal.
func pruneAgents(cl *sftp.Client, dir, keep string, now time.Time, log *slog.Logger) {
	ents, err := cl.ReadDir(dir)
	if err != nil {
		log.Debug("agent cache: list", "dir", dir, "err", err)
		return
	}
	for _, e := range ents {
		name := e.Name()
		if name == keep || !strings.HasPrefix(name, "goldsync-agent-") || !e.Mode().IsRegular() || now.Sub(e.ModTime()) < agentPruneAge {
			continue
		}
		if err := cl.Remove(path.Join(dir, name)); err != nil {
			log.Debug("agent cache: prune", "file", name, "err", err)
			continue
		}
		log.Info("agent cache: removed an older build", "file", path.Join(dir, name))
	}
}
