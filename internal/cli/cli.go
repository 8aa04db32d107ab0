// Package cli is goldsync-agent's command line: a tree of commands on
// pflag that parses, dispatches, answers --help, `help COMMAND` and
// --version, and words its errors as cobra does, in cobra's help layout,
// without linking cobra. Cobra brings text/template, whose calls of
// methods by name make the linker keep every exported method of every
// type in the binary: the agent serving a pull was 9 MB, and the kernel
// maps most of a binary's pages into each process that runs it (it maps
// 64 KiB around each page fault), so its size was ~5.6 MiB of the golden
// node's resident memory (bench/README.md, "The golden node's RSS, round
// 2"). Cobra's completion command is not provided.
package cli

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/goldsync/goldsync/internal/manpage"
)

// Command is one command of the tree, as cobra.Command's fields of the
// same names.
type Command struct {
	// Use is the one-line usage; its first word is the command's name.
	Use string
	// Short is the line in the parent's command list.
	Short string
	// Long is the text of --help (Short when empty).
	Long string
	// Example is shown under "Examples:".
	Example string
	// Hidden leaves the command out of the lists and the suggestions.
	Hidden bool
	// Version, on the root, adds --version, which prints
	// "NAME VERSION".
	Version string
	// Args checks the positional arguments (nil: any).
	Args func(c *Command, args []string) error
	// Run runs the command; nil for a command that only groups others.
	Run func(ctx context.Context, c *Command, args []string) error

	parent     *Command
	subs       []*Command
	flags      *pflag.FlagSet // this command's own flags, persistent ones not included
	persistent *pflag.FlagSet // flags this command's subcommands inherit
	help       *Command       // the root's help command
	stdout     io.Writer
	stderr     io.Writer
}

// Flags are c's own flags.
func (c *Command) Flags() *pflag.FlagSet {
	if c.flags == nil {
		c.flags = newFlagSet(c.Name())
	}
	return c.flags
}

// PersistentFlags are c's flags that its subcommands take too.
func (c *Command) PersistentFlags() *pflag.FlagSet {
	if c.persistent == nil {
		c.persistent = newFlagSet(c.Name())
	}
	return c.persistent
}

func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, not printed
	return fs
}

// AddCommand adds subcommands.
func (c *Command) AddCommand(subs ...*Command) {
	for _, s := range subs {
		s.parent = c
		c.subs = append(c.subs, s)
	}
}

// Name is the first word of Use.
func (c *Command) Name() string {
	name, _, _ := strings.Cut(c.Use, " ")
	return name
}

// Parent is the command c is a subcommand of (nil for the root).
func (c *Command) Parent() *Command { return c.parent }

// Root is the top of c's tree.
func (c *Command) Root() *Command {
	for c.parent != nil {
		c = c.parent
	}
	return c
}

// CommandPath is the names from the root to c.
func (c *Command) CommandPath() string {
	if c.parent == nil {
		return c.Name()
	}
	return c.parent.CommandPath() + " " + c.Name()
}

// UseLine is the usage line: the parent's path and Use, with " [flags]"
// for a command that runs or has flags of its own (as cobra's, which
// adds --help to the command it runs).
func (c *Command) UseLine() string {
	line := c.Use
	if c.parent != nil {
		line = c.parent.CommandPath() + " " + c.Use
	}
	own := (c.flags != nil && c.flags.HasFlags()) || (c.persistent != nil && c.persistent.HasFlags())
	if (c.Run != nil || own) && !strings.Contains(line, "[flags]") {
		line += " [flags]"
	}
	return line
}

// Commands are c's subcommands sorted by name, the help command included.
func (c *Command) Commands() []*Command {
	out := slices.Clone(c.subs)
	if c.help != nil {
		out = append(out, c.help)
	}
	slices.SortFunc(out, func(a, b *Command) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// Available says whether c is listed in its parent's help: not hidden,
// not the help command, and something to run.
func (c *Command) Available() bool {
	if c.Hidden || (c.parent != nil && c.parent.help == c) {
		return false
	}
	return c.Run != nil || c.hasAvailableSubs()
}

func (c *Command) hasAvailableSubs() bool {
	for _, s := range c.subs {
		if s.Available() {
			return true
		}
	}
	return false
}

// NoArgs refuses positional arguments.
func NoArgs(c *Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())
	}
	return nil
}

// ExactArgs wants n positional arguments.
func ExactArgs(n int) func(*Command, []string) error {
	return func(c *Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("accepts %d arg(s), received %d", n, len(args))
		}
		return nil
	}
}

// findFlags are the flags that choose how the words after c are read
// while looking for a subcommand: its own and its ancestors' persistent
// ones, not --help or --version (as cobra, which adds those later).
func (c *Command) findFlags() *pflag.FlagSet {
	fs := newFlagSet(c.Name())
	fs.AddFlagSet(c.flags)
	for p := c; p != nil; p = p.parent {
		fs.AddFlagSet(p.persistent)
	}
	return fs
}

// LocalFlags are the flags shown under "Flags:": c's own, persistent or
// not, with --help (and --version on the root).
func (c *Command) LocalFlags() *pflag.FlagSet {
	fs := newFlagSet(c.Name())
	fs.AddFlagSet(c.flags)
	fs.AddFlagSet(c.persistent)
	c.addDefaultFlags(fs)
	return fs
}

// InheritedFlags are the ancestors' persistent flags ("Global Flags:").
func (c *Command) InheritedFlags() *pflag.FlagSet {
	fs := newFlagSet(c.Name())
	for p := c.parent; p != nil; p = p.parent {
		fs.AddFlagSet(p.persistent)
	}
	return fs
}

// NonInheritedFlags are LocalFlags (cobra's name for them in man pages).
func (c *Command) NonInheritedFlags() *pflag.FlagSet { return c.LocalFlags() }

func (c *Command) addDefaultFlags(fs *pflag.FlagSet) {
	if fs.Lookup("help") == nil {
		short := "h"
		if fs.ShorthandLookup("h") != nil {
			short = ""
		}
		fs.BoolP("help", short, false, "help for "+c.Name())
	}
	if c.Version != "" && fs.Lookup("version") == nil {
		short := "v"
		if fs.ShorthandLookup("v") != nil {
			short = ""
		}
		fs.BoolP("version", short, false, "version for "+c.Name())
	}
}

// Execute runs the command args name (os.Args[1:]) on c, the root. --help
// and `help` print to stdout, the help of a mistyped `help` topic to
// stderr; errors are returned for the caller to print.
func (c *Command) Execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c.stdout, c.stderr = stdout, stderr
	if len(c.subs) > 0 && c.help == nil {
		c.help = &Command{
			Use:   "help [command]",
			Short: "Help about any command",
			Long: "Help provides help for any command in the application.\nSimply type " +
				c.Name() + " help [path to command] for full details.",
			Run: func(_ context.Context, h *Command, args []string) error {
				cmd, _, err := h.Root().find(args)
				if cmd == nil || err != nil {
					fmt.Fprintf(stderr, "Unknown help topic [%s]\n", quoteWords(args))
					cmd.Root().usage(stderr)
					return nil
				}
				cmd.writeHelp(stdout)
				return nil
			},
		}
		c.help.parent = c
	}
	cmd, rest, err := c.find(args)
	if err != nil {
		return err
	}
	return cmd.execute(ctx, rest)
}

// quoteWords formats args as cobra's %#q of a []string.
func quoteWords(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%#q", a)
	}
	return strings.Join(q, " ")
}

func (c *Command) execute(ctx context.Context, args []string) error {
	fs := c.findFlags()
	c.addDefaultFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if help, _ := fs.GetBool("help"); help {
		c.writeHelp(c.Root().stdout)
		return nil
	}
	if c.Version != "" {
		if v, _ := fs.GetBool("version"); v {
			fmt.Fprintf(c.Root().stdout, "%s %s\n", c.Name(), c.Version)
			return nil
		}
	}
	if c.Run == nil {
		c.writeHelp(c.Root().stdout)
		return nil
	}
	if c.Args != nil {
		if err := c.Args(c, fs.Args()); err != nil {
			return err
		}
	}
	return c.Run(ctx, c, fs.Args())
}

// find walks args down the tree to the command they name, as cobra's
// Find: words that are not flags or flag values name subcommands.
func (c *Command) find(args []string) (*Command, []string, error) {
	cmd, rest := c, args
	for {
		words := stripFlags(rest, cmd.findFlags())
		if len(words) == 0 {
			break
		}
		next := cmd.sub(words[0])
		if next == nil {
			break
		}
		rest = minusFirst(rest, words[0], cmd.findFlags())
		cmd = next
	}
	if cmd.Args == nil && len(cmd.subs) > 0 && cmd.parent == nil {
		if words := stripFlags(rest, cmd.findFlags()); len(words) > 0 {
			return cmd, rest, fmt.Errorf("unknown command %q for %q%s", words[0], cmd.CommandPath(), cmd.suggest(words[0]))
		}
	}
	return cmd, rest, nil
}

func (c *Command) sub(name string) *Command {
	for _, s := range c.Commands() {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// takesValue says whether the flag word s (e.g. "--to", "-e") takes the
// next word as its value: a flag not known, or one without a value of
// its own when given alone (a bool, a count), does not.
func takesValue(s string, fs *pflag.FlagSet) bool {
	if strings.Contains(s, "=") {
		return false
	}
	var f *pflag.Flag
	switch {
	case strings.HasPrefix(s, "--"):
		f = fs.Lookup(s[2:])
		return f == nil || f.NoOptDefVal == ""
	case strings.HasPrefix(s, "-") && len(s) == 2:
		f = fs.ShorthandLookup(s[1:])
		return f == nil || f.NoOptDefVal == ""
	}
	return false
}

// stripFlags are the words of args that are not flags or their values,
// up to "--" (cobra's stripFlags, including its stop at a flag whose
// value is the last word).
func stripFlags(args []string, fs *pflag.FlagSet) []string {
	var words []string
	for len(args) > 0 {
		s := args[0]
		args = args[1:]
		switch {
		case s == "--":
			return words
		case takesValue(s, fs):
			if len(args) <= 1 {
				return words
			}
			args = args[1:]
		case s != "" && !strings.HasPrefix(s, "-"):
			words = append(words, s)
		}
	}
	return words
}

// minusFirst is args without the first word that is x and not a flag's
// value.
func minusFirst(args []string, x string, fs *pflag.FlagSet) []string {
	for i := 0; i < len(args); i++ {
		s := args[i]
		switch {
		case s == "--":
			return args
		case takesValue(s, fs):
			i++
		case !strings.HasPrefix(s, "-") && s == x:
			return append(slices.Clone(args[:i]), args[i+1:]...)
		}
	}
	return args
}

// suggest is cobra's "Did you mean this?" for a mistyped subcommand:
// those within two edits, or starting with what was typed.
func (c *Command) suggest(typed string) string {
	var b strings.Builder
	for _, s := range c.Commands() {
		if !s.Available() {
			continue
		}
		if distance(strings.ToLower(typed), strings.ToLower(s.Name())) <= 2 ||
			strings.HasPrefix(strings.ToLower(s.Name()), strings.ToLower(typed)) {
			if b.Len() == 0 {
				b.WriteString("\n\nDid you mean this?\n")
			}
			fmt.Fprintf(&b, "\t%v\n", s.Name())
		}
	}
	return b.String()
}

// distance is the Levenshtein distance of s and t.
func distance(s, t string) int {
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			if s[i-1] == t[j-1] {
				cur[j] = prev[j-1]
			} else {
				cur[j] = 1 + min(prev[j], cur[j-1], prev[j-1])
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(t)]
}

// writeHelp writes c's help: its Long (or Short) text, then its usage.
func (c *Command) writeHelp(w io.Writer) {
	text := c.Long
	if text == "" {
		text = c.Short
	}
	if text = strings.TrimRightFunc(text, isSpace); text != "" {
		fmt.Fprintf(w, "%s\n\n", text)
	}
	c.usage(w)
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// usage writes cobra's default usage layout.
func (c *Command) usage(w io.Writer) {
	fmt.Fprint(w, "Usage:")
	if c.Run != nil {
		fmt.Fprintf(w, "\n  %s", c.UseLine())
	}
	subs := c.hasAvailableSubs()
	if subs {
		fmt.Fprintf(w, "\n  %s [command]", c.CommandPath())
	}
	if c.Example != "" {
		fmt.Fprintf(w, "\n\nExamples:\n%s", c.Example)
	}
	if subs {
		pad := 11
		for _, s := range c.subs {
			pad = max(pad, len(s.Name()))
		}
		fmt.Fprint(w, "\n\nAvailable Commands:")
		for _, s := range c.Commands() {
			if s.Available() || s.Name() == "help" {
				fmt.Fprintf(w, "\n  %-*s %s", pad, s.Name(), s.Short)
			}
		}
	}
	fmt.Fprintf(w, "\n\nFlags:\n%s", strings.TrimRightFunc(c.LocalFlags().FlagUsages(), isSpace))
	if inh := c.InheritedFlags(); inh.HasAvailableFlags() {
		fmt.Fprintf(w, "\n\nGlobal Flags:\n%s", strings.TrimRightFunc(inh.FlagUsages(), isSpace))
	}
	if subs {
		fmt.Fprintf(w, "\n\nUse \"%s [command] --help\" for more information about a command.", c.CommandPath())
	}
	fmt.Fprintln(w)
}

// SetHelp gives each command of root's tree its Long and Example text
// from files of fsys, as cobraman.SetHelp does for a cobra tree (both
// through manpage.HelpFiles): NAME.txt and NAME.example.txt, NAME being
// the command's path below the root joined by "-" (the root's own: its
// name), the last newline dropped. It returns the files no command took.
func SetHelp(root *Command, fsys fs.FS) (unused []string) {
	h := &manpage.HelpFiles{FS: fsys}
	var walk func(c *Command)
	walk = func(c *Command) {
		name := root.Name()
		if c != root {
			name = strings.ReplaceAll(strings.TrimPrefix(c.CommandPath(), root.Name()+" "), " ", "-")
		}
		h.Set(name, &c.Long, &c.Example)
		for _, s := range c.subs {
			walk(s)
		}
	}
	walk(root)
	return h.Unused()
}
