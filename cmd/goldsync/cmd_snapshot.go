package main

import "github.com/spf13/cobra"

// newSnapshotCmds returns the snapshot, os, node and render commands.
func newSnapshotCmds(g *globalFlags) []*cobra.Command { return nil }
