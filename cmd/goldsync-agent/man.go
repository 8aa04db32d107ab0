package main

import (
	"context"

	"github.com/goldsync/goldsync/internal/cli"
	"github.com/goldsync/goldsync/internal/manpage"
	"github.com/goldsync/goldsync/internal/version"
)

// agentManSections are the EXIT STATUS and FILES sections of the agent's
// man pages.
var agentManSections = []manpage.Section{
	{Title: "EXIT STATUS", Troff: `.TP
\fB0\fP
success
.TP
\fB1\fP
any failure but the remote shell's; the message on standard error says which (for a push, with the receiver's own message first)
.TP
\fB255\fP
the remote shell (ssh) failed: unreachable host, authentication, host key verification (as ssh and goldsync)`},
	{Title: "FILES", Troff: `.TP
\fI/var/lib/goldsync/\fP
the agent's state as root (\-\-state\-dir): hash cache, change journal, the ssh control socket of \-\-ssh\-persist
.TP
\fI~/.cache/goldsync/\fP
agents the image server uploaded, one per build; older builds are pruned
.TP
\fI/etc/goldsync/agent.env\fP
PUSH_TO, PUSH_ARGS and WATCH_ARGS of the push hooks and the watch unit
.TP
\fI/run/goldsync/push\-needed\fP
set by the package\-manager hooks; goldsync\-agent\-push.path then starts one push`},
}

// newManCmd returns the hidden command `make install` uses to write the
// agent's man pages: goldsync-agent.1 and one goldsync-agent-COMMAND.1 per
// subcommand.
func newManCmd() *cli.Command {
	return &cli.Command{
		Use:    "man DIR",
		Short:  "write goldsync-agent's man pages into DIR",
		Hidden: true,
		Args:   cli.ExactArgs(1),
		Run: func(_ context.Context, c *cli.Command, args []string) error {
			return manpage.WriteTree(manPage(c.Root(), nil), args[0], manpage.Options{
				Source: "goldsync-agent " + version.Version, Manual: "goldsync manual", Sections: agentManSections,
				SeeAlso: []string{"goldsync(1)", "goldsync-receive(1)", "goldsync.toml(5)"},
			})
		},
	}
}

// manPage is c's page, with pages for its listed subcommands.
func manPage(c *cli.Command, parent *manpage.Page) *manpage.Page {
	p := &manpage.Page{Path: c.CommandPath(), Short: c.Short, Long: c.Long, Example: c.Example,
		UseLine: c.UseLine(), Flags: c.LocalFlags(), Inherited: c.InheritedFlags(), Parent: parent}
	for _, sub := range c.Commands() {
		if sub.Available() {
			p.Subs = append(p.Subs, manPage(sub, p))
		}
	}
	return p
}
