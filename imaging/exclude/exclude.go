package exclude

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goldsync/goldsync/imaging/tree"
)

// maxPatternLen bounds one pattern, prefix included: rsync's MAXPATHLEN.
const maxPatternLen = tree.MaxPathLen + 1

// PatternError reports a pattern New cannot use.
type PatternError struct {
	Index   int    // 0-based position of the pattern in the list given to New
	Pattern string // the pattern as given
	Err     error  // what is wrong with it
}

// Error names the pattern (1-based, as a line number would be) and the
// problem.
func (e *PatternError) Error() string {
	p := e.Pattern
	if len(p) > 80 {
		p = p[:80] + "..."
	}
	return fmt.Sprintf("exclude pattern %d %q: %v", e.Index+1, p, e.Err)
}

// Unwrap returns the underlying problem.
func (e *PatternError) Unwrap() error { return e.Err }

// Matcher decides which paths of a tree are excluded. It is immutable once
// built and safe for concurrent use. A nil *Matcher excludes nothing.
type Matcher struct {
	patterns []string
	rules    []rule
}

// rule is one compiled include or exclude rule.
type rule struct {
	include bool // "+ PAT": a match keeps the path
	dirOnly bool // PAT ended in '/': only directories match

	// What the pattern is matched against.
	nameOnly bool // the last component only (no '/' and no "**" in PAT)
	anchored bool // PAT started with '/': the whole path, from its start
	// tailN > 0: the last tailN components (PAT has tailN-1 slashes, is not
	// anchored and has no "**"). anywhere: the whole path, starting at its
	// start or after any '/' (PAT has "**" but does not start with it).
	tailN    int
	anywhere bool
	lead     bool // PAT starts with "**": match against "/" + path
	dirTrail bool // PAT ends with "***": a directory is matched as path + "/"

	lit  string // the pattern body when it has no wildcard
	glob *glob  // the compiled body when it has one
}

// New compiles patterns into a Matcher. Each pattern is "PAT" or "- PAT"
// (exclude), "+ PAT" (include), or "!" (forget every rule before it), exactly
// as rsync reads --exclude and exclude files; the first rule that matches a
// path decides. See the package documentation for the pattern syntax.
//
// A pattern rsync would silently never match (an unterminated character
// class, an unknown [:class:], a trailing backslash) is an error here, as is
// an empty pattern, one holding NUL, or one longer than PATH_MAX. The error
// is a *PatternError naming the pattern.
func New(patterns []string) (*Matcher, error) {
	m := &Matcher{patterns: append([]string(nil), patterns...)}
	for i, p := range patterns {
		body, include := p, false
		switch {
		case strings.HasPrefix(p, "- "):
			body = p[2:]
		case strings.HasPrefix(p, "+ "):
			body, include = p[2:], true
		case p == "!":
			m.rules = m.rules[:0]
			continue
		}
		r, err := compileRule(body, include)
		if err != nil {
			return nil, &PatternError{Index: i, Pattern: p, Err: err}
		}
		m.rules = append(m.rules, r)
	}
	return m, nil
}

// compileRule reads one pattern the way rsync's add_rule and rule_matches
// do. Every flag is computed from the raw text, escapes included, as rsync
// does: "\*\*" still makes the pattern a full-path one.
func compileRule(p string, include bool) (rule, error) {
	r := rule{include: include}
	switch {
	case p == "":
		return r, errors.New("empty pattern")
	case len(p) > maxPatternLen:
		return r, fmt.Errorf("longer than %d bytes", maxPatternLen)
	case strings.IndexByte(p, 0) >= 0:
		return r, errors.New("contains NUL")
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
		r.dirOnly = true
	}
	slashes := strings.Count(p, "/")
	wild := strings.ContainsAny(p, "*?[")
	wild2 := wild && strings.Contains(p, "**")
	wild2Prefix := wild2 && strings.HasPrefix(p, "**")
	r.dirTrail = wild2 && strings.HasSuffix(p, "***")
	r.anchored = p[0] == '/'
	body := p
	if r.anchored {
		body = p[1:]
	}
	switch {
	case slashes == 0 && !wild2:
		r.nameOnly = true
	case !r.anchored && slashes > 0 && !wild2:
		r.tailN = slashes + 1
	case !r.anchored && wild2 && !wild2Prefix:
		r.anywhere = true
	}
	r.lead = !r.nameOnly && wild2Prefix
	if !wild {
		// Without a wildcard a backslash is an ordinary byte.
		r.lit = body
		return r, nil
	}
	ops, err := compileGlob(body)
	if err != nil {
		return r, err
	}
	r.glob = newGlob(ops)
	return r, nil
}

// Patterns returns a copy of the patterns the Matcher was built from.
func (m *Matcher) Patterns() []string {
	if m == nil {
		return nil
	}
	return append([]string(nil), m.patterns...)
}

// Excluded reports whether the first rule matching path excludes it. path
// is a tree path (relative, slash-separated, see package tree) and isDir
// says whether it names a directory (a symlink to one is not). The root is
// never excluded.
//
// Like rsync, Excluded judges one path: it does not look at the path's
// ancestors. A walker calls it top-down and does not descend into an
// excluded directory, so nothing beneath it is visited even when a rule
// would include it.
func (m *Matcher) Excluded(path string, isDir bool) bool {
	if m == nil || path == tree.Root || path == "" {
		return false
	}
	name := tree.Base(path)
	for i := range m.rules {
		r := &m.rules[i]
		if r.matches(path, name, isDir) {
			return !r.include
		}
	}
	return false
}

// matches mirrors rsync's rule_matches for a path relative to the transfer
// root; name is its last component.
func (r *rule) matches(path, name string, isDir bool) bool {
	if r.dirOnly && !isDir {
		return false
	}
	if r.glob == nil {
		switch {
		case r.nameOnly:
			return name == r.lit
		case r.anchored:
			return path == r.lit
		default:
			// The pattern's components are the path's last ones.
			return strings.HasSuffix(path, r.lit) &&
				(len(path) == len(r.lit) || path[len(path)-len(r.lit)-1] == '/')
		}
	}
	t := text{s: path, lead: r.lead, trail: r.dirTrail && isDir, anywhere: r.anywhere}
	switch {
	case r.nameOnly:
		t.s = name
	case r.tailN > 0:
		s, ok := lastComponents(path, r.tailN)
		if !ok {
			return false
		}
		t.s = s
	}
	return r.glob.match(t)
}

// lastComponents returns the last n components of path, or false when it
// has fewer.
func lastComponents(path string, n int) (string, bool) {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			n--
			if n == 0 {
				return path[i+1:], true
			}
		}
	}
	return path, n == 1
}
