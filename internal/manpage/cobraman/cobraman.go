// Package cobraman gives goldsync's cobra commands to package manpage:
// their pages, and their help texts from files (SetHelp). goldsync-agent,
// which links no cobra, does the same from its internal/cli commands.
package cobraman

import (
	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/internal/manpage"
)

// Page is root's page and, under it, one for each subcommand that gets
// one (hidden, help and completion commands left out).
func Page(root *cobra.Command) *manpage.Page {
	return page(root, nil)
}

func page(c *cobra.Command, parent *manpage.Page) *manpage.Page {
	p := &manpage.Page{Path: c.CommandPath(), Short: c.Short, Long: c.Long, Example: c.Example,
		UseLine: c.UseLine(), Flags: c.NonInheritedFlags(), Inherited: c.InheritedFlags(), Parent: parent}
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() && sub.Name() != "completion" {
			p.Subs = append(p.Subs, page(sub, p))
		}
	}
	return p
}

// WriteTree writes the pages of root's tree into dir (manpage.WriteTree).
func WriteTree(root *cobra.Command, dir string, opts manpage.Options) error {
	return manpage.WriteTree(Page(root), dir, opts)
}
