package config

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary files to the loader (Parse, which Load calls
// after reading the file): it must never panic, must report problems as
// *Error values at lines inside the file, and what it accepts must hold
// the promises Load makes.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(minimal))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, e := range unjoin(err) {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Fatalf("not a *config.Error: %v", e)
				}
				if ce.Line < 0 || ce.Line > lines {
					t.Fatalf("line %d outside the file's %d lines: %v", ce.Line, lines, e)
				}
			}
			return
		}
		names := map[string]bool{}
		for _, img := range c.Images {
			if names[img.Name] {
				t.Fatalf("duplicate image %s accepted", img.Name)
			}
			names[img.Name] = true
			if checkName(img.Name) != nil {
				t.Fatalf("bad image name %q accepted", img.Name)
			}
			for _, p := range []string{img.Root, img.StateDir} {
				if !filepath.IsAbs(p) || filepath.Clean(p) != p {
					t.Fatalf("image %s: path %q accepted", img.Name, p)
				}
			}
			if within(img.StateDir, img.Root) {
				t.Fatalf("image %s: state dir %s inside %s accepted", img.Name, img.StateDir, img.Root)
			}
			if img.Streams < 1 || img.Rsh == "" || strings.TrimSpace(img.Source) == "" {
				t.Fatalf("image %s: defaults not filled: %+v", img.Name, img)
			}
		}
		for _, o := range c.OS {
			if !names[o.Image] {
				t.Fatalf("OS %s boots unknown image %q", o.Name, o.Image)
			}
			if o.NFSServer == "" || o.SnapshotDir == "" || o.Location == "" {
				t.Fatalf("OS %s: defaults not filled: %+v", o.Name, o)
			}
		}
	})
}
