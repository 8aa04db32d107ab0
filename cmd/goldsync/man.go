package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manFiles is the FILES section of goldsync's man pages.
var manFiles = []struct{ path, text string }{
	{"/etc/goldsync/goldsync.toml", "the cluster config (see goldsync.toml(5)); --config/-c names another"},
	{"/etc/goldsync/nodes", "the nodes list: IP, host name, optional MAC, one node a line"},
	{".IMAGE.goldsync/", "beside each image (or state_dir): its manifest, run lock, retention links and generations"},
	{"/run/goldsync/", "status, metrics and the run lock's holder record of goldsync sync"},
	{"~/.cache/goldsync/", "on the golden node: uploaded goldsync-agent binaries (older builds are pruned)"},
	{"/var/lib/goldsync/", "on the golden node: goldsync-agent's hash cache and change journal"},
}

// newManCmd returns the hidden command `make install` uses to generate the
// man pages: goldsync.1 and one goldsync-COMMAND.1 per subcommand, each
// with its own title, an EXIT STATUS and a FILES section.
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
			if err := writeManTree(root, args[0]); err != nil {
				return withCode(exitIO, fmt.Errorf("man pages: %w", err))
			}
			return nil
		},
	}
}

func writeManTree(c *cobra.Command, dir string) error {
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := writeManTree(sub, dir); err != nil {
			return err
		}
	}
	name := strings.ReplaceAll(c.CommandPath(), " ", "-")
	hdr := &doc.GenManHeader{Title: strings.ToUpper(name), Section: "1", Source: "goldsync", Manual: "goldsync manual"}
	var b bytes.Buffer
	if err := doc.GenMan(c, hdr, &b); err != nil {
		return err
	}
	page := b.String()
	extra := manSections(c)
	if i := strings.Index(page, ".SH SEE ALSO"); i >= 0 {
		page = page[:i] + extra + page[i:] + manSeeAlso(c)
	} else {
		page += extra + ".SH SEE ALSO\n" + strings.TrimPrefix(manSeeAlso(c), ", ")
	}
	return os.WriteFile(filepath.Join(dir, name+".1"), []byte(page), 0o644)
}

// manSections are the EXIT STATUS and FILES sections.
func manSections(c *cobra.Command) string {
	var b strings.Builder
	b.WriteString(".SH EXIT STATUS\n")
	b.WriteString("rsync's numbers where rsync has the cause (rsync(1) EXIT VALUES):\n")
	for _, e := range exitTable {
		fmt.Fprintf(&b, ".TP\n\\fB%d\\fP\n%s\n", e.code, manEscape(e.text))
	}
	b.WriteString(".SH FILES\n")
	for _, f := range manFiles {
		fmt.Fprintf(&b, ".TP\n\\fI%s\\fP\n%s\n", manEscape(f.path), manEscape(f.text))
	}
	return b.String()
}

// manSeeAlso is appended to cobra's SEE ALSO list.
func manSeeAlso(c *cobra.Command) string {
	return ", \\fBgoldsync.toml(5)\\fP, \\fBgoldsync-agent(1)\\fP, \\fBrsync(1)\\fP\n"
}

func manEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
