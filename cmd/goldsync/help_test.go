package main

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/internal/manpage/cobraman"
)

// TestHelpFiles checks that every help text file belongs to a command
// (a renamed command would lose its help) and that no placeholder is
// left unfilled.
func TestHelpFiles(t *testing.T) {
	root := newRootCmd()
	help, err := fs.Sub(helpFiles, "help")
	if err != nil {
		t.Fatal(err)
	}
	if unused := cobraman.SetHelp(root, help, helpVars()); len(unused) > 0 {
		t.Errorf("help files no command reads: %v", unused)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if strings.Contains(c.Long, "{{") || strings.Contains(c.Example, "{{") {
			t.Errorf("%s: a placeholder is left in its help", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}
