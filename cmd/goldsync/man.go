package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/manpage"
	"github.com/goldsync/goldsync/internal/manpage/cobraman"
	"github.com/goldsync/goldsync/internal/version"
)

// manFiles is the FILES section of goldsync's man pages.
var manFiles = []struct{ path, text string }{
	{"/etc/goldsync/goldsync.toml", "the cluster config (see goldsync.toml(5)); --config/-c names another"},
	{"/etc/goldsync/nodes", "the nodes list: IP, host name, optional MAC, one node a line"},
	{".IMAGE.goldsync/", "beside each image (or its state_dir): manifest, run lock, retention links and generations"},
	{"/run/goldsync/", "status, metrics and the run lock's holder record of goldsync sync"},
	{"~/.cache/goldsync/", "on the golden node: uploaded goldsync-agent binaries, one per build (older builds are pruned)"},
	{"/var/lib/goldsync/", "on the golden node: goldsync-agent's hash cache and change journal"},
}

// newManCmd returns the hidden command `make install` uses to generate the
// man pages: goldsync.1 and one goldsync-COMMAND.1 per subcommand, each
// with its own title, real defaults, an EXIT STATUS and a FILES section.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "write goldsync's man pages into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			err := cobraman.WriteTree(root, args[0], manpage.Options{
				Source: "goldsync " + version.Version, Manual: "goldsync manual", Sections: manSections(),
				SeeAlso: []string{"goldsync.toml(5)", "goldsync-agent(1)", "rsync(1)"},
			})
			if err != nil {
				return exitcode.With(exitcode.IO, fmt.Errorf("man pages: %w", err))
			}
			return nil
		},
	}
}

// manSections are the EXIT STATUS and FILES sections.
func manSections() []manpage.Section {
	var exit, files strings.Builder
	exit.WriteString("rsync's numbers where rsync has the cause (rsync(1) EXIT VALUES).\n")
	for _, e := range exitcode.Table {
		fmt.Fprintf(&exit, ".TP\n\\fB%d\\fP\n%s\n", e.Code, manpage.Escape(e.Text))
	}
	for _, f := range manFiles {
		fmt.Fprintf(&files, ".TP\n\\fI%s\\fP\n%s\n", manpage.Escape(f.path), manpage.Escape(f.text))
	}
	return []manpage.Section{{Title: "EXIT STATUS", Troff: exit.String()}, {Title: "FILES", Troff: files.String()}}
}
