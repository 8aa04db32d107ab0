package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/goldsync/goldsync/agent/watch"
	"github.com/goldsync/goldsync/imaging/tree"
)

// JournalDir is where the change journal of a watched root lives in the
// agent's state dir: one per root.
func JournalDir(stateDir, root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(stateDir, "journal-"+hex.EncodeToString(sum[:8]))
}

// journalChanges adapts a watch.Journal to imaging.Changes. Before it
// answers, it waits (briefly) for the watcher to record every change made
// before the call, so a push right after "yum install" sees all of it.
type journalChanges struct {
	j   *watch.Journal
	log *slog.Logger // says why a scan falls back to the whole tree (nil: not said)
}

// BarrierTimeout bounds how long a scan waits for the watcher to catch up
// before it falls back to a full scan.
const BarrierTimeout = 5 * time.Second

func (c journalChanges) Changes(ctx context.Context, since string) ([]tree.Scope, string, bool, error) {
	if since != "" {
		bctx, cancel := context.WithTimeout(ctx, BarrierTimeout)
		err := c.j.Barrier(bctx)
		cancel()
		if err != nil && !errors.Is(err, watch.ErrNoWatcher) {
			c.full("the watcher did not catch up in time", "err", err)
			tok, terr := c.j.Token()
			return nil, tok, true, terr
		}
	}
	if since == "" {
		tok, err := c.j.Token()
		return nil, tok, true, err
	}
	cs, err := c.j.Since(since)
	if err != nil {
		return nil, "", true, err
	}
	if cs.Full {
		c.full(cs.Reason)
	}
	return cs.Scopes, cs.Token, cs.Full, nil
}

// full logs why the journal cannot vouch for the changes since a token,
// so an admin (or a test) can tell why a push scanned the whole tree.
func (c journalChanges) full(reason string, args ...any) {
	if c.log != nil {
		c.log.Info("change journal: full scan: "+reason, args...)
	}
}

// openJournal opens the journal of root if a watcher ever made one; nil
// when there is none.
func openJournal(stateDir, root string, noWatcher bool) (*watch.Journal, error) {
	dir := JournalDir(stateDir, root)
	if _, err := os.Stat(dir); err != nil {
		if !noWatcher {
			return nil, nil
		}
	}
	return watch.OpenJournal(dir, watch.JournalOptions{NoWatcher: noWatcher})
}
