package imaging

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/cespare/xxhash/v2"

	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/imaging/wire"
)

// Manifest is the recorded state of a tree: every entry with its hash and
// local identity (dev, ino, ctime), so the next walk of the same tree can
// skip reading what did not change. A destination's manifest lives in its
// state dir, outside the exported image; a source's hash cache uses the same
// format.
type Manifest struct {
	// Entries in tree.Compare order.
	Entries []*tree.Entry
}

// manifestMagic starts every manifest file; the last byte is the format
// version.
var manifestMagic = []byte("GSMANIF\x01")

// ErrCorruptManifest is wrapped when a manifest fails its checksum or
// cannot be decoded.
var ErrCorruptManifest = errors.New("corrupt manifest")

func (m *Manifest) sort() {
	slices.SortFunc(m.Entries, func(a, b *tree.Entry) int { return tree.Compare(a.Path, b.Path) })
}

func (m *Manifest) index() map[string]*tree.Entry {
	idx := make(map[string]*tree.Entry, len(m.Entries))
	for _, e := range m.Entries {
		idx[e.Path] = e
	}
	return idx
}

// Save writes the manifest atomically: a temp file in the same directory,
// fsync, rename, fsync of the directory. The file is 0600.
func (m *Manifest) Save(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".manifest-*")
	if err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := xxhash.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	bw.Write(manifestMagic)
	var buf []byte
	buf = binary.AppendUvarint(buf[:0], uint64(len(m.Entries)))
	bw.Write(buf)
	var prev *tree.Entry
	for _, e := range m.Entries {
		buf, err = wire.AppendEntryLocal(buf[:0], prev, e)
		if err != nil {
			return fmt.Errorf("save manifest: %w", err)
		}
		bw.Write(buf)
		prev = e
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	var sum [8]byte
	binary.BigEndian.PutUint64(sum[:], h.Sum64())
	if _, err := f.Write(sum[:]); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save manifest: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// LoadManifest reads a manifest written by Save. A missing file gives an
// error wrapping os.ErrNotExist; a damaged one wraps ErrCorruptManifest.
func LoadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load manifest: %w", err)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("load manifest %s: %w", path, err)
	}
	return m, nil
}

// DecodeManifest decodes a manifest file's bytes, checking its checksum,
// order and every entry.
func DecodeManifest(data []byte) (*Manifest, error) {
	if len(data) < len(manifestMagic)+8 || !bytes.Equal(data[:len(manifestMagic)], manifestMagic) {
		return nil, fmt.Errorf("%w: bad header", ErrCorruptManifest)
	}
	body, sum := data[:len(data)-8], data[len(data)-8:]
	if xxhash.Sum64(body) != binary.BigEndian.Uint64(sum) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptManifest)
	}
	r := body[len(manifestMagic):]
	n, k := binary.Uvarint(r)
	if k <= 0 || n > uint64(len(r)) {
		return nil, fmt.Errorf("%w: bad entry count", ErrCorruptManifest)
	}
	r = r[k:]
	m := &Manifest{Entries: make([]*tree.Entry, 0, n)}
	var prev *tree.Entry
	for i := uint64(0); i < n; i++ {
		e := new(tree.Entry)
		var err error
		r, err = wire.DecodeEntryLocal(r, prev, e)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrCorruptManifest, i, err)
		}
		if prev != nil && tree.Compare(prev.Path, e.Path) >= 0 {
			return nil, fmt.Errorf("%w: entry %q out of order", ErrCorruptManifest, e.Path)
		}
		m.Entries = append(m.Entries, e)
		prev = e
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorruptManifest, len(r))
	}
	return m, nil
}
