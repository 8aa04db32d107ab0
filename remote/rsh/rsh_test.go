package rsh_test

import (
	"strings"
	"testing"

	"github.com/goldsync/goldsync/remote/rsh"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want rsh.Spec
		bad  bool
	}{
		{in: "node004:/", want: rsh.Spec{Host: "node004", Path: "/"}},
		{in: "root@node004:/", want: rsh.Spec{User: "root", Host: "node004", Path: "/"}},
		{in: "/diskless/root", want: rsh.Spec{Path: "/diskless/root"}},
		{in: "./a:b", want: rsh.Spec{Path: "./a:b"}},
		{in: "node004:", want: rsh.Spec{Host: "node004", Path: "."}},
		{in: "-oProxyCommand=x:/", bad: true},
		{in: "a;b:/", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		got, err := rsh.ParseSpec(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseSpec(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestSplitRsh(t *testing.T) {
	got, err := rsh.SplitRsh(`ssh -p 2222 -o "ProxyJump=a b" -i '/k e y'`)
	want := []string{"ssh", "-p", "2222", "-o", "ProxyJump=a b", "-i", "/k e y"}
	if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("SplitRsh = %q, %v; want %q", got, err, want)
	}
	if _, err := rsh.SplitRsh(`ssh "unterminated`); err == nil {
		t.Error("unterminated quote accepted")
	}
}
