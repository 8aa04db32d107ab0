package imaging

import (
	"context"
	"errors"
	"fmt"

	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// Source is where a sync reads a tree from: a local directory (DirSource), an
// agent child process or an agent over ssh (package proto). The engine treats
// them all the same.
//
// Implementations must be safe for one Scan followed by any number of
// concurrent Fetch calls; Close ends the session.
type Source interface {
	// Scan lists the source tree, or the part req asks for, calling fn for
	// each entry in tree.Compare order. Entries a scan could not read fully
	// carry Entry.Problem and are still listed. An error means the scan as a
	// whole failed (root missing, connection lost, cancellation).
	Scan(ctx context.Context, req ScanRequest, fn func(*tree.Entry) error) (ScanResult, error)

	// Fetch streams the content of the requested regular files. For each
	// request it calls open once, from any goroutine, and then feeds the
	// returned sink: Data and Reuse calls in increasing, non-overlapping
	// offset order (gaps are holes), then exactly one of Finish or Abort.
	// A file the source cannot read is reported through Abort with a
	// *FileError and the fetch goes on; only transport failures and
	// cancellation end Fetch with an error.
	Fetch(ctx context.Context, reqs []*FetchRequest, open func(*FetchRequest) (ContentSink, error)) error

	// Close ends the session and releases its resources.
	Close() error
}

// ValidatedSource is a Source whose Scan hands out only entries that
// passed (*tree.Entry).Validate where they entered the process
// (proto.Client: the wire's decoder validates every entry it decodes).
// Sync then checks only each entry's place in the stream, not its fields
// a second time.
type ValidatedSource interface {
	Source
	EntriesValidated() bool
}

// LendingSource is a Source whose Scan lends the entries it hands out:
// the caller may give each back (GiveBack) once it no longer looks at the
// *tree.Entry, and the source decodes a later one into it. The entry's
// strings and xattrs may still be kept (they are never written to).
// Sync gives back what its streamed plan is done with: a new entry for
// each of a pull's was a third of a no-change pull's allocations on the
// image server (issue #14).
type LendingSource interface {
	Source
	GiveBack(e *tree.Entry)
}

// ScanRequest says what a Scan should list.
type ScanRequest struct {
	// Excludes are rsync-style exclude patterns (see package exclude).
	Excludes []string
	// Since, when set, asks only for the changes since a journal token the
	// source handed out before (ScanResult.Token). A source that cannot
	// vouch for that token answers with a full scan.
	Since string
	// Hash asks the source to hash every regular file during the scan, not
	// just those its cache knows. Verification uses it.
	Hash bool
	// Scopes, when set, limit the scan to these parts of the tree (see
	// tree.Scope); the result's Scope says what was covered.
	Scopes []tree.Scope
	// LinksChecked says the caller checks, before it acts on the entries,
	// that every hard link's target (Entry.LinkTo) is an earlier regular
	// file of the stream (Sync does, as it plans). A source that checks a
	// peer's stream (proto.Client) may then leave that check out, and
	// with it the set of every regular file it would hold. It is not sent
	// to the peer.
	LinksChecked bool
}

// ScanResult describes a finished scan.
type ScanResult struct {
	// Scope is what the listed entries cover; tree.FullScope for a full scan.
	Scope []tree.Scope
	// Problems counts entries listed with Entry.Problem set.
	Problems int
	// Token, when set, names this scan's point in the source's change
	// journal, for a later ScanRequest.Since.
	Token string
	// Entries counts the entries listed.
	Entries int
}

// FetchRequest asks for one file's content.
type FetchRequest struct {
	// Entry is the source entry as scanned.
	Entry *tree.Entry
	// Basis, when set, describes the receiver's current content of the file
	// so the source can send only what differs.
	Basis *Basis
}

// Basis is what the receiver already has for a file.
type Basis struct {
	Size   int64
	Hash   uint64 // valid when Hashed
	Hashed bool
	// BlockSize and Blocks, when set, are the xxhash64 of each BlockSize
	// slice of the receiver's file; the last block may be short.
	BlockSize int
	Blocks    []uint64
}

// ContentSink receives one file's content from a Source.
type ContentSink interface {
	// Data says the bytes at [off, off+len(p)) are p. p is valid only
	// during the call.
	Data(off int64, p []byte) error
	// Reuse says the bytes at [off, off+n) equal the basis at the same
	// offset.
	Reuse(off, n int64) error
	// Finish says the content is complete. res carries the size and hash
	// the source computed, and fresh metadata if the file changed since the
	// scan.
	Finish(res FetchResult) error
	// Abort discards the file: the source could not send it.
	Abort(err error)
}

// FetchResult is the source's account of a file it sent.
type FetchResult struct {
	Size int64
	Hash uint64
	// Unchanged says the source found the basis hash equal to its content
	// and sent nothing.
	Unchanged bool
	// Mtime is the file's modification time as read; it differs from the
	// scanned entry's when the file changed in between.
	Mtime int64
}

// Changes tells a DirSource what changed in its tree since a token: the
// agent's change journal (package agent/watch) implements it.
type Changes interface {
	// Changes returns the scopes that changed after token and a token
	// naming the journal's position now (taken before the caller scans).
	// full says the journal cannot vouch for the changes (unknown token,
	// overflow, no watcher): the caller must scan everything. An empty
	// since asks only for the current token (full is then true).
	Changes(ctx context.Context, since string) (scopes []tree.Scope, token string, full bool, err error)
}

// LocalCopier is an optional Source ability: copy one scanned file's content
// straight into dst (an empty file open for writing on the same machine),
// with reflinks or copy_file_range, instead of streaming it. The result's
// hash must be one the source vouches for (read or cached).
type LocalCopier interface {
	CopyFile(ctx context.Context, e *tree.Entry, dst *fsx.File) (FetchResult, error)
}

// FileError reports a problem with one file that does not stop the run.
type FileError struct {
	Op   string
	Path string
	Err  error
}

// Error says what failed on which path.
func (e *FileError) Error() string { return fmt.Sprintf("%s %q: %v", e.Op, e.Path, e.Err) }

// Unwrap returns the underlying error.
func (e *FileError) Unwrap() error { return e.Err }

// ErrChanged is wrapped by a FileError when a file kept changing while it was
// read, so no consistent copy could be taken.
var ErrChanged = errors.New("file changed while being read")
