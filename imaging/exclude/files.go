package exclude

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Pattern is an exclude pattern with where it came from (a flag, or a
// file and line), for errors.
type Pattern struct {
	Text, From string
}

// ReadFiles reads exclude files as rsync's --exclude-from does: one
// pattern a line, leading and trailing blanks trimmed, blank lines and
// lines starting with # or ; skipped. Each pattern is From "name:line".
func ReadFiles(names []string) ([]Pattern, error) {
	var out []Pattern
	for _, name := range names {
		fh, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
				continue
			}
			out = append(out, Pattern{Text: line, From: fmt.Sprintf("%s:%d", name, n)})
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return out, nil
}

// Check checks the patterns one by one (as New would take them) and
// returns their texts; the first bad one is an error naming where it came
// from: "FROM: bad exclude pattern "P": why".
func Check(ps []Pattern) ([]string, error) {
	var out []string
	for _, p := range ps {
		if _, err := New([]string{p.Text}); err != nil {
			var pe *PatternError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("%s: bad exclude pattern %q: %v", p.From, p.Text, err)
		}
		out = append(out, p.Text)
	}
	return out, nil
}

// Gather checks the patterns of --exclude flags (each from "--exclude
// #N") and of --exclude-from files (each from "name:line") one by one,
// and returns them in that order; the error of a bad one names where it
// came from.
func Gather(patterns, files []string) ([]string, error) {
	var all []Pattern
	for i, p := range patterns {
		all = append(all, Pattern{Text: p, From: fmt.Sprintf("--exclude #%d", i+1)})
	}
	from, err := ReadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("exclude-from: %w", err)
	}
	return Check(append(all, from...))
}
