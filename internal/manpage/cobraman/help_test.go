package cobraman

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/spf13/cobra"
)

func TestSetHelp(t *testing.T) {
	root := &cobra.Command{Use: "tool", Long: "old root"}
	add := &cobra.Command{Use: "add NAME", Long: "old add", Run: func(*cobra.Command, []string) {}}
	list := &cobra.Command{Use: "list", Long: "kept", Run: func(*cobra.Command, []string) {}}
	osCmd := &cobra.Command{Use: "os"}
	osCmd.AddCommand(add, list)
	root.AddCommand(osCmd)
	fsys := fstest.MapFS{
		"tool.txt":           {Data: []byte("Tool does {{what}}.\n\n")},
		"os-add.txt":         {Data: []byte("Add adds.\n")},
		"os-add.example.txt": {Data: []byte("  tool os add x\n")},
		"os-gone.txt":        {Data: []byte("a command renamed away\n")},
	}
	unused := SetHelp(root, fsys, strings.NewReplacer("{{what}}", "things"))
	for _, c := range []struct {
		name, got, want string
	}{
		{"root Long (one newline dropped, placeholder filled)", root.Long, "Tool does things.\n"},
		{"os add Long", add.Long, "Add adds."},
		{"os add Example", add.Example, "  tool os add x"},
		{"os list Long (no file: kept)", list.Long, "kept"},
		{"os Long (no file, none before)", osCmd.Long, ""},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if len(unused) != 1 || unused[0] != "os-gone.txt" {
		t.Errorf("unused = %q, want [os-gone.txt]", unused)
	}
}
