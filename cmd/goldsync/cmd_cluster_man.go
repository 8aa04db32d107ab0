package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd returns the hidden command `make install` uses to generate the
// man pages: goldsync.1 and one goldsync-COMMAND.1 per subcommand.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "write goldsync's man pages into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return withCode(exitSelect, err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "GOLDSYNC", Section: "1", Source: "goldsync", Manual: "goldsync manual"}
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return withCode(exitIO, fmt.Errorf("man pages: %w", err))
			}
			return nil
		},
	}
}
