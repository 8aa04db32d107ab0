package tree

// ScopeSet answers Covers for a set of scopes in time proportional to a
// path's depth, not to the number of scopes: an agent's change set after a
// package transaction can hold thousands.
type ScopeSet struct {
	all   bool
	exact map[string]bool // scopes with Tree false
	trees map[string]bool // scopes with Tree true
}

// NewScopeSet indexes scopes. An empty list covers nothing.
func NewScopeSet(scopes []Scope) *ScopeSet {
	s := &ScopeSet{exact: map[string]bool{}, trees: map[string]bool{}}
	for _, sc := range scopes {
		if sc.Tree {
			s.trees[sc.Path] = true
			if sc.Path == Root {
				s.all = true
			}
		} else {
			s.exact[sc.Path] = true
		}
	}
	return s
}

// Covers reports whether p lies inside one of the scopes (as Covers does).
func (s *ScopeSet) Covers(p string) bool {
	if s.all || s.exact[p] || s.trees[p] {
		return true
	}
	if len(s.trees) == 0 {
		return false
	}
	for q := Dir(p); q != ""; q = Dir(q) {
		if s.trees[q] {
			return true
		}
	}
	return false
}

// CoversTree reports whether a scope with Tree set is p or above it: p's
// whole subtree lies inside the set.
func (s *ScopeSet) CoversTree(p string) bool {
	if s.all {
		return true
	}
	for q := p; q != ""; q = Dir(q) {
		if s.trees[q] {
			return true
		}
	}
	return false
}
