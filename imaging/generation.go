package imaging

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging/tree"
)

// Generations: every successful sync of an image (pull, receive, sync,
// rollback) can be recorded as a generation in the state dir, so the image
// can be listed, compared and rolled back to any kept generation without
// the golden node.
//
// A generation is its record (info.json), the manifest of the image as the
// run left it, and the list of content keys (hash, size) its regular files
// need. The content itself is not copied: a file of generation N is either
// still in the live image (at some path, with that hash) or was replaced or
// deleted by a later run. Such a file's old inode is already kept by
// retention (a hard link in StateDir/retention); at the end of each run the
// retained inodes are matched by (dev, ino, size, mtime) against what the
// run replaced and linked once more, by content key, into
// StateDir/generations/objects. A generation therefore costs its manifest
// plus the bytes of the content that later runs replaced: the size of the
// change, not of the image. Pruning removes generations the policy no longer
// keeps and the objects no kept generation needs.
//
// Layout beneath StateDir/generations:
//
//	<id>/info.json   the Generation record
//	<id>/manifest    the image's manifest after the run
//	<id>/keys        (hash, size) pairs, 16 bytes each, one per file with content
//	<id>/added       the keys the run added to generation id-1's (a scoped
//	                 run recorded from it): keys ⊆ keys(id-1) ∪ added, so a
//	                 sweep reads these instead of keys when id-1 is kept
//	<id>/pinned      present when pinned (pruning skips it)
//	<id>/boot.json   the kernels its OS entries booted (SetGenerationBoot)
//	objects/<hash>-<size>  hard links to kept content

// GenerationPolicy turns on recording of generations for a Sync and says
// which to keep. A generation is kept when it is pinned, is the newest, is
// among the Keep newest, or is younger than KeepFor. With both zero every
// generation is kept.
type GenerationPolicy struct {
	// Keep is how many of the newest generations to keep; zero means no
	// limit by count.
	Keep int
	// KeepFor keeps generations younger than this; zero means no limit by
	// age.
	KeepFor time.Duration
	// Source describes where the run's tree came from ("node004:/",
	// "push from node004", "rollback to 3"); it is recorded as is.
	Source string
}

// Generation is the record of one generation.
type Generation struct {
	ID     int64     `json:"id"`
	Time   time.Time `json:"time"`
	Source string    `json:"source"`
	// RollbackOf is the generation a rollback restored; zero otherwise.
	RollbackOf int64 `json:"rollback_of,omitempty"`
	// Excludes are the run's exclude patterns; a rollback uses them so it
	// leaves excluded paths alone, as the pulls did.
	Excludes []string `json:"excludes,omitempty"`
	Entries  int      `json:"entries"`
	Created  int      `json:"created"`
	Updated  int      `json:"updated"`
	MetaOnly int      `json:"meta_only"`
	Deleted  int      `json:"deleted"`
	// Bytes is the content the run wrote (received and copied).
	Bytes int64 `json:"bytes"`
	// ManifestIdent identifies the live manifest files as this run left
	// them (see liveDiffers).
	ManifestIdent string `json:"manifest_ident,omitempty"`
	// Retained is the retention stamp of the run that recorded it: its
	// retained links were looked at then, and the next run's harvest
	// skips them.
	Retained string `json:"retained,omitempty"`
	// Boot is what the OS entries booting the image pointed at when the
	// generation was the newest (SetGenerationBoot): a rollback to it
	// installs the same kernel and initrd. Stored in <id>/boot.json.
	Boot []BootRecord `json:"boot,omitempty"`

	// Filled in by ListGenerations, not stored.

	// Pinned generations are never pruned.
	Pinned bool `json:"pinned"`
	// Held is the bytes of kept content (objects) this generation needs:
	// what it costs beyond the live image, shared with other generations
	// that need the same content.
	Held int64 `json:"bytes_held"`
	// ManifestBytes is the size of the generation's manifest file.
	ManifestBytes int64 `json:"manifest_bytes"`
}

// BootRecord is the kernel an OS entry booting the image pointed at: the
// version of /boot/vmlinuz-VERSION and of its initrd, both in the image.
type BootRecord struct {
	OS     string `json:"os"`
	Kernel string `json:"kernel"`
}

// Errors of generation operations callers branch on.
var (
	// ErrNoGeneration is wrapped when the asked generation does not exist.
	ErrNoGeneration = errors.New("no such generation")
	// ErrIncomplete is wrapped when a rollback is refused because content
	// of the generation is no longer kept.
	ErrIncomplete = errors.New("generation data incomplete")
)

// GenerationsDir is where a state dir keeps its generations.
func GenerationsDir(stateDir string) string { return filepath.Join(stateDir, "generations") }

func objectsDir(stateDir string) string { return filepath.Join(GenerationsDir(stateDir), "objects") }

func genDir(stateDir string, id int64) string {
	return filepath.Join(GenerationsDir(stateDir), strconv.FormatInt(id, 10))
}

// contentKey names kept content: its xxhash64 and size.
type contentKey struct {
	hash uint64
	size int64
}

func (k contentKey) name() string { return fmt.Sprintf("%016x-%d", k.hash, k.size) }

func parseKey(name string) (contentKey, bool) {
	h, s, ok := strings.Cut(name, "-")
	if !ok || len(h) != 16 {
		return contentKey{}, false
	}
	hv, err1 := strconv.ParseUint(h, 16, 64)
	sv, err2 := strconv.ParseInt(s, 10, 64)
	if err1 != nil || err2 != nil || sv < 0 {
		return contentKey{}, false
	}
	return contentKey{hv, sv}, true
}

func entryKey(e *tree.Entry) contentKey { return contentKey{e.Hash, e.Size} }

// needsContent reports whether restoring e needs content from somewhere:
// a non-empty regular file that is not a hard link to an earlier entry.
func needsContent(e *tree.Entry) bool {
	return e.Type == tree.TypeRegular && e.LinkTo == "" && e.Size > 0
}

// generationIDs lists the recorded generation ids, ascending.
func generationIDs(stateDir string) ([]int64, error) {
	ents, err := os.ReadDir(GenerationsDir(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("generations: %w", err)
	}
	var ids []int64
	for _, e := range ents {
		if id, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && id > 0 && e.IsDir() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// NewestGeneration returns the id of the image's newest recorded
// generation (0: none), from the names in its generations directory
// alone: cheap enough for every push (ListGenerations also sums what
// each one holds).
func NewestGeneration(stateDir string) (int64, error) {
	ids, err := generationIDs(stateDir)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return ids[len(ids)-1], nil
}

func readGeneration(stateDir string, id int64) (*Generation, error) {
	b, err := os.ReadFile(filepath.Join(genDir(stateDir, id), "info.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %d", ErrNoGeneration, id)
	}
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", id, err)
	}
	g := &Generation{}
	if err := json.Unmarshal(b, g); err != nil {
		return nil, fmt.Errorf("generation %d: %w", id, err)
	}
	_, err = os.Lstat(filepath.Join(genDir(stateDir, id), "pinned"))
	g.Pinned = err == nil
	if fi, err := os.Stat(filepath.Join(genDir(stateDir, id), "manifest")); err == nil {
		g.ManifestBytes = fi.Size()
	}
	b, err = os.ReadFile(filepath.Join(genDir(stateDir, id), "boot.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("generation %d: %w", id, err)
	default:
		if err := json.Unmarshal(b, &g.Boot); err != nil {
			return nil, fmt.Errorf("generation %d: boot.json: %w", id, err)
		}
	}
	return g, nil
}

// SetGenerationBoot records the kernels the OS entries booting the image
// point at in generation id (zero: the newest), replacing what was
// recorded. The cluster sync calls it once the netboot files are written,
// so a rollback to the generation can install the same boot files.
// Callers hold the image's run lock.
func SetGenerationBoot(stateDir string, id int64, boot []BootRecord) error {
	if id == 0 {
		ids, err := generationIDs(stateDir)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		id = ids[len(ids)-1]
	}
	if _, err := readGeneration(stateDir, id); err != nil {
		return err
	}
	boot = slices.Clone(boot)
	slices.SortFunc(boot, func(a, b BootRecord) int { return strings.Compare(a.OS, b.OS) })
	b, err := json.MarshalIndent(boot, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(genDir(stateDir, id), "boot.json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("generation %d: boot record: %w", id, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("generation %d: boot record: %w", id, err)
	}
	return nil
}

// BootKernel returns the kernel version generation g recorded for OS os,
// or "" when it recorded none (or g is nil).
func (g *Generation) BootKernel(os string) string {
	if g == nil {
		return ""
	}
	for _, b := range g.Boot {
		if b.OS == os {
			return b.Kernel
		}
	}
	return ""
}

// ListGenerations returns the generations recorded in a state dir, oldest
// first, with their pin state and the bytes they hold.
func ListGenerations(stateDir string) ([]Generation, error) {
	ids, err := generationIDs(stateDir)
	if err != nil {
		return nil, err
	}
	objs := listObjects(stateDir)
	var out []Generation
	for _, id := range ids {
		g, err := readGeneration(stateDir, id)
		if err != nil {
			return nil, err
		}
		if err := eachKey(stateDir, id, func(k contentKey) {
			if objs[k] {
				g.Held += k.size
			}
		}); err != nil {
			return nil, err
		}
		out = append(out, *g)
	}
	return out, nil
}

// GenerationInfo returns a generation's record (without its manifest).
func GenerationInfo(stateDir string, id int64) (*Generation, error) {
	return readGeneration(stateDir, id)
}

// LoadGeneration returns a generation's record and manifest.
func LoadGeneration(stateDir string, id int64) (*Generation, *Manifest, error) {
	g, err := readGeneration(stateDir, id)
	if err != nil {
		return nil, nil, err
	}
	m, err := LoadManifest(filepath.Join(genDir(stateDir, id), "manifest"))
	if err != nil {
		return nil, nil, fmt.Errorf("generation %d: %w", id, err)
	}
	return g, m, nil
}

// PinGeneration pins (or unpins) a generation: a pinned one is never pruned.
func PinGeneration(stateDir string, id int64, pin bool) error {
	if _, err := readGeneration(stateDir, id); err != nil {
		return err
	}
	p := filepath.Join(genDir(stateDir, id), "pinned")
	if pin {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin: %w", err)
	}
	return nil
}

// GenerationsSize returns how many generations a state dir holds and the
// bytes they cost beyond the live image: their manifests (a base several
// generations share counted once), content keys and the kept content
// (apparent sizes; holes and content shared with retention count).
func GenerationsSize(stateDir string) (n int, bytes int64, err error) {
	ids, err := generationIDs(stateDir)
	if err != nil {
		return 0, 0, err
	}
	type ident struct{ dev, ino uint64 }
	seen := map[ident]bool{} // generations may share a manifest base
	for _, id := range ids {
		for _, name := range []string{"manifest", "manifest.log", "keys", "added"} {
			var st unix.Stat_t
			if unix.Stat(filepath.Join(genDir(stateDir, id), name), &st) == nil && !seen[ident{st.Dev, st.Ino}] {
				seen[ident{st.Dev, st.Ino}] = true
				bytes += st.Size
			}
		}
	}
	for k := range listObjects(stateDir) {
		bytes += k.size
	}
	return len(ids), bytes, nil
}

func listObjects(stateDir string) map[contentKey]bool {
	ents, _ := os.ReadDir(objectsDir(stateDir))
	objs := make(map[contentKey]bool, len(ents))
	for _, e := range ents {
		if k, ok := parseKey(e.Name()); ok {
			objs[k] = true
		}
	}
	return objs
}

// keyWriter writes a generation's keys file, 16 bytes a key, in no
// particular order (the manifest's, or the previous generation's with a
// scoped run's changes appended), a file's content as often as the
// manifest names it (its readers ask only "which kept objects does this
// generation need"). Sorting them to drop duplicates held every key, 16 MB
// at 1M files and up to twice that while the slice grew (issue #14).
type keyWriter struct {
	f *os.File
	w *bufio.Writer
}

func createKeyList(path string) (*keyWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &keyWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (kw *keyWriter) add(k contentKey) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], k.hash)
	binary.LittleEndian.PutUint64(b[8:], uint64(k.size))
	kw.w.Write(b[:]) // an error sticks: Flush reports it
}

func (kw *keyWriter) close() error {
	err := kw.w.Flush()
	if cerr := kw.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// eachKey calls fn with each content key of generation id, read through a
// small buffer: a generation holds one key per file (16 MB at 1M files),
// and what its callers need is only the keys of kept objects (issue #14).
func eachKey(stateDir string, id int64, fn func(contentKey)) error {
	return eachKeyIn(stateDir, id, "keys", fn)
}

// eachKeyIn calls fn with each content key of the key list name ("keys"
// or "added") of generation id.
func eachKeyIn(stateDir string, id int64, name string, fn func(contentKey)) error {
	return eachKeyBlock(stateDir, id, name, func(b []byte) {
		for off := 0; off < len(b); off += keySize {
			fn(keyAt(b, off))
		}
	})
}

// keySize is the length of a content key in a key list: its hash and
// size, little-endian.
const keySize = 16

// keyAt decodes the key at b[off:].
func keyAt(b []byte, off int) contentKey {
	return contentKey{binary.LittleEndian.Uint64(b[off:]), int64(binary.LittleEndian.Uint64(b[off+8:]))}
}

// eachKeyBlock calls fn with the key list name of generation id in blocks
// of whole keys (up to 64 KiB; a short tail was never a key), so that a
// caller looking for a few keys among all of a generation's tests each
// with a keyFilter and copies the rest as it is (keysFromDelta).
func eachKeyBlock(stateDir string, id int64, name string, fn func(b []byte)) error {
	f, err := os.Open(filepath.Join(genDir(stateDir, id), name))
	if err != nil {
		return fmt.Errorf("generation %d keys: %w", id, err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	have, n := 0, int64(0)
	defer func() { keysRead.Add(n) }()
	for {
		m, err := f.Read(buf[have:])
		have += m
		if whole := have - have%keySize; whole > 0 && (have == len(buf) || err != nil) {
			n += int64(whole / keySize)
			fn(buf[:whole])
			have = copy(buf, buf[whole:have])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("generation %d keys: %w", id, err)
		}
	}
}

// keyFilter is a set of content keys' hashes, 4096 bits of them: a key
// whose bit is clear was never added, one whose bit is set may have been
// (for a few hundred keys, one in a hundred others or fewer). It spares a
// map lookup for each of a generation's keys where only a few matter.
type keyFilter [64]uint64

func (f *keyFilter) add(k contentKey) { f[k.hash>>6&63] |= 1 << (k.hash & 63) }

func (f *keyFilter) mayHave(b []byte, off int) bool {
	h := binary.LittleEndian.Uint64(b[off:])
	return f[h>>6&63]&(1<<(h&63)) != 0
}

// keysRead counts the content keys read from generations' key lists: the
// test that checks that a prune's work follows the change reads it.
var keysRead atomic.Int64

// keyLookups counts the keys of generations' key lists that a record or
// a sweep looked up in its map (the others its keyFilter ruled out): the
// test that checks that recording a generation copies the kept keys
// reads it.
var keyLookups atomic.Int64

// afterSync is Sync's generation hook, run with the state dir's lock held
// after a run that may have changed the image. It keeps the content the
// run replaced that a generation may need (whenever generations exist or
// are asked for), records a new generation when the run succeeded and a
// policy is set, and prunes. Failures are logged: they never fail the sync
// that already happened. It returns the new generation's id, or zero.
func afterSync(sp StatePaths, opts *Options, res *Result, start time.Time, ok bool, log *slog.Logger) int64 {
	if opts.DryRun {
		return 0
	}
	ids, err := generationIDs(sp.Dir)
	if err != nil {
		log.Warn("generations", "err", err)
		return 0
	}
	if opts.Generations == nil && len(ids) == 0 {
		return 0
	}
	removeStaleGenerations(sp.Dir)
	if opts.Retention < 0 {
		log.Warn("retention is off: files this run replaced are not kept, so earlier generations may not be restorable")
	}
	var latest *Generation
	if len(ids) > 0 {
		latest, _ = readGeneration(sp.Dir, ids[len(ids)-1])
	}
	if n, err := harvest(sp, res.Plan, latest, start, res.run, log); err != nil {
		log.Warn("generations: replaced content not kept", "err", err)
	} else if n > 0 {
		log.Debug("generations: kept replaced content", "objects", n)
	}
	if !ok || opts.Generations == nil {
		return 0
	}
	changed := res.Created+res.Updated+res.MetaOnly+res.Linked+res.Deleted > 0
	if !changed && latest != nil && !liveDiffers(sp, latest) {
		noteManifestIdent(sp, latest, log)
		return 0 // nothing changed: the newest generation still describes the image
	}
	id, err := recordGeneration(sp, opts, res, ids, latest)
	if err != nil {
		log.Warn("generation not recorded", "err", err)
		return 0
	}
	res.run.recorded = true
	if _, _, err := PruneGenerations(sp.Dir, *opts.Generations, time.Now()); err != nil {
		log.Warn("generations: prune", "err", err)
	}
	return id
}

// manifestIdent identifies the manifest files as saved: a run that saves
// the manifest changes it.
func manifestIdent(path string) string {
	var a, b unix.Stat_t
	unix.Stat(path, &a)
	unix.Stat(LogPath(path), &b)
	return fmt.Sprintf("%d:%d:%d:%d:%d:%d", a.Ino, a.Size, a.Mtim.Nano(), b.Ino, b.Size, b.Mtim.Nano())
}

// liveDiffers reports whether the live manifest records another tree than
// generation g (a run killed after it saved the manifest and before it
// recorded its generation leaves them apart, and the next run has nothing
// to do). It compares the trees only when the manifest was saved since g.
func liveDiffers(sp StatePaths, g *Generation) bool {
	if g.ManifestIdent != "" && g.ManifestIdent == manifestIdent(sp.Manifest) {
		return false
	}
	live, err := LoadManifest(sp.Manifest)
	if err != nil {
		return true
	}
	gm, err := LoadManifest(filepath.Join(genDir(sp.Dir, g.ID), "manifest"))
	if err != nil || len(gm.Entries) != len(live.Entries) {
		return true
	}
	for i, a := range gm.Entries {
		b := live.Entries[i]
		if a.Path != b.Path || a.Type != b.Type || a.Size != b.Size || a.Hash != b.Hash || a.Target != b.Target ||
			a.Rdev != b.Rdev || a.LinkTo != b.LinkTo || !tree.SameMeta(a, b) {
			return true
		}
	}
	return false
}

// noteManifestIdent records in generation g, which describes the tree the
// live manifest records (liveDiffers said so), the live manifest's files
// as now saved. A run that saves the manifest without changing the tree (a
// file re-read after a chmod to the same mode, a moved image) otherwise
// left them apart for good, and every later run that changed nothing
// decoded both manifests whole to compare them again (1.2 s of CPU and
// 130 MiB at 225k entries, issue #14). Failures are logged only: the
// comparison stays right, just slow.
func noteManifestIdent(sp StatePaths, g *Generation, log *slog.Logger) {
	ident := manifestIdent(sp.Manifest)
	if g.ManifestIdent == ident {
		return
	}
	info := filepath.Join(genDir(sp.Dir, g.ID), "info.json")
	b, err := os.ReadFile(info)
	var rec map[string]json.RawMessage
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err == nil {
		rec["manifest_ident"], _ = json.Marshal(ident)
		b, err = json.MarshalIndent(rec, "", "  ")
	}
	if err == nil {
		err = writeFileAtomicFunc(info, func(w io.Writer) error {
			_, err := w.Write(append(b, '\n'))
			return err
		})
	}
	if err != nil {
		log.Warn("generations: the newest generation's manifest ident not updated", "generation", g.ID, "err", err)
	}
}

// harvest links the retained inodes of the content this run replaced into
// the objects dir; and of what a run killed since the latest generation
// replaced, matched against that generation's manifest (loaded only when
// a retained inode is neither this run's nor kept already).
func harvest(sp StatePaths, plan *Plan, latest *Generation, start time.Time, run runNotes, log *slog.Logger) (int, error) {
	type ident = inoKey
	stamp := run.stamp
	// The retention dir's names: as the run's retainer knows them (it
	// listed the dir when it purged it), else listed now.
	names := run.retained
	if run.retainedAfter != "" && (latest == nil || latest.Retained != run.retainedAfter) {
		// The run knows only its own names, and the newest generation's
		// harvest is not the one that looked at the others.
		run.retainedOK = false
	}
	if !run.retainedOK {
		ents, err := os.ReadDir(sp.Retention)
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		retentionListings.Add(1)
		names = make([]string, len(ents))
		for i, de := range ents {
			names[i] = de.Name()
		}
	}
	// Retained links older than the latest generation were looked at when
	// it was recorded, and so were those of the run that recorded it
	// (named by its stamp: its second may be the generation's, and a
	// file it replaced that already had an object, as content that comes
	// back does, would be looked up in the whole manifest again).
	since := start.Unix()
	var seen string
	if latest != nil {
		since = latest.Time.Unix()
		if latest.Retained != "" && latest.Retained != stamp {
			seen = latest.Retained + "."
		}
	}
	if err := os.MkdirAll(objectsDir(sp.Dir), 0o700); err != nil {
		return 0, err
	}
	type retained struct {
		path string
		st   unix.Stat_t
	}
	var recent []retained
	wanted := map[ident]bool{}
	for _, name := range names {
		ts, _, _ := strings.Cut(name, ".")
		if t, err := strconv.ParseInt(ts, 10, 64); err != nil || t < since || (seen != "" && strings.HasPrefix(name, seen)) {
			continue
		}
		r := retained{path: filepath.Join(sp.Retention, name)}
		if unix.Lstat(r.path, &r.st) != nil || r.st.Mode&unix.S_IFMT != unix.S_IFREG || r.st.Size == 0 {
			continue // (an empty file needs no kept content: needsContent)
		}
		recent = append(recent, r)
		wanted[ident{r.st.Dev, r.st.Ino}] = true
	}
	if len(recent) == 0 {
		return 0, nil
	}
	// What the plan replaced, of the retained inodes only (a plan that
	// fetched every file with a basis replaced the whole image's list).
	cands := map[ident]*tree.Entry{}
	if plan != nil {
		for _, a := range plan.Actions {
			if d := a.Dst; d != nil && a.Op != OpMeta && a.Op != OpDirMeta && d.Type == tree.TypeRegular && d.Hashed() && d.Size > 0 && wanted[ident{d.Dev, d.Ino}] {
				cands[ident{d.Dev, d.Ino}] = d
			}
		}
		err := plan.replaced.each(func(k inoKey, d *tree.Entry) {
			if wanted[k] {
				cands[k] = d
			}
		})
		if err != nil {
			return 0, err
		}
	}
	var rest []retained
	n := 0
	keep := func(r retained, e *tree.Entry) bool {
		if e == nil || e.Size != r.st.Size || e.Mtime != r.st.Mtim.Nano() {
			return false
		}
		err := unix.Link(r.path, filepath.Join(objectsDir(sp.Dir), entryKey(e).name()))
		switch {
		case err == nil:
			n++
		case errors.Is(err, unix.EEXIST):
		default:
			log.Debug("generations: keep", "retained", r.path, "err", err)
		}
		return true
	}
	for _, r := range recent {
		if !keep(r, cands[ident{r.st.Dev, r.st.Ino}]) {
			rest = append(rest, r)
		}
	}
	if len(rest) == 0 || latest == nil {
		return n, nil
	}
	// Retained by a run that recorded no generation (killed, failed):
	// already kept, or content of the latest generation?
	objs, _ := os.ReadDir(objectsDir(sp.Dir))
	have := map[ident]bool{}
	for _, o := range objs {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(objectsDir(sp.Dir), o.Name()), &st) == nil {
			have[ident{st.Dev, st.Ino}] = true
		}
	}
	var unknown []retained
	for _, r := range rest {
		if !have[ident{r.st.Dev, r.st.Ino}] {
			unknown = append(unknown, r)
		}
	}
	if len(unknown) == 0 {
		return n, nil
	}
	// The generation's manifest block by block, keeping only the
	// entries of these inodes (held whole, it was ~150 MB at 1M entries).
	need := make(map[ident]bool, len(unknown))
	for _, r := range unknown {
		need[ident{r.st.Dev, r.st.Ino}] = true
	}
	byIdent := map[ident]*tree.Entry{}
	err := eachManifestEntry(filepath.Join(genDir(sp.Dir, latest.ID), "manifest"), func(e *tree.Entry) error {
		if k := (ident{e.Dev, e.Ino}); need[k] && needsContent(e) && e.Hashed() {
			c := *e // not the block it was decoded in
			byIdent[k] = &c
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	for _, r := range unknown {
		keep(r, byIdent[ident{r.st.Dev, r.st.Ino}])
	}
	return n, nil
}

// recordGeneration writes a new generation from the manifest just saved.
// After a scoped run that started from the latest generation (its
// manifest as that generation recorded it), the content keys and the
// count come from that generation's and the run's change (runDelta): the
// work follows the change. Otherwise they are read from the manifest.
func recordGeneration(sp StatePaths, opts *Options, res *Result, ids []int64, latest *Generation) (int64, error) {
	id := int64(1)
	if len(ids) > 0 {
		id = ids[len(ids)-1] + 1
	}
	base := GenerationsDir(sp.Dir)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(base, ".new-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	var notes runNotes
	if res != nil {
		notes = res.run
	}
	entries := -1
	if d := notes.delta; d != nil && latest != nil && latest.ID == id-1 && latest.ManifestIdent != "" && latest.ManifestIdent == d.identBefore {
		entries, err = keysFromDelta(sp.Dir, latest, d, filepath.Join(tmp, "keys"))
		if err == nil {
			err = writeAdded(d, filepath.Join(tmp, "added"))
		}
		if err != nil {
			entries = -1 // read them from the manifest
			os.Remove(filepath.Join(tmp, "added"))
		}
	}
	if entries < 0 {
		if entries, err = keysFromManifest(sp.Manifest, filepath.Join(tmp, "keys")); err != nil {
			return 0, err
		}
	}
	g := Generation{
		ID: id, Time: time.Now().UTC(), Source: opts.Generations.Source, RollbackOf: opts.rollbackOf,
		Excludes: opts.Excludes, Entries: entries, ManifestIdent: manifestIdent(sp.Manifest), Retained: notes.stamp,
	}
	if res != nil {
		g.Created, g.Updated, g.MetaOnly, g.Deleted = res.Created, res.Updated, res.MetaOnly, res.Deleted
		g.Bytes = res.BytesReceived + res.BytesCopied
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "info.json"), append(b, '\n'), 0o600); err != nil {
		return 0, err
	}
	// The manifest's files as they are, not re-encoded. The base is
	// never written in place (a save writes a new file and renames it
	// over), so the generation takes one more link to it: generations
	// recorded between two folds of the log share their base, and each
	// costs its copy of the log (at most a quarter of the base). The log
	// is appended to in place: copied.
	mto := filepath.Join(tmp, "manifest")
	if err := os.Link(sp.Manifest, mto); err != nil {
		if err := copyFile(sp.Manifest, mto); err != nil {
			return 0, err
		}
	}
	if err := copyFile(LogPath(sp.Manifest), LogPath(mto)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if err := os.Rename(tmp, genDir(sp.Dir, id)); err != nil {
		return 0, err
	}
	return id, nil
}

// keysFromManifest writes the content keys of the manifest at path to the
// keys file to, block by block, and returns how many entries it holds.
func keysFromManifest(path, to string) (int, error) {
	kw, err := createKeyList(to)
	if err != nil {
		return 0, err
	}
	entries := 0
	err = eachManifestEntry(path, func(e *tree.Entry) error {
		entries++
		if needsContent(e) && e.Hashed() {
			kw.add(entryKey(e))
		}
		return nil
	})
	if cerr := kw.close(); err == nil {
		err = cerr
	}
	return entries, err
}

// runDelta is what a scoped run changed in the manifest: within its
// scopes, the entries recorded before (old) and after (new), and the
// manifest's identity before the run saved it.
type runDelta struct {
	identBefore string
	old, new    []*tree.Entry
}

// keysFromDelta writes the keys of generation latest's keys file less
// the run's old entries' keys plus its new entries' (a multiset: a key
// is listed once per file) to the keys file to, and returns the entry
// count. It fails when an old key is not in latest's list: the delta does
// not describe latest, and the caller reads the manifest instead.
func keysFromDelta(stateDir string, latest *Generation, d *runDelta, to string) (int, error) {
	drop := map[contentKey]int{}
	var maybe keyFilter
	for _, e := range d.old {
		if needsContent(e) && e.Hashed() {
			drop[entryKey(e)]++
			maybe.add(entryKey(e))
		}
	}
	kw, err := createKeyList(to)
	if err != nil {
		return 0, err
	}
	// The kept keys are copied a block at a time; only those whose bit
	// the dropped keys set are looked up.
	err = eachKeyBlock(stateDir, latest.ID, "keys", func(b []byte) {
		from := 0
		for off := 0; off < len(b); off += keySize {
			if !maybe.mayHave(b, off) {
				continue
			}
			keyLookups.Add(1)
			if k := keyAt(b, off); drop[k] > 0 {
				drop[k]--
				kw.w.Write(b[from:off])
				from = off + keySize
			}
		}
		kw.w.Write(b[from:])
	})
	for _, e := range d.new {
		if needsContent(e) && e.Hashed() {
			kw.add(entryKey(e))
		}
	}
	if cerr := kw.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	for _, n := range drop {
		if n > 0 {
			return 0, errors.New("generation keys do not match the manifest")
		}
	}
	return latest.Entries - len(d.old) + len(d.new), nil
}

// writeAdded writes the keys of a scoped run's new entries to the added
// list to: with the keys of the generation the run started from, a
// superset of the new generation's keys (sweepObjects).
func writeAdded(d *runDelta, to string) error {
	kw, err := createKeyList(to)
	if err != nil {
		return err
	}
	for _, e := range d.new {
		if needsContent(e) && e.Hashed() {
			kw.add(entryKey(e))
		}
	}
	return kw.close()
}

// copyFile copies a state file (reflink or copy_file_range where the
// filesystem has them) and flushes it.
func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// PruneGenerations removes the generations policy does not keep (never a
// pinned one, never the newest), then the kept content no remaining
// generation needs. It returns the removed ids and the bytes of the objects
// removed. Callers other than Sync must hold the state dir's lock.
func PruneGenerations(stateDir string, policy GenerationPolicy, now time.Time) (removed []int64, freed int64, err error) {
	removeStaleGenerations(stateDir)
	ids, err := generationIDs(stateDir)
	if err != nil || len(ids) == 0 {
		return nil, 0, err
	}
	for i, id := range ids {
		newest := len(ids) - 1 - i // how many are newer
		g, err := readGeneration(stateDir, id)
		if err != nil {
			return removed, freed, err
		}
		keep := g.Pinned || newest == 0 || (policy.Keep <= 0 && policy.KeepFor <= 0) ||
			(policy.Keep > 0 && newest < policy.Keep) ||
			(policy.KeepFor > 0 && now.Sub(g.Time) < policy.KeepFor)
		if keep {
			continue
		}
		// Rename first, so a crash leaves no half-removed generation.
		gone := filepath.Join(GenerationsDir(stateDir), ".gone-"+strconv.FormatInt(id, 10))
		if err := os.Rename(genDir(stateDir, id), gone); err != nil {
			return removed, freed, fmt.Errorf("prune generation %d: %w", id, err)
		}
		os.RemoveAll(gone)
		removed = append(removed, id)
	}
	freed, err = sweepObjects(stateDir)
	return removed, freed, err
}

// removeStaleGenerations removes what interrupted records and prunes left
// (".new-*", ".gone-*"). The caller holds the state dir's lock.
func removeStaleGenerations(stateDir string) {
	ents, _ := os.ReadDir(GenerationsDir(stateDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".new-") || strings.HasPrefix(e.Name(), ".gone-") {
			os.RemoveAll(filepath.Join(GenerationsDir(stateDir), e.Name()))
		}
	}
}

// sweepObjects removes objects no generation needs. It holds the objects
// (the content runs replaced) and the keys of those still needed, never a
// generation's keys: a set of every file's key was 30 MB of the image
// server's 51 MB peak live heap in a 1M-entry pull (issue #14).
//
// It reads a generation's whole key list only when the generation before
// it (id-1) is gone or it has no added list; otherwise its added list (the
// keys of its run's new entries) is enough, since its keys are a subset of
// id-1's and those: the keys read are a superset of every kept
// generation's. A run recorded by a scoped update then costs the sweep a
// few keys, not one per file of the image, and the sweep reads one whole
// list per run of consecutive kept generations (issue #17).
func sweepObjects(stateDir string) (int64, error) {
	ids, err := generationIDs(stateDir)
	if err != nil {
		return 0, err
	}
	objs := listObjects(stateDir)
	if len(objs) == 0 {
		return 0, nil
	}
	var held keyFilter
	for k := range objs {
		held.add(k)
	}
	need := map[contentKey]bool{}
	for i, id := range ids {
		name := "keys"
		if i > 0 && ids[i-1] == id-1 && fileExists(filepath.Join(genDir(stateDir, id), "added")) {
			name = "added"
		}
		if err := eachKeyBlock(stateDir, id, name, func(b []byte) {
			for off := 0; off < len(b); off += keySize {
				if !held.mayHave(b, off) {
					continue
				}
				keyLookups.Add(1)
				if k := keyAt(b, off); objs[k] {
					need[k] = true
				}
			}
		}); err != nil {
			return 0, err // unsure what is needed: remove nothing
		}
	}
	var freed int64
	for k := range objs {
		if need[k] {
			continue
		}
		if err := os.Remove(filepath.Join(objectsDir(stateDir), k.name())); err == nil {
			freed += k.size
		}
	}
	return freed, nil
}

// fileExists reports whether path names something (not following a last
// symlink).
func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
