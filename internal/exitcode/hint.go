package exitcode

import (
	"slices"
	"strings"
)

// CommandFirstHint is the hint after msg, the error of goldsync's
// command line args, for an admin whose line does not start with the
// command: one who put a flag before it (goldsync -n pull SRC DEST), or
// pasted an rsync line with the command renamed (goldsync -aHAXS SRC/
// DEST/), which gets pull. commands are the subcommands' names.
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
	if a := args[0]; strings.HasPrefix(a, "-") || strings.Contains(a, "/") || strings.Contains(a, ":") {
		return "the command comes first, as in: goldsync pull " + strings.Join(args, " ") + " (see goldsync --help)"
	}
	return ""
}
