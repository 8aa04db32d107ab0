package exclude

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// The oracle tests run stock rsync over a generated tree with each pattern
// set and check that the paths it would transfer are exactly those a
// top-down walk keeps with the Matcher.

// oracleTree lists the tree the oracle runs over: a trailing '/' makes a
// directory, "name -> target" a symlink, the rest are empty files. Parents
// are created as needed.
var oracleTree = []string{
	"proc/1/status", "proc/1/task/1/", "proc/self -> 1", "proc/.hidden", "proc/cpuinfo",
	"sys/kernel/mm/", "sys/file", "var/proc/1/x", "procfile",
	"var/cache/yum/keep", "var/cache/yum/other/pkg.rpm", "var/cache/man/index.db",
	"var/cachefiles/x", "var/log/messages", "var/log/old.gz", "var/log/sub/deep.gz",
	"var/log/messages.1", "var/tmp/", "var/run/lock/", "var/lock", "x/var/a/b/lock",
	"etc/foo.conf", "etc/foo.conf.rpmnew", "etc/sub/bar.rpmnew", "etc/sub/deep/x.rpmnew",
	"x.rpmnew", "etc/rpmnew", ".rpmnew", "etc/dir.rpmnew/inner", "etc/fstab", "etc/sub/fstab",
	"etc/a.rpmsave", "etc/.conf", "etc/sub/a.conf",
	"tmp/junk", "tmp2/", "home/u/tmp", "home/u/tmp2/", "home/u/.cache/f", "home/v/.cache",
	"home/u/core", "home/u/xcore", "core", "srv/tmp -> /var/tmp", "srv/data/tmp/f",
	"lost+found/", "m/lost+found", "lost+found2/",
	"with space/file name", "with  space", "br[ack]ets", "brackets", "[abc]", "a", "b", "c", "]", "-", "[",
	":", "l", "xq", "qq", "star*name", "star*", "q?mark", "q?", `back\slash`, "backslash", `\`,
	"\xff\xfe", "caf\xe9", "cafe", "\x80dir/inner", "a\xffb", "n\nl", "tab\there", `q\#123`,
	"cache/yum/cache/yum/f", "x/y/cache/yum", "log/a.gz", "x/log/b.gz", "x/y/log/c.gz",
	"foo.bak", "d/foo.bak", "foo/", "m/foobar/", "m/foo/b", "m/xfoo", "ab/bc", "x/ab/bc", "ab/bcd",
	"dir/x", "sub/dir/y", "dirx/", "1abc", "Abc", "_x", "-dash", "- w", "+ plus", "+y", "-x",
	"#hash", "!bang", "!z", "!", " two", "two", "core.123", "core.x",
	"usr/lib/python3/__pycache__/m.pyc", "__pycache__/", "Thumbs.db", "thumbs.db",
	"home/u/.#lock", "home/u/notes~", "run/fifo|", "dev/null|",
}

// oracleSets are the pattern sets checked against rsync; each needs at
// least one path it excludes and, for most, one a near miss keeps.
var oracleSets = [][]string{
	{"/proc/*", "/sys/*"}, // the seed's
	{"*.rpmnew", "*.rpmsave", "lost+found"},
	{"tmp/", "/var/cache/**"},
	{"+ /var/cache/yum/keep", "- /var/cache/**"},
	{"+ /var/cache/yum/", "+ /var/cache/yum/keep", "- /var/cache/**"},
	{"cache/yum", "log/*.gz", "a*/b?", "/etc/fstab", "u/.cache/"},
	{"**/core", "**.bak", "var/**/lock", "/home/***", "dir/***", "foo**"},
	{"[abc]*", "[!a-m]*.gz", "[[:digit:]]*", "[[:upper:]]*", `*\**`, `\[*\]`, "[]]", "[a-]", "[[:al]", "[^q]q"},
	{`back\slash`, `q\?*`, `\`, "with space", "with  space/", "n\nl", `q\#123`, "tab\t*"},
	{"caf\xe9", "*\xff*", "[\x80-\xff]*", "?\xfe"},
	{"+ *.conf", "- /etc/*", "+ /home/", "- /home/*/.cache/", "- /home/*/tmp*"},
	{"*.o", "!", "lost+found*", "!z", "- !bang", "-x", "+y", "- - w", "+  plus", "-  two"},
	{"/*", "+ /etc/"},
	{"+ */", "+ *.rpmnew", "- *"},
	{"/proc/", "sys", "/srv/tmp/", "/srv/tmp", "data/tmp/"},
	{"/", "//", "*/", "/**/", "***"},
	{"core.[0-9]*", ".#*", "*~", "[Tt]humbs.db", "**/__pycache__/", "/run/*", "/dev/*"},
}

func TestOracleRsync(t *testing.T) {
	rsync := needRsync(t)
	src := t.TempDir()
	buildOracleTree(t, src)
	all := rsyncTransfers(t, rsync, src, nil)
	for i, set := range oracleSets {
		t.Run(fmt.Sprintf("set%02d", i), func(t *testing.T) {
			kept := checkAgainstRsync(t, rsync, src, set)
			if len(kept) == len(all) {
				t.Errorf("patterns %q exclude nothing from the tree: a vacuous check", set)
			}
		})
	}
}

// TestOracleRsyncRandom checks random pattern sets built from pieces of the
// tree's names. GOLDSYNC_ORACLE_RANDOM sets how many (default 12).
func TestOracleRsyncRandom(t *testing.T) {
	rsync := needRsync(t)
	n := 12
	if s := os.Getenv("GOLDSYNC_ORACLE_RANDOM"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("GOLDSYNC_ORACLE_RANDOM=%q: %v", s, err)
		}
	}
	src := t.TempDir()
	buildOracleTree(t, src)
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	for i := 0; i < n; i++ {
		set := randomPatternSet(rng)
		if _, err := New(set); err != nil {
			t.Fatalf("generated set %q: %v", set, err)
		}
		checkAgainstRsync(t, rsync, src, set)
		if t.Failed() {
			return // one clear failure is enough
		}
	}
}

var patternPieces = []string{
	"proc", "var", "cache", "yum", "tmp", "log", "etc", "home", "u", "a", "b", "foo", "core", "dir",
	"*", "*", "**", "***", "?", "/", "/", "/", ".", "[a-c]", "[!x]", "[[:digit:]]", ".rpmnew", ".gz",
	`\*`, `\?`, " ", "\xff", "x", "1",
}

func randomPatternSet(rng *rand.Rand) []string {
	set := make([]string, 1+rng.IntN(4))
	for i := range set {
		var b strings.Builder
		switch rng.IntN(4) {
		case 0:
			b.WriteString("+ ")
		case 1:
			b.WriteString("- ")
		}
		if rng.IntN(3) == 0 {
			b.WriteByte('/')
		}
		for n := 1 + rng.IntN(4); n > 0; n-- {
			b.WriteString(patternPieces[rng.IntN(len(patternPieces))])
		}
		if rng.IntN(4) == 0 {
			b.WriteByte('/')
		}
		set[i] = b.String()
	}
	return set
}

func needRsync(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("rsync")
	if err != nil {
		t.Skip("SKIPPING the rsync oracle: rsync is not installed (apt-get install rsync)")
	}
	return p
}

func buildOracleTree(t *testing.T, root string) {
	t.Helper()
	for _, e := range oracleTree {
		var err error
		switch {
		case strings.Contains(e, " -> "):
			name, target, _ := strings.Cut(e, " -> ")
			p := filepath.Join(root, name)
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.Symlink(target, p)
			}
		case strings.HasSuffix(e, "/"):
			err = os.MkdirAll(filepath.Join(root, e), 0o755)
		case strings.HasSuffix(e, "|"):
			p := filepath.Join(root, strings.TrimSuffix(e, "|"))
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = syscall.Mkfifo(p, 0o644)
			}
		default:
			p := filepath.Join(root, e)
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.WriteFile(p, nil, 0o644)
			}
		}
		if err != nil {
			t.Fatalf("build oracle tree: %v", err)
		}
	}
}

// checkAgainstRsync compares what rsync would transfer from src with set
// against a top-down walk of src with the Matcher.
// It returns what rsync transfers.
func checkAgainstRsync(t *testing.T, rsync, src string, set []string) []string {
	t.Helper()
	m, err := New(set)
	if err != nil {
		t.Fatalf("New(%q): %v", set, err)
	}
	want := rsyncTransfers(t, rsync, src, set)
	got := walkKept(t, m, src)
	if slices.Equal(got, want) {
		return want
	}
	var diff strings.Builder
	for _, p := range want {
		if _, found := slices.BinarySearch(got, p); !found {
			fmt.Fprintf(&diff, "\n  -%q (rsync transfers it, the Matcher excludes it)", p)
		}
	}
	for _, p := range got {
		if _, found := slices.BinarySearch(want, p); !found {
			fmt.Fprintf(&diff, "\n  +%q (the Matcher keeps it, rsync does not transfer it)", p)
		}
	}
	t.Errorf("patterns %q: transferred paths differ (-rsync +matcher):%s", set, diff.String())
	return want
}

// rsyncTransfers runs a dry run of rsync -a from src into an empty
// directory and returns the paths it lists, directories with a trailing
// '/', sorted.
func rsyncTransfers(t *testing.T, rsync, src string, set []string) []string {
	t.Helper()
	args := []string{"-an", "--itemize-changes", "--out-format=%n"}
	for _, p := range set {
		if strings.HasPrefix(p, "- ") || strings.HasPrefix(p, "+ ") || p == "!" {
			args = append(args, "--filter="+p)
		} else {
			args = append(args, "--exclude="+p)
		}
	}
	args = append(args, src+"/", t.TempDir()+"/")
	cmd := exec.Command(rsync, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rsync %q: %v: %s", args, err, stderr.Bytes())
	}
	var paths []string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" || line == "./" {
			continue
		}
		paths = append(paths, unescapeRsync(line))
	}
	slices.Sort(paths)
	return paths
}

// unescapeRsync undoes rsync's escaping of unprintable bytes as \#ooo in
// its output (a literal backslash before "#ddd" is itself escaped).
func unescapeRsync(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+5 <= len(s) && s[i+1] == '#' {
			if n, err := strconv.ParseUint(s[i+2:i+5], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 4
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// walkKept walks root top-down the way the imaging walker does: a path is
// kept unless it is excluded, and an excluded directory is not entered.
// It returns the kept paths, directories with a trailing '/', sorted.
func walkKept(t *testing.T, m *Matcher, root string) []string {
	t.Helper()
	var kept []string
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
		for _, e := range ents {
			p := tree.Join(dir, e.Name())
			isDir := e.IsDir() // lstat type: a symlink to a directory is not one
			if m.Excluded(p, isDir) {
				continue
			}
			if isDir {
				kept = append(kept, p+"/")
				walk(p)
			} else {
				kept = append(kept, p)
			}
		}
	}
	walk(tree.Root)
	slices.Sort(kept)
	return kept
}
