package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/imaging/tree"
)

func openTest(t *testing.T, dir string, opts JournalOptions) *Journal {
	t.Helper()
	j, err := OpenJournal(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func manual() JournalOptions { return JournalOptions{NoWatcher: true} }

func mark(t *testing.T, j *Journal, specs ...string) {
	t.Helper()
	var ps []DirtyPath
	for _, s := range specs {
		p, isTree := strings.CutSuffix(s, "/**")
		ps = append(ps, DirtyPath{Path: p, Tree: isTree})
	}
	if err := j.MarkDirty(ps...); err != nil {
		t.Fatal(err)
	}
}

func token(t *testing.T, j *Journal) string {
	t.Helper()
	tok, err := j.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// scopes writes scopes compactly: "a" for the entry, "a/**" for the tree.
func scopes(ss []tree.Scope) []string {
	out := []string{}
	for _, s := range ss {
		if s.Tree {
			out = append(out, s.Path+"/**")
		} else {
			out = append(out, s.Path)
		}
	}
	return out
}

func since(t *testing.T, j *Journal, tok string) ChangeSet {
	t.Helper()
	cs, err := j.Since(tok)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func wantChanges(t *testing.T, cs ChangeSet, want ...string) {
	t.Helper()
	if cs.Full {
		t.Fatalf("Since: Full (%s), want scopes %q", cs.Reason, want)
	}
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, scopes(cs.Scopes)); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
}

func wantFull(t *testing.T, cs ChangeSet, reason string) {
	t.Helper()
	if !cs.Full {
		t.Fatalf("Since: scopes %q, want Full (%s)", scopes(cs.Scopes), reason)
	}
	if !strings.Contains(cs.Reason, reason) {
		t.Errorf("Full reason %q, want it to mention %q", cs.Reason, reason)
	}
	if diff := cmp.Diff(tree.FullScope, cs.Scopes); diff != "" {
		t.Errorf("Full scopes (-want +got):\n%s", diff)
	}
}

// TestSinceCoalesces: marks between two tokens come back sorted, minimal,
// and each token sees exactly the marks after it.
func TestSinceCoalesces(t *testing.T) {
	tests := []struct {
		name string
		// steps: each step marks paths ("p/**" for a Tree mark), then
		// takes a token.
		steps [][]string
		// want[i] is Since(token of step i) after the last step.
		want [][]string
	}{
		{
			name:  "sorted, duplicates merged",
			steps: [][]string{{}, {"b", "a/x", "a", "a/x", "a.txt"}},
			want:  [][]string{{"a", "a/x", "a.txt", "b"}, {}},
		},
		{
			name:  "tree swallows its subtree, before and after",
			steps: [][]string{{}, {"d/x", "d/y/z", "d/**", "d/w", "e"}},
			want:  [][]string{{"d/**", "e"}, {}},
		},
		{
			name:  "entry and tree of the same path",
			steps: [][]string{{}, {"d", "d/**", "d"}},
			want:  [][]string{{"d/**"}, {}},
		},
		{
			name:  "a later mark beneath an older tree is kept for newer tokens",
			steps: [][]string{{}, {"d/**"}, {"d/x"}, {}},
			want:  [][]string{{"d/**"}, {"d/x"}, {}, {}},
		},
		{
			name:  "an older mark beneath a newer tree is swallowed",
			steps: [][]string{{}, {"d/x"}, {"d/**"}},
			want:  [][]string{{"d/**"}, {"d/**"}, {}},
		},
		{
			name:  "entry then tree of the same path in later generations",
			steps: [][]string{{}, {"d"}, {"d/**"}, {"d"}},
			want:  [][]string{{"d/**"}, {"d/**"}, {"d"}, {}},
		},
		{
			name:  "root tree covers everything",
			steps: [][]string{{}, {"a", "b/**", ".", "./**"}},
			want:  [][]string{{"./**"}, {}},
		},
		{
			name:  "slash sorts before other bytes",
			steps: [][]string{{}, {"a-b", "a/b", "a"}},
			want:  [][]string{{"a", "a/b", "a-b"}, {}},
		},
		{
			name:  "sibling with a common prefix is not inside a tree",
			steps: [][]string{{}, {"ab", "a/**", "a/c"}},
			want:  [][]string{{"a/**", "ab"}, {}},
		},
		{
			name:  "nothing marked",
			steps: [][]string{{}, {}},
			want:  [][]string{{}, {}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := openTest(t, t.TempDir(), manual())
			var toks []string
			for _, s := range tc.steps {
				mark(t, j, s...)
				toks = append(toks, token(t, j))
			}
			for i, tok := range toks {
				wantChanges(t, since(t, j, tok), tc.want[i]...)
			}
		})
	}
}

// TestTokens: every token the journal cannot vouch for gives Full with a
// reason, and the answer carries a token that works.
func TestTokens(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir, manual())
	wantFull(t, since(t, j, ""), "no token")
	t0 := token(t, j)
	other := openTest(t, t.TempDir(), manual())
	foreign := token(t, other)
	epoch, gen, err := parseToken(t0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, reason string
	}{
		{name: "empty", token: "", reason: "no token"},
		{name: "garbage", token: "hello", reason: "malformed"},
		{name: "upper case epoch", token: strings.ToUpper(t0[:5]) + t0[5:], reason: "malformed"},
		{name: "leading zero", token: t0[:len(t0)-1] + "0" + t0[len(t0)-1:], reason: "malformed"},
		{name: "other journal", token: foreign, reason: "another journal"},
		{name: "ahead", token: formatToken(epoch, gen+1000), reason: "ahead"},
		{name: "new journal's first token", token: formatToken(epoch, 0), reason: "new journal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := since(t, j, tc.token)
			wantFull(t, cs, tc.reason)
			mark(t, j, "x")
			wantChanges(t, since(t, j, cs.Token), "x")
		})
	}
}

// TestPersist: marks and tokens survive Close and reopen, files are
// private, and a second Journal on the same directory (another process)
// sees the first one's marks.
func TestPersist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	j, err := OpenJournal(dir, manual())
	if err != nil {
		t.Fatal(err)
	}
	t0 := token(t, j)
	mark(t, j, "etc/passwd", "usr/share/doc/dstat/**")
	t1 := token(t, j)
	mark(t, j, "var/log/yum.log")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Since(t0); !errors.Is(err, ErrClosed) {
		t.Errorf("Since after Close: %v, want ErrClosed", err)
	}

	for _, name := range []string{"", logName, lockName} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if name == "" {
			want = 0o700
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", filepath.Join(dir, name), got, want)
		}
	}

	j = openTest(t, dir, manual())
	wantChanges(t, since(t, j, t0), "etc/passwd", "usr/share/doc/dstat/**", "var/log/yum.log")
	wantChanges(t, since(t, j, t1), "var/log/yum.log")

	// A second handle on the same directory, as another process would.
	k := openTest(t, dir, manual())
	t2 := token(t, k)
	mark(t, j, "etc/hosts")
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	wantChanges(t, since(t, k, t2), "etc/hosts")
	mark(t, k, "etc/motd")
	t3 := token(t, k)
	wantChanges(t, since(t, j, t2), "etc/hosts", "etc/motd")
	wantChanges(t, since(t, j, t3))

	// One handle compacts (replaces the log file); the other notices.
	check(t, k.compactNow())
	mark(t, j, "etc/group")
	check(t, j.Flush())
	wantChanges(t, since(t, k, t3), "etc/group")
	mark(t, k, "etc/shadow")
	check(t, k.Flush())
	check(t, j.compactNow())
	wantChanges(t, since(t, k, t3), "etc/group", "etc/shadow")
	wantChanges(t, since(t, j, t0), "etc/group", "etc/hosts", "etc/motd", "etc/passwd", "etc/shadow", "usr/share/doc/dstat/**", "var/log/yum.log")
}

// TestPrivateDir: an existing state directory that others may enter is
// made private.
func TestPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, manual())
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(link, manual()); err == nil {
		t.Error("OpenJournal through a symlink: no error")
	}
}

// TestDamage: whatever happens to the log, a token from before answers Full
// with a reason, and the journal keeps working.
func TestDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, log string, good []byte)
		reason string
	}{
		{
			name: "torn last record",
			damage: func(t *testing.T, log string, good []byte) {
				os.WriteFile(log, good[:len(good)-3], 0o600)
			},
			reason: "damaged",
		},
		{
			name: "flipped byte in last record",
			damage: func(t *testing.T, log string, good []byte) {
				b := append([]byte(nil), good...)
				b[len(b)-6] ^= 0x40
				os.WriteFile(log, b, 0o600)
			},
			reason: "damaged",
		},
		{
			name: "garbage appended",
			damage: func(t *testing.T, log string, good []byte) {
				os.WriteFile(log, append(append([]byte(nil), good...), "\x07\x00\x00\x00garbage"...), 0o600)
			},
			reason: "damaged",
		},
		{
			name: "bad header",
			damage: func(t *testing.T, log string, good []byte) {
				b := append([]byte(nil), good...)
				b[3] = 'X'
				os.WriteFile(log, b, 0o600)
			},
			reason: "another journal",
		},
		{
			name: "empty file",
			damage: func(t *testing.T, log string, good []byte) {
				os.WriteFile(log, nil, 0o600)
			},
			reason: "unreadable",
		},
		{
			name: "deleted",
			damage: func(t *testing.T, log string, good []byte) {
				os.Remove(log)
			},
			reason: "another journal",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j, err := OpenJournal(dir, manual())
			if err != nil {
				t.Fatal(err)
			}
			t0 := token(t, j)
			mark(t, j, "a", "b/**")
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(dir, logName)
			good, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, log, good)

			j = openTest(t, dir, manual())
			cs := since(t, j, t0)
			wantFull(t, cs, tc.reason)
			mark(t, j, "c")
			wantChanges(t, since(t, j, cs.Token), "c")
		})
	}
}

// TestDamageSeenByOtherHandle: a handle that is already open notices a
// tail damaged behind its back.
func TestDamageSeenByOtherHandle(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir, manual())
	t0 := token(t, j)
	f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(frame(nil, encodeMarks(99, []DirtyPath{{Path: "x"}})))
	f.Close()
	wantFull(t, since(t, j, t0), "damaged")
}

// TestAckKeepsWhatOthersNeed: compaction drops only what every acknowledged
// destination has applied.
func TestAckKeepsWhatOthersNeed(t *testing.T) {
	dir := t.TempDir()
	opts := manual()
	opts.compactAt = 1 // compact whenever the log doubled
	j := openTest(t, dir, opts)
	tA := token(t, j)
	if err := j.Ack("serverA", tA); err != nil {
		t.Fatal(err)
	}
	mark(t, j, "etc/one")
	tB := token(t, j)
	if err := j.Ack("serverB", tB); err != nil {
		t.Fatal(err)
	}
	mark(t, j, "etc/two")
	tC := token(t, j)

	// Many marks make the log grow and compact.
	for i := range 50 {
		mark(t, j, fmt.Sprintf("var/cache/f%d", i))
		if err := j.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	tD := token(t, j)
	wantChanges(t, since(t, j, tA), "etc/one", "etc/two", "var/cache/f0", "var/cache/f1", "var/cache/f10", "var/cache/f11", "var/cache/f12", "var/cache/f13", "var/cache/f14", "var/cache/f15", "var/cache/f16", "var/cache/f17", "var/cache/f18", "var/cache/f19", "var/cache/f2", "var/cache/f20", "var/cache/f21", "var/cache/f22", "var/cache/f23", "var/cache/f24", "var/cache/f25", "var/cache/f26", "var/cache/f27", "var/cache/f28", "var/cache/f29", "var/cache/f3", "var/cache/f30", "var/cache/f31", "var/cache/f32", "var/cache/f33", "var/cache/f34", "var/cache/f35", "var/cache/f36", "var/cache/f37", "var/cache/f38", "var/cache/f39", "var/cache/f4", "var/cache/f40", "var/cache/f41", "var/cache/f42", "var/cache/f43", "var/cache/f44", "var/cache/f45", "var/cache/f46", "var/cache/f47", "var/cache/f48", "var/cache/f49", "var/cache/f5", "var/cache/f6", "var/cache/f7", "var/cache/f8", "var/cache/f9")

	// A acknowledges up to D: B still needs everything after tB.
	if err := j.Ack("serverA", tD); err != nil {
		t.Fatal(err)
	}
	if err := j.compactNow(); err != nil {
		t.Fatal(err)
	}
	if got := len(j.st.entries); got != 51 {
		t.Errorf("entries after A's ack: %d, want 51 (B still needs them)", got)
	}
	got := since(t, j, tB)
	if got.Full || len(got.Scopes) != 51 || got.Scopes[0].Path != "etc/two" {
		t.Errorf("Since(tB) = full %v, %d scopes, want etc/two and 50 more", got.Full, len(got.Scopes))
	}
	wantFull(t, since(t, j, tA), "older than")

	// B catches up: nothing is needed any more.
	if err := j.Ack("serverB", tC); err != nil {
		t.Fatal(err)
	}
	if err := j.Ack("serverB", tD); err != nil {
		t.Fatal(err)
	}
	if got := len(j.st.entries); got != 0 {
		t.Errorf("entries after both acks: %d, want 0", got)
	}
	wantChanges(t, since(t, j, tD))
	wantFull(t, since(t, j, tC), "older than")

	// The acknowledgements survive a restart.
	j.Close()
	j = openTest(t, dir, manual())
	dests, err := j.Destinations()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"serverA": tD, "serverB": tD}, dests); diff != "" {
		t.Errorf("destinations (-want +got):\n%s", diff)
	}
	if err := j.Forget("serverA"); err != nil {
		t.Fatal(err)
	}
	dests, _ = j.Destinations()
	if _, ok := dests["serverA"]; ok {
		t.Error("serverA still listed after Forget")
	}
}

// TestAckErrors: acknowledging a token the journal never handed out fails.
func TestAckErrors(t *testing.T) {
	j := openTest(t, t.TempDir(), manual())
	other := openTest(t, t.TempDir(), manual())
	tok := token(t, j)
	epoch, gen, _ := parseToken(tok)
	tests := []struct{ name, dest, token string }{
		{name: "empty destination", dest: "", token: tok},
		{name: "malformed", dest: "a", token: "x"},
		{name: "foreign", dest: "a", token: token(t, other)},
		{name: "ahead", dest: "a", token: formatToken(epoch, gen+1)},
		{name: "zero", dest: "a", token: formatToken(epoch, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := j.Ack(tc.dest, tc.token); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestMaxEntries: past the bound the journal gives up naming paths and
// records a full rescan instead.
func TestMaxEntries(t *testing.T) {
	opts := manual()
	opts.MaxEntries = 10
	j := openTest(t, t.TempDir(), opts)
	t0 := token(t, j)
	for i := range 11 {
		mark(t, j, fmt.Sprintf("f%02d", i))
	}
	cs := since(t, j, t0)
	wantFull(t, cs, "more than 10")
	mark(t, j, "g")
	wantChanges(t, since(t, j, cs.Token), "g")
}

// TestMarkFullRescan: a full mark answers Full to every older token only.
func TestMarkFullRescan(t *testing.T) {
	j := openTest(t, t.TempDir(), manual())
	t0 := token(t, j)
	mark(t, j, "a")
	if err := j.MarkFullRescan("lost events"); err != nil {
		t.Fatal(err)
	}
	t1 := token(t, j)
	mark(t, j, "b")
	wantFull(t, since(t, j, t0), "lost events")
	wantChanges(t, since(t, j, t1), "b")
}

// TestNoWatcherIsFull: a journal that relies on a watcher answers Full while
// none runs, and Barrier says so.
func TestNoWatcherIsFull(t *testing.T) {
	j := openTest(t, t.TempDir(), JournalOptions{})
	t0 := token(t, j)
	mark(t, j, "a")
	wantFull(t, since(t, j, t0), "no watcher")
	if err := j.Barrier(t.Context()); !errors.Is(err, ErrNoWatcher) {
		t.Errorf("Barrier: %v, want ErrNoWatcher", err)
	}
}

// TestBadPaths: MarkDirty refuses paths that are not tree paths.
func TestBadPaths(t *testing.T) {
	j := openTest(t, t.TempDir(), manual())
	for _, p := range []string{"", "/etc", "a/../b", "a//b", "a/", "a\x00b"} {
		if err := j.MarkDirty(DirtyPath{Path: p}); err == nil {
			t.Errorf("MarkDirty(%q): no error", p)
		}
	}
}

// TestBurst: a hundred thousand marks, many repeated, in one generation.
func TestBurst(t *testing.T) {
	j := openTest(t, t.TempDir(), manual())
	t0 := token(t, j)
	const n = 100_000
	ps := make([]DirtyPath, 0, 1000)
	for i := range n {
		ps = append(ps, DirtyPath{Path: fmt.Sprintf("usr/lib/d%d/f%d", i%100, i%20_000)})
		if len(ps) == cap(ps) {
			if err := j.MarkDirty(ps...); err != nil {
				t.Fatal(err)
			}
			ps = ps[:0]
		}
	}
	mark(t, j, "usr/lib/d7/**")
	cs := since(t, j, t0)
	if cs.Full || len(cs.Scopes) != 20_000-200+1 {
		t.Errorf("Since: full %v (%s), %d scopes, want %d", cs.Full, cs.Reason, len(cs.Scopes), 20_000-200+1)
	}
}

func BenchmarkMarkDirty(b *testing.B) {
	j, err := OpenJournal(b.TempDir(), manual())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ps := make([]DirtyPath, 1000)
	for i := range ps {
		ps[i] = DirtyPath{Path: fmt.Sprintf("usr/share/locale/l%d/LC_MESSAGES/f%d.mo", i%50, i)}
	}
	b.ResetTimer()
	for range b.N {
		if err := j.MarkDirty(ps...); err != nil {
			b.Fatal(err)
		}
		if _, err := j.Token(); err != nil {
			b.Fatal(err)
		}
	}
}

// compactNow forces a compaction (tests only).
func (j *Journal) compactNow() error { return j.do(j.compact) }
