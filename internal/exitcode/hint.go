package exitcode

import (
	"slices"
	"strings"

	"github.com/goldsync/goldsync/config"
)

// CommandFirstHint is the hint after msg, the error of goldsync's
// command line args, for an admin whose line does not start with the
// command: one who put a flag before it (goldsync -n pull SRC DEST), or
// pasted an rsync line with the command renamed (goldsync -aHAXS SRC/
// DEST/), which gets pull; a lone unknown flag gets no hint. commands are
// the subcommands' names.
func CommandFirstHint(args []string, msg string, commands []string) string {
	if len(args) == 0 || !(strings.HasPrefix(msg, "unknown shorthand flag") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown command")) {
		return ""
	}
	for i, a := range args {
		if i > 0 && slices.Contains(commands, a) {
			line := append(append([]string{a}, args[:i]...), args[i+1:]...)
			return "the command comes first, as in: goldsync " + strings.Join(line, " ") + " (see goldsync " + a + " --help)"
		}
	}
	// A pasted rsync line: flags or operands first, and an operand that
	// names a path (a lone unknown flag is only that).
	if a := args[0]; (strings.HasPrefix(a, "-") || isPathArg(a)) && slices.ContainsFunc(args, isPathArg) {
		return "the command comes first, as in: goldsync pull " + strings.Join(args, " ") + " (see goldsync --help)"
	}
	return ""
}

// isPathArg reports whether a is an operand that names a path, local or
// remote.
func isPathArg(a string) bool {
	return !strings.HasPrefix(a, "-") && (strings.Contains(a, "/") || strings.Contains(a, ":"))
}

// closestFirst reorders the "Did you mean this?" list of cobra's
// unknown-command error so the closest name comes first: cobra lists
// them in command order, which told `goldsync pul` "pin" before "pull".
// Closest is the smallest edit distance to the typed name; a name the
// typed one begins is closer than any other at the same distance, and
// ties keep cobra's order. Any other msg is returned as it is.
func closestFirst(msg string) string {
	const head = "\n\nDid you mean this?\n"
	typed, ok := strings.CutPrefix(msg, `unknown command "`)
	if !ok {
		return msg
	}
	typed, _, ok = strings.Cut(typed, `"`)
	i := strings.Index(msg, head)
	if !ok || i < 0 {
		return msg
	}
	list := msg[i+len(head):]
	tail := ""
	if j := strings.Index(list, "\n\n"); j >= 0 {
		list, tail = list[:j], list[j:]
	}
	names := strings.Split(strings.TrimRight(list, "\n"), "\n")
	key := func(s string) int {
		s = strings.TrimSpace(s)
		d := 2 * config.EditDistance(typed, s)
		if !strings.HasPrefix(s, typed) {
			d++
		}
		return d
	}
	slices.SortStableFunc(names, func(a, b string) int { return key(a) - key(b) })
	sep := ""
	if strings.HasSuffix(list, "\n") {
		sep = "\n"
	}
	return msg[:i+len(head)] + strings.Join(names, "\n") + sep + tail
}
