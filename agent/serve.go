package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/goldsync/goldsync/agent/watch"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/proto"
	"github.com/goldsync/goldsync/internal/version"
)

// ServeOptions configure Serve. The zero value keeps the hash cache in
// DefaultStateDir and logs nothing.
type ServeOptions struct {
	// StateDir holds the hash caches, one per served root. Empty means
	// DefaultStateDir().
	StateDir string
	// Workers bounds parallel walking and reading; zero means a default.
	Workers   int
	fixedRoot string

	// DestID names the destination in the change journal's
	// acknowledgements (so it keeps what each destination still needs).
	DestID string
	// Logger receives warnings; nil is silent.
	Logger *slog.Logger
	// OnFetch, when set, is called once (a Serve is one stream), before
	// the first files a receiver asks for are read: a pull that fetches nothing (no change)
	// never calls it. The agent's program lets its collector's heap grow
	// more until then (gctune.AgentHeadroom).
	OnFetch func()
}

// DefaultStateDir is where the agent keeps its state: /var/lib/goldsync for
// root, ~/.cache/goldsync/state otherwise.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/goldsync"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "goldsync", "state")
	}
	return filepath.Join(os.TempDir(), "goldsync-state")
}

// CacheFile names the hash cache of a served root inside a state dir.
func CacheFile(stateDir, root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(stateDir, "hashcache-"+hex.EncodeToString(sum[:8]))
}

// ServeRoot is Serve for a fixed root: whatever root the receiver names,
// root is served. A push uses it: the receiver on the image server does not
// know the golden node's paths.
func ServeRoot(ctx context.Context, rw io.ReadWriter, root string, opts ServeOptions) error {
	opts.fixedRoot = root
	return Serve(ctx, rw, opts)
}

// Serve answers one receiver on rw (the agent's stdin and stdout) until it
// hangs up: it opens the root the receiver names as a DirSource, with its
// hash cache persisted in the state dir.
func Serve(ctx context.Context, rw io.ReadWriter, opts ServeOptions) error {
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	var journal *watch.Journal
	var fetched sync.Once
	open := func(ctx context.Context, root string) (imaging.Source, error) {
		if opts.fixedRoot != "" {
			root = opts.fixedRoot
		}
		if !filepath.IsAbs(root) {
			return nil, fmt.Errorf("root %q is not an absolute path", root)
		}
		st, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("root %s is not a directory", root)
		}
		cache := ""
		if err := os.MkdirAll(stateDir, 0o700); err == nil {
			cache = CacheFile(stateDir, root)
		} else if opts.Logger != nil {
			opts.Logger.Warn("no state dir: hash cache off", "err", err)
		}
		// proto.Serve encodes each scanned entry before it takes the next.
		dso := imaging.DirSourceOptions{CacheFile: cache, Workers: opts.Workers, LendEntries: true, Logger: opts.Logger}
		if j, err := openJournal(stateDir, root, false); err == nil && j != nil {
			journal = j
			dso.Changes = journalChanges{j, opts.Logger}
		}
		ds, err := imaging.OpenDirSource(root, dso)
		if err != nil {
			return nil, err
		}
		if opts.OnFetch != nil {
			return &fetchNotice{DirSource: ds, once: &fetched, f: opts.OnFetch}, nil
		}
		return ds, nil
	}
	defer func() {
		if journal != nil {
			journal.Close()
		}
	}()
	onAck := func(ctx context.Context, token string) error {
		if journal == nil {
			return nil
		}
		id := opts.DestID
		if id == "" {
			id = "pull"
		}
		return journal.Ack(id, token)
	}
	return proto.Serve(ctx, rw, open, proto.ServeOptions{Software: Software(), Logger: opts.Logger, OnAck: onAck})
}

// fetchNotice is a DirSource that calls f once (of all the sources of a
// Serve) before its first fetch.
type fetchNotice struct {
	*imaging.DirSource
	once *sync.Once
	f    func()
}

// Fetch calls f the first time, then fetches.
func (s *fetchNotice) Fetch(ctx context.Context, reqs []*imaging.FetchRequest, open func(*imaging.FetchRequest) (imaging.ContentSink, error)) error {
	s.once.Do(s.f)
	return s.DirSource.Fetch(ctx, reqs, open)
}

// Software is how the agent names itself in the protocol handshake:
// "goldsync-agent/" plus the release and a hash of its executable, which
// the image server compares with the agent it would upload.
func Software() string { return SoftwarePrefix + version.Build() }

// SoftwarePrefix starts the agent's handshake name.
const SoftwarePrefix = version.AgentPrefix

// InProcess serves the agent's side of one stream in this process, as
// "goldsync-agent serve --stdio" would, and closes conn when done: the
// function remote.Options.Serve takes for local sources.
func InProcess(ctx context.Context, conn io.ReadWriteCloser, stateDir string, log *slog.Logger) {
	Serve(ctx, conn, ServeOptions{StateDir: stateDir, Logger: log})
	conn.Close()
}
