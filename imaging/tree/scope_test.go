package tree

import "testing"

// TestIsFull: a scope list is the whole tree when one of its scopes is the
// root's subtree, whatever else it lists. (The walk said so; Sync and the
// protocol's scan wanted exactly FullScope, and took a list that also named
// a path for a scoped one.)
func TestIsFull(t *testing.T) {
	tests := []struct {
		name   string
		scopes []Scope
		want   bool
	}{
		{"none", nil, false},
		{"FullScope", FullScope, true},
		{"the root entry alone", []Scope{{Path: Root}}, false},
		{"a subtree", []Scope{{Path: "etc", Tree: true}}, false},
		{"the root's subtree and a path", []Scope{{Path: Root, Tree: true}, {Path: "etc/passwd"}}, true},
		{"a path and the root's subtree", []Scope{{Path: "etc", Tree: true}, {Path: Root, Tree: true}}, true},
	}
	for _, tt := range tests {
		if got := IsFull(tt.scopes); got != tt.want {
			t.Errorf("%s: IsFull(%v) = %v, want %v", tt.name, tt.scopes, got, tt.want)
		}
		if got := IsFull(tt.scopes); got != Covers(tt.scopes, "any/path") && tt.scopes != nil {
			t.Errorf("%s: IsFull %v disagrees with Covers of an unlisted path", tt.name, got)
		}
	}
}
