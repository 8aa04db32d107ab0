package main

import (
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/manpage/cobraman"
	"github.com/goldsync/goldsync/internal/term"
	"github.com/goldsync/goldsync/internal/version"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// globalFlags are shared by every subcommand.
type globalFlags struct {
	config    string
	verbose   int
	quiet     bool
	logFormat string
	jsonOut   bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "goldsync",
		Short:         "keep diskless-cluster images in sync with a golden node",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Asked for only by --version: Describe may hash the executable,
		// which every start (a replica's receiver, each update) would pay.
		Version: version.Version,
	}
	cobra.AddTemplateFunc("describe", version.Describe)
	root.SetVersionTemplate("goldsync {{describe}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.config, "config", "", "cluster config file (default /etc/goldsync/goldsync.toml)")
	pf.CountVarP(&g.verbose, "verbose", "v", "say more (repeat for debug logs)")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print only errors")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	pf.BoolVar(&g.jsonOut, "json", false, "print a JSON summary on stdout instead of text")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if g.logFormat != "text" && g.logFormat != "json" {
			return exitcode.With(exitcode.Usage, fmt.Errorf("--log-format %q: want text or json", g.logFormat))
		}
		return nil
	}
	root.AddCommand(newPullCmd(g))
	root.AddCommand(newSnapshotCmds(g)...)
	root.AddCommand(newClusterCmds(g)...)
	root.AddCommand(newServeCmds(g)...)
	root.AddCommand(newDemoCmd(g))
	root.AddCommand(newReceiveCmd(g), newReplicaBuildCmd(g), newReplicaRelayCmd(g))
	root.AddCommand(newGenerationCmds(g)...)
	root.AddCommand(exitCodesHelp())
	help, _ := fs.Sub(helpFiles, "help")
	cobraman.SetHelp(root, help, helpVars())
	usageOnArgErrors(root)
	root.SetHelpCommand(helpCmd())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		// pflag says `invalid argument "abc" for "--max-delete" flag:
		// strconv.ParseInt: parsing "abc": invalid syntax`.
		if head, _, ok := strings.Cut(err.Error(), ": strconv.Parse"); ok {
			return exitcode.With(exitcode.Usage, fmt.Errorf("%s: want a number; usage: %s", head, cmd.UseLine()))
		}
		return exitcode.With(exitcode.Usage, err)
	})
	return root
}

// usageOnArgErrors makes every command's wrong argument count say the
// command's usage line, not only cobra's "accepts 2 arg(s), received 1";
// the error keeps its exit code.
func usageOnArgErrors(c *cobra.Command) {
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return fmt.Errorf("%w; usage: %s (%s --help)", err, cmd.UseLine(), cmd.CommandPath())
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageOnArgErrors(sub)
	}
}

// helpFiles are the commands' Long and Example texts (cobraman.SetHelp),
// read by --help and the man pages alike.
//
//go:embed help/*.txt
var helpFiles embed.FS

// helpVars fills the help texts' placeholders with what the code knows.
func helpVars() *strings.Replacer {
	return strings.NewReplacer("{{exit-status}}", exitcode.Text(),
		"{{root-excludes}}", strings.Join(exclude.RootDefaults, " "),
		"{{initramfs-tools-nfs-options}}", netboot.DefaultInitramfsToolsNFSOptions,
		"{{dracut-nfs-options}}", netboot.DefaultDracutNFSOptions)
}

// logger builds the slog logger the libraries log through.
func (g *globalFlags) logger(w io.Writer) *slog.Logger {
	return term.Logger(w, "goldsync", g.verbose, g.quiet, g.logFormat == "json")
}

// exitCodesHelp is the help topic "goldsync help exit-codes": the table
// alone, with no usage block (a topic has no flags of its own).
func exitCodesHelp() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exit-codes",
		Short: "the exit codes goldsync uses",
		Run:   func(cmd *cobra.Command, args []string) { cmd.Help() },
	}
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) { fmt.Fprintln(c.OutOrStdout(), strings.TrimRight(c.Long, "\n")) })
	return cmd
}

// show writes a command's result on stdout: v as JSON with --json, else
// its text.
func (g *globalFlags) show(v any, text func(io.Writer) error) error {
	if g.jsonOut {
		return printJSON(v)
	}
	return text(stdout)
}

// printJSON writes v on stdout as indented JSON.
func printJSON(v any) error {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stdout is where results go; a variable so tests can capture it.
var stdout io.Writer = os.Stdout

func printf(format string, a ...any) { fmt.Fprintf(stdout, format, a...) }

// helpCmd is cobra's help command with a usage error (exit 1) for a topic
// that is no command: cobra's prints its complaint and exits 0.
func helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, _, err := c.Root().Find(args)
			if cmd == nil || err != nil {
				return exitcode.With(exitcode.Usage, fmt.Errorf("no help topic %q: see goldsync --help for the commands", strings.Join(args, " ")))
			}
			cmd.InitDefaultHelpFlag()
			return cmd.Help()
		},
	}
}
