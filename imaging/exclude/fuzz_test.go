package exclude

import (
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// FuzzMatcher feeds newline-separated pattern lists and paths. Nothing may
// panic; where a simple reference applies (literal patterns, and wildcard
// patterns without classes) the answer must agree with it; and the fast and
// slow automata must agree on every compiled pattern. The seed corpus is in
// testdata/fuzz/FuzzMatcher.
func FuzzMatcher(f *testing.F) {
	f.Fuzz(func(t *testing.T, patterns, path string, isDir bool) {
		pats := strings.Split(patterns, "\n")
		if len(pats) > 8 || len(patterns) > 512 || len(path) > 512 {
			return // keep each run cheap; length is not where bugs hide
		}
		m, err := New(pats)
		if err != nil {
			return
		}
		got := m.Excluded(path, isDir)

		for i := range m.rules {
			r := &m.rules[i]
			if r.glob == nil || !r.glob.fast {
				continue
			}
			for _, tx := range []text{
				{s: path}, {s: path, anywhere: true}, {s: path, lead: true},
				{s: path, trail: true}, {s: path, anywhere: true, trail: true},
			} {
				if fast, slow := r.glob.match(tx), r.glob.matchSlow(tx); fast != slow {
					t.Fatalf("rule %d of %q on %+v: fast automaton says %v, slow %v", i, pats, tx, fast, slow)
				}
			}
		}

		if tree.ValidatePath(path) != nil {
			return // the reference speaks of tree paths only
		}
		want, ok := refExcluded(pats, path, isDir)
		if ok && got != want {
			t.Fatalf("Excluded(%q, dir=%v) with %q = %v, reference says %v", path, isDir, pats, got, want)
		}
	})
}

// refExcluded is a plain reading of rsync's rules: it answers for lists of
// literal patterns and of wildcard patterns without '[' classes (ok false
// otherwise).
func refExcluded(pats []string, path string, isDir bool) (excluded, ok bool) {
	type ref struct {
		include bool
		pat     string
	}
	var rules []ref
	for _, p := range pats {
		switch {
		case strings.HasPrefix(p, "- "):
			rules = append(rules, ref{pat: p[2:]})
		case strings.HasPrefix(p, "+ "):
			rules = append(rules, ref{include: true, pat: p[2:]})
		case p == "!":
			rules = nil
		default:
			rules = append(rules, ref{pat: p})
		}
	}
	if path == tree.Root {
		return false, true
	}
	for _, r := range rules {
		var match bool
		if strings.ContainsAny(r.pat, "*?[") {
			if strings.Contains(r.pat, "[") {
				return false, false
			}
			match = refWild(r.pat, path, isDir)
		} else {
			match = refLiteral(r.pat, path, isDir)
		}
		if match {
			return !r.include, true
		}
	}
	return false, true
}

// refLiteral matches a pattern without wildcards component by component:
// anchored, it is the whole path; unanchored, it is the path's last
// components.
func refLiteral(p, path string, isDir bool) bool {
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		if !isDir {
			return false
		}
		p = p[:len(p)-1]
	}
	if rest, anchored := strings.CutPrefix(p, "/"); anchored {
		return path == rest
	}
	pc, xc := strings.Split(p, "/"), strings.Split(path, "/")
	if len(pc) > len(xc) {
		return false
	}
	for i := range pc {
		if pc[i] != xc[len(xc)-len(pc)+i] {
			return false
		}
	}
	return true
}

// refWild follows rsync's rule_matches with string concatenation and a
// memoized recursive glob.
func refWild(p, path string, isDir bool) bool {
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		if !isDir {
			return false
		}
		p = p[:len(p)-1]
	}
	slashes := strings.Count(p, "/")
	wild2 := strings.Contains(p, "**")
	if slashes == 0 && !wild2 {
		return refGlob(p, tree.Base(path))
	}
	s := path
	if strings.HasPrefix(p, "**") {
		s = "/" + s
	}
	if isDir && wild2 && strings.HasSuffix(p, "***") {
		s += "/"
	}
	if rest, anchored := strings.CutPrefix(p, "/"); anchored {
		return refGlob(rest, s)
	}
	if !wild2 {
		comps := strings.Split(path, "/")
		if len(comps) < slashes+1 {
			return false
		}
		return refGlob(p, strings.Join(comps[len(comps)-slashes-1:], "/"))
	}
	if strings.HasPrefix(p, "**") {
		return refGlob(p, s)
	}
	for i := 0; i <= len(s); i++ {
		if (i == 0 || s[i-1] == '/') && refGlob(p, s[i:]) {
			return true
		}
	}
	return false
}

// refGlob matches a class-free wildmatch pattern by recursion: '\' escapes,
// '?' is one byte but '/', '*' bytes but '/', '**' (or more) any bytes.
func refGlob(p, s string) bool {
	memo := map[[2]int]bool{}
	var rec func(pi, si int) bool
	rec = func(pi, si int) bool {
		key := [2]int{pi, si}
		if v, ok := memo[key]; ok {
			return v
		}
		var r bool
		switch {
		case pi == len(p):
			r = si == len(s)
		case p[pi] == '\\':
			r = pi+1 < len(p) && si < len(s) && s[si] == p[pi+1] && rec(pi+2, si+1)
		case p[pi] == '?':
			r = si < len(s) && s[si] != '/' && rec(pi+1, si+1)
		case p[pi] == '*':
			pj := pi
			for pj < len(p) && p[pj] == '*' {
				pj++
			}
			any := pj-pi > 1
			for sj := si; ; sj++ {
				if rec(pj, sj) {
					r = true
					break
				}
				if sj == len(s) || (!any && s[sj] == '/') {
					break
				}
			}
		default:
			r = si < len(s) && s[si] == p[pi] && rec(pi+1, si+1)
		}
		memo[key] = r
		return r
	}
	return rec(0, 0)
}
