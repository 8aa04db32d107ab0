package wire

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Inert returns text a peer sent (an error message, a software name, what a
// remote command printed) quoted in Go syntax, with control characters,
// invalid UTF-8 and other non-printing runes escaped: it cannot move a
// terminal's cursor, set its title, forge a log line or hide text behind a
// direction override, whatever the peer put in it.
func Inert(s string) string { return strconv.Quote(s) }

// InertLines is for text meant to be read as lines (a remote command's
// stderr, a multi-line error): newlines and tabs stay, every other control
// character, invalid byte or non-printing rune is escaped as Inert would
// escape it, without the surrounding quotes.
func InertLines(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (r != '\n' && r != '\t' && !unicode.IsPrint(r)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case (r == utf8.RuneError && n == 1) || !unicode.IsPrint(r):
			q := strconv.Quote(s[:n])
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}
