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
	Workers int
	// Logger receives warnings; nil is silent.
	Logger *slog.Logger
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

// Serve answers one receiver on rw (the agent's stdin and stdout) until it
// hangs up: it opens the root the receiver names as a DirSource, with its
// hash cache persisted in the state dir.
func Serve(ctx context.Context, rw io.ReadWriter, opts ServeOptions) error {
	stateDir := opts.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir()
	}
	open := func(ctx context.Context, root string) (imaging.Source, error) {
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
		return imaging.OpenDirSource(root, imaging.DirSourceOptions{CacheFile: cache, Workers: opts.Workers, Logger: opts.Logger})
	}
	return proto.Serve(ctx, rw, open, proto.ServeOptions{Software: Software(), Logger: opts.Logger})
}

// Software is how the agent names itself in the protocol handshake:
// "goldsync-agent/" plus the release and a hash of its executable, which
// the image server compares with the agent it would upload.
func Software() string { return SoftwarePrefix + version.Build() }

// SoftwarePrefix starts the agent's handshake name.
const SoftwarePrefix = "goldsync-agent/"
