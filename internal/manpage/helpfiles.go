package manpage

import (
	"io/fs"
	"strings"
)

// HelpFiles reads the commands' help texts from a file system, one source
// for --help and the man pages: NAME.txt is a command's Long text and
// NAME.example.txt its Example, NAME being the command's path below the
// root with its words joined by "-" ("os-add" for "goldsync os add"; the
// root's own is its name). Each file's last newline is dropped and Vars,
// when set, replaces placeholders such as "{{exit-status}}" (a text with
// no "{{" is not passed through it: every start reads every file). The
// command trees (cobraman's, internal/cli's) walk themselves and call Set.
type HelpFiles struct {
	FS   fs.FS
	Vars *strings.Replacer
	used map[string]bool
}

// Set gives the command named name its Long and Example texts from their
// files; a command without a file keeps what it has.
func (h *HelpFiles) Set(name string, long, example *string) {
	if s := h.read(name + ".txt"); s != "" {
		*long = s
	}
	if s := h.read(name + ".example.txt"); s != "" {
		*example = s
	}
}

func (h *HelpFiles) read(name string) string {
	b, err := fs.ReadFile(h.FS, name)
	if err != nil {
		return ""
	}
	if h.used == nil {
		h.used = map[string]bool{}
	}
	h.used[name] = true
	s := strings.TrimSuffix(string(b), "\n")
	if h.Vars != nil && strings.Contains(s, "{{") {
		s = h.Vars.Replace(s)
	}
	return s
}

// Unused returns the names of the .txt files no Set took, for a test to
// catch a renamed command.
func (h *HelpFiles) Unused() (unused []string) {
	files, _ := fs.Glob(h.FS, "*.txt")
	for _, f := range files {
		if !h.used[f] {
			unused = append(unused, f)
		}
	}
	return unused
}
