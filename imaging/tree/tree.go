// Package tree is goldsync's model of a filesystem tree: one Entry per path,
// with everything rsync -aHAXS --numeric-ids preserves and a content hash.
//
// It owns the entry type, the canonical path order, path validation and the
// comparisons the planner needs. It does no I/O and encodes no bytes: walking
// lives in package imaging, encoding in package wire.
package tree

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
)

// Type is the kind of filesystem object an Entry describes.
type Type uint8

// The entry types. The zero value is invalid so a forgotten field is caught.
const (
	TypeInvalid Type = iota
	TypeRegular
	TypeDir
	TypeSymlink
	TypeCharDev
	TypeBlockDev
	TypeFIFO
	TypeSocket
	typeMax
)

var typeNames = [...]string{"invalid", "file", "dir", "symlink", "chardev", "blockdev", "fifo", "socket"}

// String returns a short lower-case name ("file", "dir", ...).
func (t Type) String() string {
	if t < typeMax {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is one of the defined types.
func (t Type) Valid() bool { return t > TypeInvalid && t < typeMax }

// IsDevice reports whether t is a character or block device.
func (t Type) IsDevice() bool { return t == TypeCharDev || t == TypeBlockDev }

// Xattr is one extended attribute. POSIX ACLs travel as the
// system.posix_acl_access and system.posix_acl_default attributes.
type Xattr struct {
	Name  string
	Value []byte
}

// Flags carry per-entry facts that are not attributes of the file itself.
type Flags uint8

const (
	// FlagHashed says Hash holds the content hash. Without it the hash is
	// unknown (not yet computed) and must not be compared.
	FlagHashed Flags = 1 << iota
)

// ModePerm is the part of Entry.Mode that is kept: permission bits plus
// setuid, setgid and sticky (st_mode & 07777).
const ModePerm = 0o7777

// Root is the path of the tree's root entry. Every other path is relative,
// slash-separated, with no empty, "." or ".." component.
const Root = "."

// Entry describes one filesystem object. Paths are byte strings: nothing
// assumes UTF-8.
type Entry struct {
	Path   string  // relative to the tree root; Root for the root itself
	Type   Type    // kind of object
	Mode   uint32  // st_mode & 07777
	UID    uint32  // numeric owner
	GID    uint32  // numeric group
	Size   int64   // regular files: logical size in bytes
	Mtime  int64   // modification time, ns since the epoch
	Target string  // symlinks: the link target, verbatim
	Rdev   uint64  // devices: device number (unix.Mkdev form)
	Xattrs []Xattr // sorted by Name, no duplicates
	Hash   uint64  // xxhash64 of the content when Flags&FlagHashed
	Flags  Flags   // see FlagHashed
	// LinkTo, when set, says this regular file is a hard link to the entry
	// at LinkTo, which sorts before this one (the group's leader).
	LinkTo string

	// Local identity, used by hash caches and hard-link detection. It is
	// meaningful only on the machine that produced it and is never trusted
	// from a peer.
	Dev   uint64
	Ino   uint64
	Nlink uint32
	Ctime int64 // status change time, ns

	// Problem, when set, says the entry could not be read completely
	// (unreadable xattrs, a file that vanished while hashed...). The entry
	// is still listed so a mirror does not delete it.
	Problem string
}

// Hashed reports whether e.Hash is known.
func (e *Entry) Hashed() bool { return e.Flags&FlagHashed != 0 }

// SetHash records the content hash.
func (e *Entry) SetHash(h uint64) { e.Hash = h; e.Flags |= FlagHashed }

// Name returns the last path component ("." for the root).
func (e *Entry) Name() string { return Base(e.Path) }

// Base returns the last component of p.
func Base(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Dir returns the parent of p: Root for a top-level name, "" for Root itself.
func Dir(p string) string {
	if p == Root {
		return ""
	}
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return Root
}

// Join joins a parent path and a name.
func Join(dir, name string) string {
	if dir == Root || dir == "" {
		return name
	}
	return dir + "/" + name
}

// Depth is the number of components of p (0 for Root).
func Depth(p string) int {
	if p == Root {
		return 0
	}
	return strings.Count(p, "/") + 1
}

// IsWithin reports whether p is anc or lies beneath it.
func IsWithin(p, anc string) bool {
	if anc == Root || p == anc {
		return true
	}
	return len(p) > len(anc) && p[len(anc)] == '/' && p[:len(anc)] == anc
}

// Compare orders paths so that a directory comes right before its whole
// subtree: Root first, then byte order with '/' sorting below every other
// byte. It returns -1, 0 or +1.
func Compare(a, b string) int {
	if a == b {
		return 0
	}
	if a == Root {
		return -1
	}
	if b == Root {
		return 1
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	if len(a) < len(b) {
		return -1
	}
	return 1
}

// Limits bound what a path may be. They match Linux: PATH_MAX and NAME_MAX.
const (
	MaxPathLen = 4095
	MaxNameLen = 255
)

// ErrTooLarge is wrapped when a stream of entries passes a Checker's bound
// on their memory.
var ErrTooLarge = errors.New("entry list too large")

// ErrBadPath is wrapped by every path validation failure.
var ErrBadPath = errors.New("invalid path")

// ValidatePath checks that p is Root or a clean relative path: no leading or
// trailing slash, no empty, "." or ".." component, no NUL, bounded lengths.
// Every path read from a peer or a list goes through it.
func ValidatePath(p string) error {
	if p == Root {
		return nil
	}
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBadPath, truncate(p), why) }
	if p == "" {
		return bad("empty")
	}
	if len(p) > MaxPathLen {
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathLen))
	}
	if strings.IndexByte(p, 0) >= 0 {
		return bad("contains NUL")
	}
	if p[0] == '/' {
		return bad("absolute")
	}
	// One pass over the bytes (every entry of every stream is checked).
	for start := 0; start <= len(p); {
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p)
		} else {
			end += start
		}
		switch comp := p[start:end]; comp {
		case "":
			return bad("empty component")
		case ".", "..":
			return bad("contains " + comp + " component")
		}
		if end-start > MaxNameLen {
			return bad(fmt.Sprintf("component longer than %d bytes", MaxNameLen))
		}
		start = end + 1
	}
	return nil
}

// ValidatePathShared returns what ValidatePath(p) returns, for a p whose
// first n bytes are those of a path that passed ValidatePath (in a stream
// in Compare order, the prefix a path shares with the one before it): the
// whole components of that prefix are not checked again. A path that
// fails is checked in full, so the error is ValidatePath's. With n 0 it is
// ValidatePath.
func ValidatePathShared(p string, n int) error {
	if n <= 0 || n > len(p) || len(p) > MaxPathLen {
		return ValidatePath(p)
	}
	// p[:j] are whole components of a valid path (not absolute, no NUL,
	// none empty, . or .. or too long); the rest is checked here.
	j := strings.LastIndexByte(p[:n], '/')
	if j <= 0 || !validComponents(p[j+1:]) {
		return ValidatePath(p)
	}
	return nil
}

// validComponents reports whether s is one or more valid components
// separated by '/' (not empty, no NUL, no . or .. component, none longer
// than MaxNameLen).
func validComponents(s string) bool {
	if strings.IndexByte(s, 0) >= 0 {
		return false
	}
	for {
		c, rest, more := strings.Cut(s, "/")
		if c == "" || c == "." || c == ".." || len(c) > MaxNameLen {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Limits on extended attributes, matching Linux (XATTR_NAME_MAX,
// XATTR_SIZE_MAX) plus a per-entry bound so one entry cannot demand
// unbounded memory.
const (
	MaxXattrName  = 255
	MaxXattrValue = 64 << 10
	MaxXattrs     = 1024
	MaxXattrTotal = 1 << 20
)

// Validate checks an entry's internal consistency: path, type, mode, and the
// fields that only some types may carry. It does not check its place in a
// stream (see Checker).
func (e *Entry) Validate() error {
	return e.ValidateShared(0)
}

// ValidateShared is Validate for an entry whose path's first n bytes are
// those of a path that passed ValidatePath (see ValidatePathShared): a
// decoder that validated the entry before, whose path it shares n bytes
// of, need not check those again.
func (e *Entry) ValidateShared(n int) error {
	if err := ValidatePathShared(e.Path, n); err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("entry %q: %s", truncate(e.Path), fmt.Sprintf(format, a...))
	}
	if !e.Type.Valid() {
		return bad("invalid type %d", e.Type)
	}
	if e.Path == Root && e.Type != TypeDir {
		return bad("root is a %s, not a directory", e.Type)
	}
	if e.Mode&^ModePerm != 0 {
		return bad("mode %#o has bits beyond 07777", e.Mode)
	}
	if e.Size < 0 || (e.Type != TypeRegular && e.Size != 0) {
		return bad("size %d for a %s", e.Size, e.Type)
	}
	if e.Type == TypeSymlink {
		if e.Target == "" || len(e.Target) > MaxPathLen || strings.IndexByte(e.Target, 0) >= 0 {
			return bad("bad symlink target")
		}
	} else if e.Target != "" {
		return bad("target on a %s", e.Type)
	}
	if !e.Type.IsDevice() && e.Rdev != 0 {
		return bad("device number on a %s", e.Type)
	}
	if e.LinkTo != "" {
		if e.Type != TypeRegular {
			return bad("hard link on a %s", e.Type)
		}
		if err := ValidatePath(e.LinkTo); err != nil || e.LinkTo == Root {
			return bad("bad hard link target")
		}
		if Compare(e.LinkTo, e.Path) >= 0 {
			return bad("hard link target does not sort before the link")
		}
	}
	if len(e.Xattrs) > MaxXattrs {
		return bad("%d xattrs, more than %d", len(e.Xattrs), MaxXattrs)
	}
	total := 0
	for i, x := range e.Xattrs {
		if x.Name == "" || len(x.Name) > MaxXattrName || strings.IndexByte(x.Name, 0) >= 0 {
			return bad("bad xattr name")
		}
		if len(x.Value) > MaxXattrValue {
			return bad("xattr %s larger than %d bytes", x.Name, MaxXattrValue)
		}
		if i > 0 && e.Xattrs[i-1].Name >= x.Name {
			return bad("xattrs not sorted or duplicated at %s", x.Name)
		}
		total += len(x.Name) + len(x.Value)
	}
	if total > MaxXattrTotal {
		return bad("xattrs total %d bytes, more than %d", total, MaxXattrTotal)
	}
	return nil
}

// Checker validates a stream of entries as a whole: sorted, no duplicates,
// every entry's parent present and a directory, hard links pointing at
// earlier regular files of the stream, and a bound on the count. Receivers
// run every entry from a peer through one.
type Checker struct {
	// MaxEntries bounds the stream; zero means 50 million.
	MaxEntries int
	// MaxBytes bounds the stream's entries once decoded: the sum of
	// EntryCost(e) over the entries. A peer's paths travel
	// prefix-compressed, so a few bytes on the wire can decode to a 4 KiB
	// path; this bound is what keeps what a receiver holds (in memory or
	// in its spool) proportional to a tree it would accept, not to the
	// peer's imagination. Zero means DefaultMaxBytes; negative means no
	// bound.
	MaxBytes int64
	// Partial allows entries whose parents were not sent (a scoped change
	// set). Parents that were sent must still be directories.
	Partial bool
	// DeferLinks leaves the check that a hard link's target (LinkTo) is
	// an earlier regular file of the stream to the caller, which must make
	// it before it acts on the stream (imaging.Sync does, as it plans:
	// the targets are few, the stream's files many). Add still checks
	// that the target sorts before the link, and the checker then holds
	// nothing per file.
	DeferLinks bool
	// Validated says every entry passed (*Entry).Validate where it entered
	// the process (package wire's decoder validates each entry it
	// decodes): Add then checks only its place in the stream and the
	// bounds, not its fields a second time.
	Validated bool

	n     int
	bytes int64
	last  string
	// open are the entries on the path to the last one (its ancestors
	// that were sent, and itself): in Compare order an entry's parent, if
	// sent, is among them. A map of every path's type was 30-40 bytes an
	// entry, in each of a receiver's two checkers.
	open []openEntry
	// regular holds the regular files sent, as keyed hashes (hard-link
	// targets must be among them): 8 bytes and no path an entry (a map of
	// them was 25-30). The seed is random per checker, so a peer cannot
	// aim for a collision.
	regular keySet
	seeded  bool
	seed    maphash.Seed
}

type openEntry struct {
	path string
	typ  Type
}

// DefaultMaxBytes is Checker's default bound on a stream's entries, as
// EntryCost charges them: about 3 million entries of a real root
// filesystem (an average path of 60-80 bytes), three times the 1M-entry
// tree bench/ measures. A receiver that streams (imaging.Sync) holds
// these entries in a spool file, not in memory, so the bound is on that
// file and on the decoding work; a 1.6 GiB list of 4 KiB paths, a few MiB
// on the wire, is still refused a third of the way in. Images larger
// than 3 million entries need a larger bound (pull --max-list-bytes).
const DefaultMaxBytes = 1 << 30

// entryOverhead approximates what one entry costs a receiver beyond its
// strings: the Entry itself and the maps and slices that index it.
const entryOverhead = 256

// EntryCost is what Checker.MaxBytes charges for e: a fixed overhead plus
// its path, symlink and hard-link targets and xattrs.
func EntryCost(e *Entry) int64 {
	n := int64(entryOverhead + len(e.Path) + len(e.Target) + len(e.LinkTo) + len(e.Problem))
	for _, x := range e.Xattrs {
		n += int64(len(x.Name) + len(x.Value))
	}
	return n
}

// Add checks e against the entries before it.
func (c *Checker) Add(e *Entry) error {
	if !c.Validated {
		if err := e.Validate(); err != nil {
			return err
		}
	}
	maxN := c.MaxEntries
	if maxN == 0 {
		maxN = 50_000_000
	}
	if c.n >= maxN {
		return fmt.Errorf("more than %d entries", maxN)
	}
	maxB := c.MaxBytes
	if maxB == 0 {
		maxB = DefaultMaxBytes
	}
	if cost := EntryCost(e); maxB > 0 && c.bytes+cost > maxB {
		return fmt.Errorf("%w: entries %d and on would hold more than %d bytes of paths, targets and xattrs", ErrTooLarge, c.n+1, maxB)
	} else {
		c.bytes += cost
	}
	if !c.seeded {
		c.seed, c.seeded = maphash.MakeSeed(), true
	}
	if c.n > 0 && Compare(c.last, e.Path) >= 0 {
		return fmt.Errorf("entry %q: out of order or duplicate after %q", truncate(e.Path), truncate(c.last))
	}
	for len(c.open) > 0 && !IsWithin(e.Path, c.open[len(c.open)-1].path) {
		c.open = c.open[:len(c.open)-1]
	}
	if e.Path != Root {
		var parent *openEntry
		if k := len(c.open); k > 0 && c.open[k-1].path == Dir(e.Path) {
			parent = &c.open[k-1]
		}
		switch {
		case parent != nil && parent.typ != TypeDir:
			return fmt.Errorf("entry %q: parent is a %s", truncate(e.Path), parent.typ)
		case parent == nil && !c.Partial:
			return fmt.Errorf("entry %q: parent not sent", truncate(e.Path))
		}
	} else if c.n > 0 {
		return fmt.Errorf("root entry not first")
	}
	if e.LinkTo != "" && !c.DeferLinks {
		if !c.regular.has(maphash.String(c.seed, e.LinkTo)) {
			return fmt.Errorf("entry %q: hard link to %q, which is not an earlier regular file", truncate(e.Path), truncate(e.LinkTo))
		}
	}
	if e.Type == TypeRegular && !c.DeferLinks {
		c.regular.add(maphash.String(c.seed, e.Path))
	}
	c.open = append(c.open, openEntry{path: e.Path, typ: e.Type})
	c.last = e.Path
	c.n++
	return nil
}

// Count returns how many entries were accepted.
func (c *Checker) Count() int { return c.n }

// XattrsEqual reports whether two sorted xattr lists are identical.
func XattrsEqual(a, b []Xattr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// SameContent reports whether two regular-file entries are known to have the
// same content: equal sizes and both hashes known and equal.
func SameContent(a, b *Entry) bool {
	return a.Size == b.Size && a.Hashed() && b.Hashed() && a.Hash == b.Hash
}

// SameMeta reports whether the attributes a sync sets (mode, owner, mtime,
// xattrs; target and rdev for links and devices) are equal. Symlink modes are
// not compared: Linux cannot set them.
func SameMeta(a, b *Entry) bool {
	if a.Type != b.Type || a.UID != b.UID || a.GID != b.GID || a.Mtime != b.Mtime {
		return false
	}
	if a.Type != TypeSymlink && a.Mode != b.Mode {
		return false
	}
	if a.Target != b.Target || a.Rdev != b.Rdev {
		return false
	}
	return XattrsEqual(a.Xattrs, b.Xattrs)
}

// Clone returns a deep copy of e.
func (e *Entry) Clone() *Entry {
	c := *e
	if e.Xattrs != nil {
		c.Xattrs = make([]Xattr, len(e.Xattrs))
		for i, x := range e.Xattrs {
			c.Xattrs[i] = Xattr{Name: x.Name, Value: bytes.Clone(x.Value)}
		}
	}
	return &c
}

// Scope names a part of a tree that a scan covers. A full scan has the single
// scope {Root, true}. With Tree false only the entry at Path itself is
// covered (its metadata, or its absence); with Tree true everything beneath
// it is too. A receiver deletes only what lies inside the scopes it was sent.
type Scope struct {
	Path string
	Tree bool
}

// FullScope is the scope of a whole-tree scan.
var FullScope = []Scope{{Path: Root, Tree: true}}

// IsFull reports whether scopes cover the whole tree: one of them is the
// root's whole subtree (whatever else is listed). An empty list covers
// nothing (see NewScopeSet); callers that take it to mean "no scoping" say
// so themselves.
func IsFull(scopes []Scope) bool {
	for _, s := range scopes {
		if s.Path == Root && s.Tree {
			return true
		}
	}
	return false
}

// Covers reports whether path p lies inside one of the scopes.
func Covers(scopes []Scope, p string) bool {
	for _, s := range scopes {
		if p == s.Path || (s.Tree && IsWithin(p, s.Path)) {
			return true
		}
	}
	return false
}
