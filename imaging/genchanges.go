package imaging

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/goldsync/goldsync/imaging/tree"
)

// GenerationChanges answers Changes from an image's recorded generations:
// a DirSource of the image with it serves a receiver (a replica image
// server) only the paths that changed between the generation the receiver
// last applied and the image's newest one, which is what a replica fan-out
// pushes. The tokens it hands out name generations (GenerationToken).
//
// It vouches for a change set only when both generations are still
// recorded and the live image is the newest generation (its manifest
// records the same tree): an unknown, foreign or pruned token, an image a
// partial or killed run left between generations, or a state dir without
// generations is a full scan, so the answer is never less exact than a
// full compare. Callers must keep the image from changing while a scan
// runs (the image's run lock).
type GenerationChanges struct {
	// StateDir is the image's state dir.
	StateDir string
	// Full vouches for nothing: every answer is a full scan, with the
	// current generation's token (a receiver whose last update was cut
	// off compares everything once, and removes what the cut left).
	Full bool
	// Cache, when set, shares the change sets computed between sources
	// (the replicas of one image pushed in one run): ChangedPaths decodes
	// both generations' manifests, which costs in proportion to the image.
	Cache *ChangeCache
}

// ChangeCache remembers ChangedPaths answers by generation pair. It is
// safe for concurrent use; the zero value is ready. It never forgets:
// make one per run.
type ChangeCache struct {
	mu sync.Mutex
	m  map[[2]int64]*changeSet
}

type changeSet struct {
	once  sync.Once
	paths []string
	err   error
}

// paths is ChangedPaths, computed once per pair.
func (c *ChangeCache) paths(ctx context.Context, stateDir string, from, to int64) ([]string, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[[2]int64]*changeSet{}
	}
	cs := c.m[[2]int64{from, to}]
	if cs == nil {
		cs = &changeSet{}
		c.m[[2]int64{from, to}] = cs
	}
	c.mu.Unlock()
	cs.once.Do(func() { cs.paths, cs.err = ChangedPaths(ctx, stateDir, from, to) })
	return cs.paths, cs.err
}

// GenerationToken names generation g for GenerationChanges: its id and
// the nanosecond it was recorded, so a token from another state dir, or
// from one whose generations were removed and counted again, is not taken
// for this one's.
func GenerationToken(g *Generation) string {
	return "gen-" + strconv.FormatInt(g.ID, 10) + "-" + strconv.FormatInt(g.Time.UnixNano(), 10)
}

// ParseGenerationToken reads a GenerationToken; ok is false for any other
// string.
func ParseGenerationToken(tok string) (id, stamp int64, ok bool) {
	rest, found := strings.CutPrefix(tok, "gen-")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rest, "-")
	if !found {
		return 0, 0, false
	}
	id, err1 := strconv.ParseInt(a, 10, 64)
	stamp, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || id <= 0 {
		return 0, 0, false
	}
	return id, stamp, true
}

// Current returns the newest generation when the live image is that
// generation, else nil (no generations, or the live manifest records
// another tree).
func (c GenerationChanges) Current() (*Generation, error) {
	ids, err := generationIDs(c.StateDir)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	g, err := readGeneration(c.StateDir, ids[len(ids)-1])
	if err != nil {
		return nil, err
	}
	if liveDiffers(State(c.StateDir), g) {
		return nil, nil
	}
	return g, nil
}

// Changes implements Changes: the paths that differ between the
// generation since names and the current one, each as a scope of its own
// entry (hard-link groups whole, on both sides), with the current
// generation's token. full is set, with no scopes, when the change set
// cannot be vouched for; the token is then the current generation's, or
// empty when the live image is no generation.
func (c GenerationChanges) Changes(ctx context.Context, since string) ([]tree.Scope, string, bool, error) {
	cur, err := c.Current()
	if err != nil || cur == nil {
		return nil, "", true, err
	}
	token := GenerationToken(cur)
	if since == "" || c.Full {
		return nil, token, true, nil
	}
	id, stamp, ok := ParseGenerationToken(since)
	if !ok {
		return nil, token, true, nil
	}
	from, err := readGeneration(c.StateDir, id)
	if err != nil || from.Time.UnixNano() != stamp || id > cur.ID {
		return nil, token, true, nil // pruned, foreign or from the future
	}
	if id == cur.ID {
		return nil, token, false, nil
	}
	var paths []string
	if c.Cache != nil {
		paths, err = c.Cache.paths(ctx, c.StateDir, id, cur.ID)
	} else {
		paths, err = ChangedPaths(ctx, c.StateDir, id, cur.ID)
	}
	if err != nil {
		return nil, token, true, nil
	}
	scopes := make([]tree.Scope, len(paths))
	for i, p := range paths {
		scopes[i] = tree.Scope{Path: p}
	}
	return scopes, token, false, nil
}

// ChangedPaths lists, in tree.Compare order, the paths whose entries
// differ between two recorded generations of an image (added, removed, or
// changed in type, content, metadata, target, device or hard links). A
// path in a hard-link group that changed brings every path of its group,
// in either generation, so a receiver scanning only these paths still
// sees whole groups.
//
// When both generations' manifests are version-2 bases, it compares them
// block by block (changedByBlocks): blocks whose encodings are the same in
// both are skipped undecoded, so its cost follows the change, not the
// image. A change that touches a hard-link group is compared whole.
func ChangedPaths(ctx context.Context, stateDir string, from, to int64) ([]string, error) {
	if _, err := readGeneration(stateDir, from); err != nil {
		return nil, err
	}
	if _, err := readGeneration(stateDir, to); err != nil {
		return nil, err
	}
	pa, pb := filepath.Join(genDir(stateDir, from), "manifest"), filepath.Join(genDir(stateDir, to), "manifest")
	if paths, ok := changedByBlocks(pa, pb); ok {
		return paths, ctx.Err()
	}
	return changedWhole(ctx, stateDir, from, to)
}

// changedWhole is ChangedPaths over both manifests decoded whole.
func changedWhole(ctx context.Context, stateDir string, from, to int64) ([]string, error) {
	_, a, err := LoadGeneration(stateDir, from)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, b, err := LoadGeneration(stateDir, to)
	if err != nil {
		return nil, err
	}
	changed := map[string]bool{}
	var order []string
	add := func(p string) {
		if !changed[p] {
			changed[p] = true
			order = append(order, p)
		}
	}
	for x, y := range tree.Merge(a.Entries, b.Entries) {
		switch {
		case x == nil:
			add(y.Path)
		case y == nil:
			add(x.Path)
		case !sameEntry(x, y):
			add(x.Path)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Hard-link groups, whole: a member's new link, removal or content
	// touches every member.
	groups := []linkGroups{newLinkGroups(a.Entries), newLinkGroups(b.Entries)}
	for i := 0; i < len(order); i++ {
		for _, g := range groups {
			for _, p := range g.groupOf(order[i]) {
				add(p)
			}
		}
	}
	slices.SortFunc(order, tree.Compare)
	return order, nil
}

// sameEntry reports whether two manifest entries describe the same object
// as a receiver would see it.
func sameEntry(a, b *tree.Entry) bool {
	if a.Type != b.Type || a.LinkTo != b.LinkTo || !tree.SameMeta(a, b) {
		return false
	}
	if a.Type == tree.TypeRegular {
		return a.Size == b.Size && a.Hashed() && b.Hashed() && a.Hash == b.Hash
	}
	return true
}

// linkGroups indexes the hard-link groups of a manifest.
type linkGroups struct {
	leaderOf map[string]string   // member -> leader
	members  map[string][]string // leader -> members (without the leader)
}

func newLinkGroups(es []*tree.Entry) linkGroups {
	g := linkGroups{leaderOf: map[string]string{}, members: map[string][]string{}}
	for _, e := range es {
		if e.LinkTo != "" {
			g.leaderOf[e.Path] = e.LinkTo
			g.members[e.LinkTo] = append(g.members[e.LinkTo], e.Path)
		}
	}
	return g
}

// groupOf returns every path of p's hard-link group (p included), or nil.
func (g linkGroups) groupOf(p string) []string {
	leader := p
	if l, ok := g.leaderOf[p]; ok {
		leader = l
	}
	ms, ok := g.members[leader]
	if !ok {
		return nil
	}
	return append([]string{leader}, ms...)
}

// changedByBlocks is ChangedPaths from the manifests at pa (older) and pb
// without decoding either whole; ok is false when it cannot tell (a base
// of the first format, an unreadable file, a change that touches a
// hard-link group), and the caller compares the manifests whole.
//
// A base block holds consecutive entries and its first entry is coded
// without reference to the block before, so a block whose index record
// (first path, length, entry count, checksum) is in both bases holds the
// same entries in both: only the other blocks are decoded and compared.
// What the logs recorded is compared through scoped loads of the scopes
// of their records (for two manifests of one base, of the records after
// the ones they share: what both replay is the same in both).
func changedByBlocks(pa, pb string) ([]string, bool) {
	a, err := openBlocks(pa)
	if err != nil {
		return nil, false
	}
	defer a.f.Close()
	b, err := openBlocks(pb)
	if err != nil {
		return nil, false
	}
	defer b.f.Close()

	// The logs' part: the scopes of the records the two do not share.
	ra, rb := logHeads(LogPath(pa), a.idx.gen), logHeads(LogPath(pb), b.idx.gen)
	if a.idx.gen == b.idx.gen {
		n := 0
		for n < len(ra) && n < len(rb) && bytes.Equal(ra[n].raw, rb[n].raw) {
			n++
		}
		ra, rb = ra[n:], rb[n:]
	}
	var dirty []tree.Scope
	for _, r := range slices.Concat(ra, rb) {
		dirty = append(dirty, r.scopes...)
	}
	set := tree.NewScopeSet(dirty)
	changed := map[string]bool{}
	simple := true
	diff := func(x, y []*tree.Entry) {
		for e, f := range tree.Merge(x, y) {
			switch {
			case e == nil:
				changed[f.Path] = true
				simple = simple && simpleLinks([]*tree.Entry{f})
			case f == nil:
				changed[e.Path] = true
				simple = simple && simpleLinks([]*tree.Entry{e})
			case !sameEntry(e, f):
				changed[e.Path] = true
				simple = simple && simpleLinks([]*tree.Entry{e, f})
			}
		}
	}
	if len(dirty) > 0 {
		da, err := LoadManifestScoped(pa, dirty)
		if err != nil {
			return nil, false
		}
		db, err := LoadManifestScoped(pb, dirty)
		if err != nil {
			return nil, false
		}
		// A log replay recomputes the links of every group
		// (resolveLinkTo): entries of a group in a record are compared
		// whole.
		if !simpleLinks(da.Entries) || !simpleLinks(db.Entries) {
			return nil, false
		}
		diff(da.Entries, db.Entries)
	}

	// The bases' part: the blocks only one of them holds, less what the
	// logs recorded.
	type blockKey struct {
		first  string
		len, n int
		sum    uint64
	}
	key := func(bl baseBlock) blockKey { return blockKey{bl.first, bl.len, bl.n, bl.sum} }
	inA := make(map[blockKey]bool, a.idx.blocks.len())
	for _, bl := range a.idx.blocks.all(0) {
		inA[key(bl)] = true
	}
	inB := make(map[blockKey]bool, b.idx.blocks.len())
	for _, bl := range b.idx.blocks.all(0) {
		inB[key(bl)] = true
	}
	only := func(x *blockFile, other map[blockKey]bool) ([]*tree.Entry, error) {
		var out []*tree.Entry
		for _, bl := range x.idx.blocks.all(0) {
			if other[key(bl)] {
				continue
			}
			es, err := decodeBlock(x.bf, bl)
			if err != nil {
				return nil, err
			}
			if len(out) > 0 && len(es) > 0 && tree.Compare(out[len(out)-1].Path, es[0].Path) >= 0 {
				return nil, fmt.Errorf("%w: entry %q out of order", ErrCorruptManifest, es[0].Path)
			}
			for _, e := range es {
				if !set.Covers(e.Path) {
					out = append(out, e)
				}
			}
		}
		return out, nil
	}
	xa, err := only(a, inB)
	if err != nil {
		return nil, false
	}
	xb, err := only(b, inA)
	if err != nil {
		return nil, false
	}
	diff(xa, xb)
	if !simple {
		return nil, false
	}
	var out []string
	for p := range changed {
		out = append(out, p)
	}
	slices.SortFunc(out, tree.Compare)
	return out, true
}

// blockFile is an open version-2 base and its index.
type blockFile struct {
	f   *os.File
	bf  baseFile
	idx *baseIndex
}

func openBlocks(path string) (*blockFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	bf, err := fileBase(f)
	if err == nil {
		var hdr []byte
		if hdr, err = bf.readAt(0, int64(len(manifestMagic))); err == nil && !bytes.Equal(hdr, manifestMagic) {
			err = fmt.Errorf("%w: not a version-2 base", ErrCorruptManifest)
		}
	}
	var idx *baseIndex
	if err == nil {
		idx, err = readIndex(bf)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &blockFile{f: f, bf: bf, idx: idx}, nil
}

// logHead is a log record's scopes and bytes.
type logHead struct {
	scopes []tree.Scope
	raw    []byte
}

// logHeads reads the scopes of the records of the log at path that a load
// replays onto base generation gen (readLog's records), decoding no entry.
func logHeads(path string, gen uint64) []logHead {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []logHead
	for off := 0; ; {
		h, n, err := parseLogRecord(data[off:])
		if err != nil || n == 0 {
			return out
		}
		if h.gen == gen {
			out = append(out, logHead{scopes: h.scopes, raw: data[off : off+n]})
		}
		off += n
	}
}
