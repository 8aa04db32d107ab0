package cobraman

import (
	"io/fs"
	"strings"

	"github.com/spf13/cobra"
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
	used := map[string]bool{}
	read := func(name string) string {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return ""
		}
		used[name] = true
		s := strings.TrimSuffix(string(b), "\n")
		if vars != nil {
			s = vars.Replace(s)
		}
		return s
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		name := root.Name()
		if c != root {
			name = strings.TrimPrefix(strings.ReplaceAll(c.CommandPath(), " ", "-"), root.Name()+"-")
		}
		if s := read(name + ".txt"); s != "" {
			c.Long = s
		}
		if s := read(name + ".example.txt"); s != "" {
			c.Example = s
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	files, _ := fs.Glob(fsys, "*.txt")
	for _, f := range files {
		if !used[f] {
			unused = append(unused, f)
		}
	}
	return unused
}
