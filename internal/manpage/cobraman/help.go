package cobraman

import (
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/internal/manpage"
)

// SetHelp gives each command of root's tree its Long and Example text
// from files of fsys, so that --help and the man pages (which WriteTree
// makes from the same fields) have one source: NAME.txt is the Long text
// and NAME.example.txt the Example of the command whose path below root
// is NAME, its words joined by "-" ("os-add" for "goldsync os add"; the
// root's own is its name: "goldsync.txt"). Each file's last newline is
// dropped and vars replaces placeholders such as "{{exit-status}}" (nil:
// none). A command without a file keeps what it has. SetHelp returns the
// names of the files no command took, for a test to catch a renamed
// command.
func SetHelp(root *cobra.Command, fsys fs.FS, vars *strings.Replacer) (unused []string) {
	h := &manpage.HelpFiles{FS: fsys, Vars: vars}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		name := root.Name()
		if c != root {
			name = strings.TrimPrefix(strings.ReplaceAll(c.CommandPath(), " ", "-"), root.Name()+"-")
		}
		h.Set(name, &c.Long, &c.Example)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return h.Unused()
}
