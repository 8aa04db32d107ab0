package main

import (
	"io/fs"
	"testing"

	"github.com/goldsync/goldsync/internal/manpage"
)

// TestHelpFiles checks that every help text file belongs to a command: a
// renamed command would lose its help.
func TestHelpFiles(t *testing.T) {
	help, err := fs.Sub(helpFiles, "help")
	if err != nil {
		t.Fatal(err)
	}
	if unused := manpage.SetHelp(newRootCmd(), help, nil); len(unused) > 0 {
		t.Errorf("help files no command reads: %v", unused)
	}
}
