package exclude

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// probe is one question to a Matcher.
type probe struct {
	path  string
	isDir bool
	want  bool // excluded
}

func file(p string, excluded bool) probe { return probe{path: p, want: excluded} }
func dir(p string, excluded bool) probe  { return probe{path: p, isDir: true, want: excluded} }

func TestExcluded(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		probes   []probe
	}{
		{
			name:     "seed proc and sys",
			patterns: []string{"/proc/*", "/sys/*"},
			probes: []probe{
				dir("proc", false), dir("proc/1", true), file("proc/cpuinfo", true),
				dir("sys", false), dir("sys/kernel", true),
				dir("var/proc", false), dir("var/proc/1", false), file("procfile", false),
				dir("proc/1/task", false), // never asked by a walker: proc/1 is excluded
			},
		},
		{
			name:     "unanchored name pattern at any depth",
			patterns: []string{"*.rpmnew"},
			probes: []probe{
				file("x.rpmnew", true), file("etc/x.rpmnew", true), file("etc/a/b/c.rpmnew", true),
				dir("etc/d.rpmnew", true), file(".rpmnew", true),
				file("etc/x.rpmnew.bak", false), file("etc/rpmnew", false), dir("a.rpmnew/b", false),
			},
		},
		{
			name:     "star does not cross slash",
			patterns: []string{"/etc/*.conf"},
			probes: []probe{
				file("etc/a.conf", true), file("etc/sub/a.conf", false), file("etc/.conf", true),
				file("a.conf", false),
			},
		},
		{
			name:     "double star crosses slash but not the dir itself",
			patterns: []string{"/var/cache/**"},
			probes: []probe{
				dir("var/cache", false), dir("var/cache/yum", true), file("var/cache/yum/x/y", true),
				dir("var/cachex", false), dir("a/var/cache/yum", false),
			},
		},
		{
			name:     "triple star suffix matches the dir too",
			patterns: []string{"/home/***"},
			probes: []probe{
				dir("home", true), file("home", false), dir("home/u", true), file("home/u/f", true),
				dir("homes", false),
			},
		},
		{
			name:     "trailing slash matches directories only",
			patterns: []string{"tmp/"},
			probes: []probe{
				dir("tmp", true), dir("var/tmp", true), file("home/u/tmp", false), file("tmp", false),
				dir("tmp2", false),
			},
		},
		{
			name:     "literal name",
			patterns: []string{"lost+found"},
			probes: []probe{
				dir("lost+found", true), file("a/b/lost+found", true), dir("lost+found2", false),
				dir("lost", false),
			},
		},
		{
			name:     "unanchored inner slash matches trailing components",
			patterns: []string{"cache/yum", "log/*.gz"},
			probes: []probe{
				dir("cache/yum", true), dir("var/cache/yum", true), dir("x/var/cache/yum", true),
				file("var/cache/yum/keep", false), dir("var/xcache/yum", false),
				file("var/log/a.gz", true), file("log/b.gz", true), file("var/log/sub/c.gz", false),
			},
		},
		{
			name:     "anchored literal with inner slash",
			patterns: []string{"/etc/fstab"},
			probes:   []probe{file("etc/fstab", true), file("x/etc/fstab", false), file("etc/fstab2", false)},
		},
		{
			name:     "leading double star",
			patterns: []string{"**/core"},
			probes: []probe{
				file("core", true), file("a/core", true), file("a/b/core", true), file("a/xcore", false),
			},
		},
		{
			name:     "inner double star is unanchored",
			patterns: []string{"var/**/lock"},
			probes: []probe{
				file("var/run/lock", true), file("x/var/a/b/lock", true), file("var/lock", false),
			},
		},
		{
			name:     "double star without slash matches the whole path",
			patterns: []string{"foo**"},
			probes: []probe{
				dir("foo", true), dir("a/foobar", true), file("a/foo/b", true), file("a/xfoo", false),
			},
		},
		{
			name:     "question mark and classes",
			patterns: []string{"?.log", "[abc]x", "[!a-y]z", "[[:digit:]][[:upper:]]"},
			probes: []probe{
				file("a.log", true), file("ab.log", false),
				file("bx", true), file("dx", false),
				file("zz", true), file("bz", false), file("\xffz", true),
				file("1A", true), file("1a", false), file("AA", false),
			},
		},
		{
			name:     "class quirks as in rsync",
			patterns: []string{"[]]", "[a-]", "[[:al]", "[^q]q"},
			probes: []probe{
				file("]", true), file("-", true), file("a", true), file("[", true), file(":", true),
				file("l", true), file("xq", true), file("qq", false), file("b", false),
			},
		},
		{
			name:     "backslash escapes only in wildcard patterns",
			patterns: []string{`star\*`, `back\slash`, `q\?*`},
			probes: []probe{
				file("star*", true), file("starx", false),
				file(`back\slash`, true), file("backslash", false),
				file("q?", true), file("q?rest", true), file("qx", false),
			},
		},
		{
			name:     "non-UTF-8 names",
			patterns: []string{"caf\xe9", "*\xff*"},
			probes: []probe{
				file("caf\xe9", true), file("d/caf\xe9", true), file("cafe", false),
				file("a\xffb", true), file("ab", false),
			},
		},
		{
			name:     "spaces and brackets",
			patterns: []string{"with space", `br\[ack\]*`},
			probes: []probe{
				dir("with space", true), file("with  space", false),
				file("br[ack]ets", true), file("brackets", false),
			},
		},
		{
			name:     "first match wins",
			patterns: []string{"+ /var/cache/yum/", "+ /var/cache/yum/keep", "- /var/cache/**"},
			probes: []probe{
				dir("var/cache", false), dir("var/cache/yum", false), file("var/cache/yum/keep", false),
				file("var/cache/yum/other", true), dir("var/cache/man", true),
			},
		},
		{
			name:     "include alone cannot reach into an excluded dir",
			patterns: []string{"+ /var/cache/yum/keep", "- /var/cache/**"},
			probes: []probe{
				dir("var/cache/yum", true), // so keep is never visited
				file("var/cache/yum/keep", false),
			},
		},
		{
			name:     "clear rule forgets earlier rules",
			patterns: []string{"*.o", "!", "*.a"},
			probes:   []probe{file("x.o", false), file("x.a", true)},
		},
		{
			name:     "prefix needs exactly one space",
			patterns: []string{"-x", "+y", "!z", "- - w"},
			probes: []probe{
				file("-x", true), file("x", false), file("+y", true), file("y", false),
				file("!z", true), file("- w", true),
			},
		},
		{
			name:     "leading spaces after the prefix belong to the pattern",
			patterns: []string{"-  two"},
			probes:   []probe{file(" two", true), file("two", false)},
		},
		{
			name:     "root is never excluded",
			patterns: []string{"*", "**", "/***"},
			probes:   []probe{dir(".", false), dir("a", true)},
		},
		{
			name:     "a lone slash matches nothing",
			patterns: []string{"/", "//"},
			probes:   []probe{dir("a", false), file("a", false)},
		},
		{
			name:     "no patterns",
			patterns: nil,
			probes:   []probe{dir("proc", false), file("a/b", false)},
		},
		{
			name:     "long pattern takes the multi-word path",
			patterns: []string{"/" + strings.Repeat("a/", 40) + "*" + strings.Repeat("?", 30)},
			probes: []probe{
				file(strings.Repeat("a/", 40)+strings.Repeat("x", 30), true),
				file(strings.Repeat("a/", 40)+strings.Repeat("x", 29), false),
				file(strings.Repeat("a/", 40)+"yy"+strings.Repeat("x", 30), true),
			},
		},
		{
			name:     "long anywhere pattern",
			patterns: []string{strings.Repeat("d?/", 30) + "**/end"},
			probes: []probe{
				file("top/"+strings.Repeat("d1/", 30)+"x/end", true),
				file(strings.Repeat("d1/", 30)+"end", false),
				file(strings.Repeat("d1/", 29)+"x/end", false),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(tc.patterns)
			if err != nil {
				t.Fatalf("New(%q): %v", tc.patterns, err)
			}
			for _, p := range tc.probes {
				if got := m.Excluded(p.path, p.isDir); got != p.want {
					t.Errorf("Excluded(%q, dir=%v) = %v, want %v", p.path, p.isDir, got, p.want)
				}
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    string // in the message
	}{
		{name: "unterminated class", pattern: "foo[abc", want: "unterminated"},
		{name: "unterminated negated class", pattern: "[!]", want: "unterminated"},
		{name: "unterminated named class", pattern: "[[:alpha:]", want: "unterminated"},
		{name: "escape at class end", pattern: `[a\`, want: "unterminated"},
		{name: "unknown named class", pattern: "[[:vowel:]]", want: "unknown character class [:vowel:]"},
		{name: "empty named class", pattern: "[[::]]", want: "unknown character class"},
		{name: "trailing backslash", pattern: `*.bak\`, want: "trailing backslash"},
		{name: "trailing backslash before dir slash", pattern: `*\/`, want: "trailing backslash"},
		{name: "empty", pattern: "", want: "empty pattern"},
		{name: "empty after prefix", pattern: "- ", want: "empty pattern"},
		{name: "NUL", pattern: "a\x00b", want: "NUL"},
		{name: "too long", pattern: strings.Repeat("x", maxPatternLen+1), want: "longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]string{"ok", tc.pattern})
			if err == nil {
				t.Fatalf("New(%q) succeeded, want an error", tc.pattern)
			}
			var pe *PatternError
			if !errors.As(err, &pe) || pe.Index != 1 || pe.Pattern != tc.pattern {
				t.Fatalf("error %v is not a PatternError for pattern 1 %q", err, tc.pattern)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if name := fmt.Sprintf("%q", tc.pattern); len(tc.pattern) < 80 && !strings.Contains(msg, name) {
				t.Errorf("error %q does not name the pattern %s", msg, name)
			}
		})
	}
}

func TestNilMatcher(t *testing.T) {
	var m *Matcher
	if m.Excluded("proc/1", true) {
		t.Error("nil Matcher excluded a path")
	}
	if got := m.Patterns(); got != nil {
		t.Errorf("nil Matcher Patterns() = %q, want nil", got)
	}
}

func TestPatternsIsACopy(t *testing.T) {
	in := []string{"/proc/*", "+ keep", "!", "x"}
	m, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	in[0] = "changed"
	got := m.Patterns()
	want := []string{"/proc/*", "+ keep", "!", "x"}
	if !slices.Equal(got, want) {
		t.Fatalf("Patterns() = %q, want %q", got, want)
	}
	got[1] = "changed"
	if m.Patterns()[1] != "+ keep" {
		t.Error("Patterns() shares its slice with the Matcher")
	}
}

func TestExcludedDoesNotAllocate(t *testing.T) {
	m, err := New(benchPatterns)
	if err != nil {
		t.Fatal(err)
	}
	paths := benchPaths()
	allocs := testing.AllocsPerRun(10, func() {
		for _, p := range paths {
			m.Excluded(p.path, p.isDir)
		}
	})
	if allocs != 0 {
		t.Errorf("Excluded allocated %v times per run of %d paths, want 0", allocs, len(paths))
	}
}

// benchPatterns is a realistic list for an image of a golden node.
var benchPatterns = []string{
	"/proc/*", "/sys/*", "/dev/*", "/run/*", "/tmp/*", "/mnt/*", "/media/*",
	"lost+found", "*.rpmnew", "*.rpmsave", "*~", ".#*", "core.[0-9]*",
	"+ /var/cache/yum/", "- /var/cache/**", "/var/log/*.gz", "/var/log/**/*.[0-9]",
	"tmp/", "/home/*/.cache/", "**/__pycache__/", "[Tt]humbs.db",
}

// benchPaths is a synthetic tree shaped like a root filesystem.
func benchPaths() []probe {
	var ps []probe
	tops := []string{"usr", "etc", "var", "home", "opt", "proc", "var/cache", "var/log", "usr/lib/python3/site-packages"}
	for _, top := range tops {
		for i := 0; i < 40; i++ {
			d := fmt.Sprintf("%s/dir%02d", top, i)
			ps = append(ps, probe{path: d, isDir: true})
			for j := 0; j < 6; j++ {
				ps = append(ps, probe{path: fmt.Sprintf("%s/sub%d/file-%d.%s", d, j, i*j, []string{"so", "conf", "py", "rpmnew", "gz", "h"}[j])})
			}
		}
	}
	return ps
}

func BenchmarkExcluded(b *testing.B) {
	m, err := New(benchPatterns)
	if err != nil {
		b.Fatal(err)
	}
	paths := benchPaths()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		p := paths[i%len(paths)]
		if m.Excluded(p.path, p.isDir) {
			n++
		}
	}
	_ = n
}
