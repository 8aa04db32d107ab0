package wire

import (
	"strings"
	"testing"
)

func TestInert(t *testing.T) {
	evil := "ok\x1b]0;pwned\x07\x1b[2J\r\nFAKE line\u202egnp.exe\xff\x00\ttab"
	for name, got := range map[string]string{"Inert": Inert(evil), "InertLines": InertLines(evil)} {
		for _, c := range got {
			if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f || c == '\u202e' || c == '\ufffd' {
				t.Errorf("%s: %q still holds %U", name, got, c)
			}
		}
		if name == "Inert" && strings.ContainsAny(got, "\n\t") {
			t.Errorf("Inert: %q holds a raw newline or tab", got)
		}
	}
	if got := InertLines("plain\ttext\nline two"); got != "plain\ttext\nline two" {
		t.Errorf("InertLines changed clean text: %q", got)
	}
	if got := InertLines("a\x1b[31mb"); got != `a\x1b[31mb` {
		t.Errorf("InertLines: %q", got)
	}
}
