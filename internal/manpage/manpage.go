// Package manpage writes man(7) pages for a command tree: NAME,
// SYNOPSIS, DESCRIPTION, OPTIONS with their real defaults, EXAMPLE, the
// caller's own sections (EXIT STATUS, FILES) and SEE ALSO. A tree is
// given as Pages, made from goldsync's cobra commands by package
// cobraman and from goldsync-agent's internal/cli commands by the agent,
// so the agent links no cobra; text goes to troff as it is written (no
// markdown pass that would eat "/proc/*" or "<image>").
package manpage

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// Page is one command's page.
type Page struct {
	// Path is the command's path from the root, words joined by spaces.
	Path string
	// Short is its one-line summary; Long its description (Short when
	// empty); Example its examples.
	Short, Long, Example string
	// UseLine is the synopsis.
	UseLine string
	// Flags are the command's own options, Inherited its parents'.
	Flags, Inherited *pflag.FlagSet
	// Parent is the parent command's page (nil for the root).
	Parent *Page
	// Subs are the subcommands that get pages (not hidden, help or
	// completion commands).
	Subs []*Page
}

// Section is an extra section of a page, as troff source.
type Section struct {
	// Title is the section's heading, e.g. "EXIT STATUS".
	Title string
	// Troff is its body, already in troff.
	Troff string
}

// Options say what every page of a tree carries.
type Options struct {
	// Source is the footer's source, e.g. "goldsync 1.2.3".
	Source string
	// Manual is the header's manual name.
	Manual string
	// Sections are added to every page before SEE ALSO.
	Sections []Section
	// SeeAlso are added to every page's SEE ALSO, e.g. "goldsync.toml(5)".
	SeeAlso []string
}

// WriteTree writes one page a command, root and Subs, into dir as
// NAME.1, NAME being the command path joined by "-".
func WriteTree(root *Page, dir string, opts Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeTree(root, dir, opts)
}

func writeTree(c *Page, dir string, opts Options) error {
	for _, sub := range c.Subs {
		if err := writeTree(sub, dir, opts); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(dir, PageName(c)+".1"))
	if err != nil {
		return err
	}
	Write(f, c, opts)
	return f.Close()
}

// PageName is a command's page name: its path joined by "-".
func PageName(c *Page) string { return strings.ReplaceAll(c.Path, " ", "-") }

// name is the last word of the command's path.
func (c *Page) name() string { return c.Path[strings.LastIndex(c.Path, " ")+1:] }

// Write writes c's page.
func Write(w io.Writer, c *Page, opts Options) {
	name := PageName(c)
	fmt.Fprintf(w, ".TH %q 1 \"\" %q %q\n", strings.ToUpper(name), opts.Source, opts.Manual)
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", Escape(name), Escape(c.Short))
	fmt.Fprintf(w, ".SH SYNOPSIS\n.B %s\n", Escape(c.UseLine))
	long := c.Long
	if long == "" {
		long = c.Short
	}
	fmt.Fprintf(w, ".SH DESCRIPTION\n%s\n", paragraphs(long))
	if len(c.Subs) > 0 {
		fmt.Fprint(w, ".SH COMMANDS\n")
		for _, sub := range c.Subs {
			fmt.Fprintf(w, ".TP\n\\fB%s\\fP\n%s\n", Escape(sub.name()), Escape(sub.Short))
		}
	}
	flags(w, "OPTIONS", c.Flags)
	flags(w, "GLOBAL OPTIONS", c.Inherited)
	if c.Example != "" {
		fmt.Fprintf(w, ".SH EXAMPLES\n.nf\n%s\n.fi\n", Escape(c.Example))
	}
	for _, s := range opts.Sections {
		fmt.Fprintf(w, ".SH %s\n%s\n", s.Title, strings.TrimSuffix(s.Troff, "\n"))
	}
	var also []string
	if c.Parent != nil {
		also = append(also, PageName(c.Parent)+"(1)")
	}
	for _, sub := range c.Subs {
		also = append(also, PageName(sub)+"(1)")
	}
	also = append(also, opts.SeeAlso...)
	for i, a := range also {
		also[i] = "\\fB" + Escape(a) + "\\fP"
	}
	fmt.Fprintf(w, ".SH SEE ALSO\n%s\n", strings.Join(also, ",\n"))
}

func flags(w io.Writer, title string, fs *pflag.FlagSet) {
	if fs == nil {
		return
	}
	var lines []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden || f.Name == "help" {
			return
		}
		head := "\\fB\\-\\-" + Escape(f.Name) + "\\fP"
		if f.Shorthand != "" {
			head = "\\fB\\-" + Escape(f.Shorthand) + "\\fP, " + head
		}
		varname, usage := pflag.UnquoteUsage(f)
		if varname != "" && f.Value.Type() != "bool" {
			head += " \\fI" + Escape(varname) + "\\fP"
		}
		switch f.DefValue {
		case "", "false", "[]", "0", "0s":
		default:
			usage += " (default " + f.DefValue + ")"
		}
		lines = append(lines, ".TP\n"+head+"\n"+Escape(usage))
	})
	if len(lines) > 0 {
		fmt.Fprintf(w, ".SH %s\n%s\n", title, strings.Join(lines, "\n"))
	}
}

// paragraphs turns help text into troff: blank lines separate paragraphs,
// a paragraph of indented lines is kept as it is laid out.
func paragraphs(s string) string {
	var b strings.Builder
	for i, para := range strings.Split(strings.TrimSpace(s), "\n\n") {
		if i > 0 {
			b.WriteString(".PP\n")
		}
		if strings.HasPrefix(para, " ") {
			b.WriteString(".nf\n" + Escape(para) + "\n.fi\n")
			continue
		}
		b.WriteString(Escape(para) + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Escape makes text safe as troff input: backslashes and hyphens escaped,
// a line starting with a control character (. or ') guarded.
func Escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}
