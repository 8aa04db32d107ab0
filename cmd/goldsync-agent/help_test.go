package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/internal/cli"
)

// TestHelpFiles checks that every help text file belongs to a command: a
// renamed command would lose its help.
func TestHelpFiles(t *testing.T) {
	help, err := fs.Sub(helpFiles, "help")
	if err != nil {
		t.Fatal(err)
	}
	if unused := cli.SetHelp(newRootCmd(), help); len(unused) > 0 {
		t.Errorf("help files no command reads: %v", unused)
	}
}

// TestManPages: `goldsync-agent man DIR` writes one page a listed command
// (no help, hidden or completion page), each with its options and their
// real defaults, subcommands and the pages around it.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if _, errs, err := runAgent(t, "man", dir); err != nil {
		t.Fatalf("man: %v\n%s", err, errs)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{"goldsync-agent-boot-install.1", "goldsync-agent-boot.1", "goldsync-agent-push.1",
		"goldsync-agent-serve.1", "goldsync-agent-watch.1", "goldsync-agent.1"}
	if !slices.Equal(names, want) {
		t.Errorf("pages %q, want %q", names, want)
	}
	for page, parts := range map[string][]string{
		"goldsync-agent.1": {".SH COMMANDS\n.TP\n\\fBboot\\fP\n", "\\fB\\-\\-root\\fP \\fIDIR\\fP\nthe golden tree's root DIR (default /)",
			".SH EXIT STATUS", "\\fBgoldsync\\-agent\\-watch(1)\\fP"},
		"goldsync-agent-watch.1": {".B goldsync\\-agent watch [\\-\\-push\\-to [user@]server:/image]... [flags]",
			"\\fB\\-\\-quiet\\-period\\fP \\fID\\fP\npush once changes have settled for D (default 2s)",
			".SH GLOBAL OPTIONS", "\\fB\\-v\\fP, \\fB\\-\\-verbose\\fP"},
		"goldsync-agent-boot.1": {".B goldsync\\-agent boot\n", "\\fBinstall\\fP", "\\fBgoldsync\\-agent(1)\\fP,\n\\fBgoldsync\\-agent\\-boot\\-install(1)\\fP"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			if !strings.Contains(string(b), p) {
				t.Errorf("%s lacks %q", page, p)
			}
		}
	}
}
