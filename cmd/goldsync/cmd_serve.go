package main

import "github.com/spf13/cobra"

// newServeCmds returns the read-only rsync-protocol export command.
func newServeCmds(g *globalFlags) []*cobra.Command { return nil }
