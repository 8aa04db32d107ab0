package main

import "github.com/spf13/cobra"

// newClusterCmds returns the config-driven commands: sync, status, verify.
func newClusterCmds(g *globalFlags) []*cobra.Command { return nil }
