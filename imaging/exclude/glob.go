package exclude

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// This file holds the wildcard engine: a compiler from rsync's wildmatch
// syntax to a list of ops, and a bit-parallel NFA that runs them. There is no
// backtracking, so a match costs O(len(text) * len(ops)/64) whatever the
// pattern, and nothing is allocated per match.

// byteSet is a set of byte values.
type byteSet [4]uint64

func (s *byteSet) add(c byte)      { s[c>>6] |= 1 << (c & 63) }
func (s *byteSet) has(c byte) bool { return s[c>>6]>>(c&63)&1 != 0 }
func (s *byteSet) addRange(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		s.add(byte(c))
	}
}

func (s *byteSet) invert() {
	for i := range s {
		s[i] = ^s[i]
	}
}

// allButSlash is what '?', '*' and every character class may match.
var allButSlash = func() byteSet {
	var s byteSet
	s.invert()
	s[0] &^= 1 << '/'
	return s
}()

var allBytes = func() byteSet {
	var s byteSet
	s.invert()
	return s
}()

// opKind says how an op consumes text.
type opKind uint8

const (
	opOne  opKind = iota // exactly one byte from set
	opLoop               // zero or more bytes from set ('*': no '/', '**': any)
)

// op is one element of a compiled pattern.
type op struct {
	kind opKind
	set  byteSet
}

// Compile errors. They are wrapped with the pattern by New.
var (
	errTrailingBackslash = errors.New("trailing backslash")
	errUnterminatedClass = errors.New("unterminated [ character class")
)

// compileGlob turns a wildmatch pattern into ops. The syntax is rsync's
// (lib/wildmatch.c): '?' is one byte but '/', '*' is a run of bytes without
// '/', two or more '*' are a run of any bytes, '[...]' is a class ('!' or '^'
// negates, 'a-z' ranges, '[:alpha:]' names, a backslash escapes, a leading ']'
// is literal; a class never matches '/'), and '\' makes the next byte
// literal. A pattern rsync could never match (an unterminated class, an
// unknown class name, a trailing backslash) is an error here.
func compileGlob(p string) ([]op, error) {
	ops := make([]op, 0, len(p))
	for i := 0; i < len(p); {
		switch c := p[i]; c {
		case '\\':
			if i+1 == len(p) {
				return nil, errTrailingBackslash
			}
			ops = append(ops, literal(p[i+1]))
			i += 2
		case '?':
			ops = append(ops, op{kind: opOne, set: allButSlash})
			i++
		case '*':
			j := i
			for j < len(p) && p[j] == '*' {
				j++
			}
			if j-i == 1 {
				ops = append(ops, op{kind: opLoop, set: allButSlash})
			} else {
				ops = append(ops, op{kind: opLoop, set: allBytes})
			}
			i = j
		case '[':
			set, n, err := compileClass(p[i:])
			if err != nil {
				return nil, err
			}
			ops = append(ops, op{kind: opOne, set: set})
			i += n
		default:
			ops = append(ops, literal(c))
			i++
		}
	}
	return ops, nil
}

func literal(c byte) op {
	o := op{kind: opOne}
	o.set.add(c)
	return o
}

// compileClass parses the class that opens s (s[0] == '[') exactly as rsync's
// wildmatch reads it, and returns its set and length.
func compileClass(s string) (byteSet, int, error) {
	var set byteSet
	p := 1
	negate := false
	if p < len(s) && (s[p] == '!' || s[p] == '^') {
		negate = true
		p++
	}
	// prev is the previous single byte, the start of a possible range; 0
	// means none (patterns never hold NUL).
	var prev byte
	for {
		if p >= len(s) {
			return set, 0, errUnterminatedClass
		}
		ch := s[p]
		cur := ch
		switch {
		case ch == '\\':
			p++
			if p >= len(s) {
				return set, 0, errUnterminatedClass
			}
			cur = s[p]
			set.add(cur)
		case ch == '-' && prev != 0 && p+1 < len(s) && s[p+1] != ']':
			p++
			hi := s[p]
			if hi == '\\' {
				p++
				if p >= len(s) {
					return set, 0, errUnterminatedClass
				}
				hi = s[p]
			}
			if prev <= hi {
				set.addRange(prev, hi)
			}
			cur = 0
		case ch == '[' && p+1 < len(s) && s[p+1] == ':':
			start := p + 2
			q := strings.IndexByte(s[start:], ']')
			if q < 0 {
				return set, 0, errUnterminatedClass
			}
			q += start
			if q-start-1 < 0 || s[q-1] != ':' {
				// Not "[:name:]": the '[' is an ordinary member.
				set.add('[')
				break
			}
			name := s[start : q-1]
			cls, ok := namedClasses[name]
			if !ok {
				return set, 0, fmt.Errorf("unknown character class [:%s:]", name)
			}
			for i := range set {
				set[i] |= cls[i]
			}
			p = q
			cur = 0
		default:
			set.add(ch)
		}
		prev = cur
		p++
		if p >= len(s) {
			return set, 0, errUnterminatedClass
		}
		if s[p] == ']' {
			break
		}
	}
	if negate {
		set.invert()
	}
	for i := range set {
		set[i] &= allButSlash[i]
	}
	return set, p + 1, nil
}

// namedClasses are the POSIX classes in the C locale: bytes >= 0x80 belong
// to none of them.
var namedClasses = func() map[string]byteSet {
	pred := map[string]func(c byte) bool{
		"alnum":  func(c byte) bool { return isDigit(c) || isAlpha(c) },
		"alpha":  isAlpha,
		"blank":  func(c byte) bool { return c == ' ' || c == '\t' },
		"cntrl":  func(c byte) bool { return c < 0x20 || c == 0x7f },
		"digit":  isDigit,
		"graph":  func(c byte) bool { return c > 0x20 && c < 0x7f },
		"lower":  func(c byte) bool { return c >= 'a' && c <= 'z' },
		"print":  func(c byte) bool { return c >= 0x20 && c < 0x7f },
		"punct":  func(c byte) bool { return c > 0x20 && c < 0x7f && !isDigit(c) && !isAlpha(c) },
		"space":  func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') },
		"upper":  func(c byte) bool { return c >= 'A' && c <= 'Z' },
		"xdigit": func(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') },
	}
	m := make(map[string]byteSet, len(pred))
	for name, f := range pred {
		var s byteSet
		for c := 0; c < 256; c++ {
			if f(byte(c)) {
				s.add(byte(c))
			}
		}
		m[name] = s
	}
	return m
}()

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// maxOps bounds a compiled pattern; New rejects longer patterns, so the
// state sets of the slow path fit in fixed arrays on the stack.
const (
	maxOps   = maxPatternLen
	maxWords = (maxOps+1)/64 + 1
)

// glob is a compiled wildcard pattern ready to run.
type glob struct {
	ops []op
	// Literal bytes every match must start (prefix) and end (suffix) with:
	// the ops before the first and after the last non-literal op. They let
	// most texts be rejected without running the automaton.
	prefix, suffix string

	// The fast automaton, used when len(ops) < 64: state i (bit i) means
	// "ops[:i] matched", bit len(ops) is the accepting state.
	fast   bool
	start  uint64       // the start state and what it reaches matching nothing
	accept uint64       // bit len(ops)
	loops  uint64       // bits of opLoop ops
	moves  *[256]uint64 // moves[c]: bits of the ops that accept byte c
}

func newGlob(ops []op) *glob {
	g := &glob{ops: ops}
	g.prefix, g.suffix = literalEnds(ops)
	if len(ops) < 64 {
		g.fast = true
		g.accept = 1 << len(ops)
		g.moves = new([256]uint64)
		for i, o := range ops {
			if o.kind == opLoop {
				g.loops |= 1 << i
			}
			for c := 0; c < 256; c++ {
				if o.set.has(byte(c)) {
					g.moves[c] |= 1 << i
				}
			}
		}
		g.start = g.close(1)
	}
	return g
}

// literalEnds returns the literal text that ops start and end with.
func literalEnds(ops []op) (prefix, suffix string) {
	single := func(o op) (byte, bool) {
		if o.kind != opOne {
			return 0, false
		}
		n, b := 0, byte(0)
		for c := 0; c < 256 && n < 2; c++ {
			if o.set.has(byte(c)) {
				n, b = n+1, byte(c)
			}
		}
		return b, n == 1
	}
	var pre []byte
	i := 0
	for ; i < len(ops); i++ {
		c, ok := single(ops[i])
		if !ok {
			break
		}
		pre = append(pre, c)
	}
	if i == len(ops) {
		return string(pre), string(pre)
	}
	var suf []byte
	for j := len(ops) - 1; j > i; j-- {
		c, ok := single(ops[j])
		if !ok {
			break
		}
		suf = append(suf, c)
	}
	for l, r := 0, len(suf)-1; l < r; l, r = l+1, r-1 {
		suf[l], suf[r] = suf[r], suf[l]
	}
	return string(pre), string(suf)
}

// close adds the states reachable from st by matching nothing: a loop op
// may match zero bytes. Compiling merges a run of '*' into one op, so loops
// are never adjacent and one shift suffices.
func (g *glob) close(st uint64) uint64 { return st | (st&g.loops)<<1 }

// text is the string a glob is matched against: s, optionally with a '/'
// before (lead) and after (trail) it, the way rsync joins its strings[].
// When anywhere is set the match may start at the beginning or right after
// any '/' (rsync's "where < 0").
type text struct {
	s                     string
	lead, trail, anywhere bool
}

// match reports whether the glob matches t.
func (g *glob) match(t text) bool {
	if !t.trail && !hasSuffixLead(t.s, t.lead, g.suffix) {
		return false
	}
	if !t.lead && !t.anywhere && !hasPrefixTrail(t.s, t.trail, g.prefix) {
		return false
	}
	if g.fast {
		return g.matchFast(t)
	}
	return g.matchSlow(t)
}

// hasSuffixLead reports whether ("/" if lead) + s ends with suf.
func hasSuffixLead(s string, lead bool, suf string) bool {
	if len(suf) <= len(s) {
		return s[len(s)-len(suf):] == suf
	}
	return lead && len(suf) == len(s)+1 && suf[0] == '/' && suf[1:] == s
}

// hasPrefixTrail reports whether s + ("/" if trail) starts with pre.
func hasPrefixTrail(s string, trail bool, pre string) bool {
	if len(pre) <= len(s) {
		return s[:len(pre)] == pre
	}
	return trail && len(pre) == len(s)+1 && pre[len(s)] == '/' && pre[:len(s)] == s
}

func (g *glob) matchFast(t text) bool {
	moves, loops := g.moves, g.loops
	st := g.start
	if t.lead {
		m := st & moves['/']
		st = g.close((m&^loops)<<1 | m&loops)
		if t.anywhere {
			st |= g.start
		}
	}
	s := t.s
	for i := 0; i < len(s); i++ {
		c := s[i]
		m := st & moves[c]
		st = g.close((m&^loops)<<1 | m&loops)
		if c == '/' && t.anywhere {
			st |= g.start
		}
		if st == 0 {
			if !t.anywhere {
				return false
			}
			// Nothing is alive until the next '/' restarts the match.
			j := strings.IndexByte(s[i+1:], '/')
			if j < 0 {
				break
			}
			i += j // the loop's i++ lands on the '/'
		}
	}
	if t.trail {
		m := st & moves['/']
		st = g.close((m&^loops)<<1 | m&loops)
		if t.anywhere {
			st |= g.start
		}
	}
	return st&g.accept != 0
}

// matchSlow is the same automaton for patterns of 64 ops or more, with
// multi-word state sets; it walks the live states instead of using tables.
func (g *glob) matchSlow(t text) bool {
	n := len(g.ops)
	w := n/64 + 1
	var bufA, bufB, bufStart [maxWords]uint64
	cur, next, start := bufA[:w], bufB[:w], bufStart[:w]
	start[0] = 1
	g.closeSlow(start)
	copy(cur, start)
	feed := func(c byte) {
		clear(next)
		for wi, word := range cur {
			for word != 0 {
				b := word & -word
				word &^= b
				i := wi*64 + bits.TrailingZeros64(b)
				if i >= n || !g.ops[i].set.has(c) {
					continue
				}
				if g.ops[i].kind == opLoop {
					next[i/64] |= 1 << (i % 64)
				} else {
					next[(i+1)/64] |= 1 << ((i + 1) % 64)
				}
			}
		}
		g.closeSlow(next)
		if c == '/' && t.anywhere {
			for i := range next {
				next[i] |= start[i]
			}
		}
		cur, next = next, cur
	}
	if t.lead {
		feed('/')
	}
	for i := 0; i < len(t.s); i++ {
		feed(t.s[i])
	}
	if t.trail {
		feed('/')
	}
	return cur[n/64]>>(n%64)&1 != 0
}

func (g *glob) closeSlow(st []uint64) {
	for i, o := range g.ops {
		if o.kind == opLoop && st[i/64]>>(i%64)&1 != 0 {
			st[(i+1)/64] |= 1 << ((i + 1) % 64)
		}
	}
}
