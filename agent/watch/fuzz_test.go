package watch

import (
	"encoding/binary"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzJournalDecode from real journals")

// FuzzJournalDecode: the decoder never panics on any bytes, never claims
// more than it read, and whatever state it accepts survives a snapshot
// round trip unchanged.
func FuzzJournalDecode(f *testing.F) {
	for _, seed := range seedLogs(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data)
		// The same bytes with every checksum made right, so that mutations
		// reach the record decoder and the state machine.
		checkDecode(t, reframe(data))
	})
}

// reframe rewrites a log's header and record checksums, keeping its bytes.
func reframe(data []byte) []byte {
	if len(data) < headerLen {
		return data
	}
	var epoch [16]byte
	copy(epoch[:], data[len(magic):])
	out := encodeHeader(epoch)
	rest := data[headerLen:]
	for len(rest) >= 4 {
		n := int(binary.LittleEndian.Uint32(rest))
		rest = rest[4:]
		if n > len(rest) || n > maxRecord {
			n = len(rest)
		}
		if n == 0 {
			break
		}
		out = frame(out, rest[:n])
		rest = rest[n:]
		rest = rest[min(4, len(rest)):]
	}
	return out
}

func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	s, n, err := decodeLog(data)
	if s == nil {
		if err == nil || n != 0 {
			t.Fatalf("no state: n=%d err=%v", n, err)
		}
		return
	}
	if n > len(data) || (err == nil && n != len(data)) {
		t.Fatalf("decoded %d of %d bytes, err=%v", n, len(data), err)
	}
	s.changes(0)
	s.changes(s.cur)
	snap := s.encodeSnapshot()
	s2, n2, err := decodeLog(snap)
	if err != nil || n2 != len(snap) {
		t.Fatalf("snapshot does not decode: %v (%d of %d bytes)", err, n2, len(snap))
	}
	if diff := cmp.Diff(stateView(s), stateView(s2)); diff != "" {
		t.Fatalf("snapshot round trip (-want +got):\n%s", diff)
	}
	s.prune()
	if _, _, err := decodeLog(s.encodeSnapshot()); err != nil {
		t.Fatalf("pruned snapshot does not decode: %v", err)
	}
}

// stateView is the comparable content of a state.
func stateView(s *state) map[string]any {
	entries := map[string]string{}
	for p, e := range s.entries {
		entries[p] = fmt.Sprint(e.self, "/", e.tree)
	}
	return map[string]any{
		"epoch": fmt.Sprintf("%x", s.epoch), "cur": s.cur, "sealed": s.sealed, "floor": s.floor,
		"fullGen": s.fullGen, "fullReason": s.fullReason, "acks": maps.Clone(s.acks),
		"volatile": slices.Clone(s.volatile), "barriers": slices.Clone(s.barriers), "entries": entries,
	}
}

// seedLogs builds journals through the public API (and the watcher's
// internal records) and returns their logs. With -update-seeds they are
// also written to the seed corpus.
func seedLogs(tb testing.TB) [][]byte {
	type build func(j *Journal) error
	builds := []build{
		func(j *Journal) error { return nil }, // a new journal
		func(j *Journal) error {
			j.Token()
			j.MarkDirty(DirtyPath{Path: "etc/passwd"}, DirtyPath{Path: "usr/share/doc/dstat", Tree: true}, DirtyPath{Path: "."})
			tok, _ := j.Token()
			j.Ack("server-a", tok)
			j.MarkDirty(DirtyPath{Path: "var/log/yum.log"})
			j.Flush()
			j.recordBarrier("0123456789abcdef0123456789abcdef")
			j.Ack("server-b", tok)
			j.Forget("server-a")
			return j.MarkFullRescan("overflow")
		},
		func(j *Journal) error {
			j.startWatch([]string{"dev/pts", "dev/mqueue"}, StartReason)
			j.stopWatch()
			for i := range 20 {
				j.MarkDirty(DirtyPath{Path: "usr/lib/f" + strconv.Itoa(i)}, DirtyPath{Path: "opt/d" + strconv.Itoa(i%3), Tree: i%2 == 0})
				j.Token()
			}
			tok, _ := j.Token()
			j.Ack("a", tok)
			return j.compactNow()
		},
	}
	var out [][]byte
	for i, b := range builds {
		dir := tb.TempDir()
		j, err := OpenJournal(dir, manual())
		if err != nil {
			tb.Fatal(err)
		}
		if err := b(j); err != nil {
			tb.Fatal(err)
		}
		if err := j.Close(); err != nil {
			tb.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, logName))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data, data[:len(data)-5])
		if *updateSeeds {
			writeSeed(tb, fmt.Sprintf("journal-%d", i), data)
			writeSeed(tb, fmt.Sprintf("journal-%d-torn", i), data[:len(data)-5])
		}
	}
	return out
}

func writeSeed(tb testing.TB, name string, data []byte) {
	dir := filepath.Join("testdata", "fuzz", "FuzzJournalDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestSeedLogsDecode: the seeds are real, readable journals.
func TestSeedLogsDecode(t *testing.T) {
	for i, data := range seedLogs(t) {
		_, _, err := decodeLog(data)
		if torn := i%2 == 1; (err != nil) != torn {
			t.Errorf("seed %d: err %v, torn %v", i, err, torn)
		}
	}
}
