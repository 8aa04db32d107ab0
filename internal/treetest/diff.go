package treetest

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// DiffOptions relax or extend what Diff compares. The zero value compares
// every attribute of every path except allocation.
type DiffOptions struct {
	// IgnoreRootMtime skips the mtime of "." (a destination directory that
	// was created, not copied).
	IgnoreRootMtime bool
	// IgnoreDirMtime skips the mtime of every directory.
	IgnoreDirMtime bool
	// IgnorePaths, when set, is called with each path; the paths it accepts
	// are left out on both sides and from hard-link groups. It sees every
	// path, so to ignore a subtree it must accept the subtree's paths too.
	IgnorePaths func(string) bool
	// CheckSparse also checks that got keeps want's holes: a regular file
	// may not allocate more than want's blocks plus SparseSlack.
	CheckSparse bool
}

// SparseSlack is how many 512-byte blocks a copy of a regular file may
// allocate beyond the original under DiffOptions.CheckSparse: an eighth of
// the original's allocation plus 128 KiB, which absorbs filesystem
// rounding and metadata blocks but not a single filled hole of a sparse
// file.
func SparseSlack(want int64) int64 { return want/8 + 256 }

// Diff compares two manifests attribute by attribute and returns one
// human-readable line per difference, sorted by path, each of the form
// "path: what want != got": "a/b: missing" (in want only), "a/b: extra" (in
// got only), "a/b: type file != dir" (and nothing else for that path),
// "a/b: mode 04755 != 0755", "a/b: owner 0:0 != 4242:4343", "a/b: size 10 !=
// 0" (content is then not compared), "a/b: content sha256 12ab.. != 34cd..",
// "a/b: mtime ... != ...", "a/b: target x != y", "a/b: rdev 1:3 != 1:5",
// "a/b: xattr user.foo missing|extra|value ... != ...", "a/b: hard-link group
// [a/b c] != [a/b]" and, with CheckSparse, "a/b: blocks 2097160 > 40 + 261:
// holes not kept". Paths that are not printable UTF-8 are quoted. Nil means
// the trees are equal.
func Diff(want, got Manifest, opts DiffOptions) []string {
	ignore := func(p string) bool { return opts.IgnorePaths != nil && opts.IgnorePaths(p) }
	paths := want.Paths()
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var out []string
	for _, p := range paths {
		if ignore(p) {
			continue
		}
		w, wok := want[p]
		g, gok := got[p]
		switch {
		case !gok:
			out = append(out, showPath(p)+": missing")
		case !wok:
			out = append(out, showPath(p)+": extra")
		default:
			for _, d := range diffNode(p, &w, &g, opts, ignore) {
				out = append(out, showPath(p)+": "+d)
			}
		}
	}
	return out
}

func diffNode(p string, w, g *Node, opts DiffOptions, ignore func(string) bool) []string {
	if w.Type != g.Type {
		return []string{fmt.Sprintf("type %s != %s", w.Type, g.Type)}
	}
	var d []string
	add := func(format string, a ...any) { d = append(d, fmt.Sprintf(format, a...)) }
	if w.Mode != g.Mode {
		add("mode %#o != %#o", w.Mode, g.Mode)
	}
	if w.UID != g.UID || w.GID != g.GID {
		add("owner %d:%d != %d:%d", w.UID, w.GID, g.UID, g.GID)
	}
	if w.Size != g.Size {
		add("size %d != %d", w.Size, g.Size)
	} else if w.Hash != g.Hash {
		add("content sha256 %.12s != %.12s", w.Hash, g.Hash)
	}
	skipMtime := (opts.IgnoreRootMtime && p == ".") || (opts.IgnoreDirMtime && w.Type == TypeDir)
	if w.Mtime != g.Mtime && !skipMtime {
		add("mtime %s != %s", showTime(w.Mtime), showTime(g.Mtime))
	}
	if w.Target != g.Target {
		add("target %s != %s", showPath(w.Target), showPath(g.Target))
	}
	if w.Rdev != g.Rdev {
		add("rdev %d:%d != %d:%d", unix.Major(w.Rdev), unix.Minor(w.Rdev), unix.Major(g.Rdev), unix.Minor(g.Rdev))
	}
	d = append(d, diffXattrs(w.Xattrs, g.Xattrs)...)
	if w.Type == TypeFile {
		wl, gl := linkGroup(p, w.Links, ignore), linkGroup(p, g.Links, ignore)
		if !slices.Equal(wl, gl) {
			add("hard-link group %s != %s", showList(wl), showList(gl))
		}
		if opts.CheckSparse && g.Blocks > w.Blocks+SparseSlack(w.Blocks) {
			add("blocks %d > %d + %d: holes not kept", g.Blocks, w.Blocks, SparseSlack(w.Blocks))
		}
	}
	return d
}

// linkGroup returns the group without ignored paths, or just [p] when no
// other name is left.
func linkGroup(p string, links []string, ignore func(string) bool) []string {
	var l []string
	for _, q := range links {
		if !ignore(q) {
			l = append(l, q)
		}
	}
	if len(l) < 2 {
		return []string{p}
	}
	return l
}

func diffXattrs(want, got []Xattr) []string {
	var d []string
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i].Name < got[j].Name):
			d = append(d, fmt.Sprintf("xattr %s missing", showPath(want[i].Name)))
			i++
		case i == len(want) || got[j].Name < want[i].Name:
			d = append(d, fmt.Sprintf("xattr %s extra", showPath(got[j].Name)))
			j++
		default:
			if !bytes.Equal(want[i].Value, got[j].Value) {
				d = append(d, fmt.Sprintf("xattr %s value %s != %s",
					showPath(want[i].Name), showValue(want[i].Value), showValue(got[j].Value)))
			}
			i++
			j++
		}
	}
	return d
}

// showPath prints a path (or name, or target) verbatim when it is printable
// UTF-8 without spaces at either end, quoted otherwise, and elides the
// middle of very long ones.
func showPath(p string) string {
	if len(p) > 160 {
		p = p[:60] + "..(" + strconv.Itoa(len(p)) + " bytes).." + p[len(p)-60:]
	}
	if p != "" && utf8.ValidString(p) && strconv.Quote(p) == `"`+p+`"` && strings.TrimSpace(p) == p {
		return p
	}
	return strconv.Quote(p)
}

func showList(l []string) string {
	s := make([]string, len(l))
	for i, p := range l {
		s[i] = showPath(p)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func showValue(v []byte) string {
	const maxShown = 48
	long := len(v) > maxShown
	if long {
		v = v[:maxShown]
	}
	var s string
	if utf8.Valid(v) && strconv.Quote(string(v)) == `"`+string(v)+`"` {
		s = strconv.Quote(string(v))
	} else {
		s = "0x" + fmt.Sprintf("%x", v)
	}
	if long {
		s += "..."
	}
	return s
}

func showTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.000000000Z")
}

// MaxShown is how many differences Equal prints before summarising the
// rest as a count.
const MaxShown = 50

// Equal fails the test (without stopping it) when Diff finds differences,
// printing the first MaxShown of them.
func Equal(t testing.TB, want, got Manifest, opts DiffOptions) {
	t.Helper()
	d := Diff(want, got, opts)
	if len(d) == 0 {
		return
	}
	shown := d[:min(len(d), MaxShown)]
	more := ""
	if len(d) > len(shown) {
		more = fmt.Sprintf("\n... and %d more", len(d)-len(shown))
	}
	t.Errorf("trees differ in %d ways (want != got):\n%s%s", len(d), strings.Join(shown, "\n"), more)
}
