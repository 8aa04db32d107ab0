package snapshot

import (
	"bytes"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/imaging/tree"
)

// Seed corpora also live in testdata/fuzz/<Name>/.

// checkParsed holds for every parse: an error or items, never both; every
// error line names the file; every item is a valid, distinct tree path.
func checkParsed(t *testing.T, name string, items []Item, err error) {
	t.Helper()
	if err != nil {
		if items != nil {
			t.Fatalf("items and error: %v", err)
		}
		for line := range strings.SplitSeq(err.Error(), "\n") {
			if !strings.HasPrefix(line, name+":") {
				t.Fatalf("error line %q does not start with %q", line, name+":")
			}
		}
		return
	}
	seen := make(map[string]bool)
	for _, it := range items {
		if err := tree.ValidatePath(it.Path); err != nil || it.Path == tree.Root {
			t.Fatalf("accepted bad path %q: %v", it.Path, err)
		}
		if seen[it.Path] {
			t.Fatalf("duplicate path %q accepted", it.Path)
		}
		seen[it.Path] = true
		if !it.Kind.Valid() || !strings.HasPrefix(it.Source, name+":") {
			t.Fatalf("bad item %+v", it)
		}
		if it.Kind == KindDirs && !it.Dir {
			t.Fatalf("dirs item without Dir: %+v", it)
		}
	}
	merged, _ := MergeLists(items, items)
	if len(merged) != len(items) {
		t.Fatalf("merging a list with itself gave %d items, want %d", len(merged), len(items))
	}
}

func FuzzParseFiles(f *testing.F) {
	f.Add([]byte(DefaultFiles))
	f.Add([]byte(seedHeader + "/etc/ssh/ /var/log/\n/etc/../x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ParseFiles("files", bytes.NewReader(data))
		checkParsed(t, "files", items, err)
		for _, it := range items {
			if it.Kind != KindFiles {
				t.Fatalf("files item of kind %s", it.Kind)
			}
		}
	})
}

func FuzzParseRwtab(f *testing.F) {
	f.Add([]byte(rhelRwtab))
	f.Add([]byte("dirs\nfiles /a /b\nempty /\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ParseRwtab("rwtab", bytes.NewReader(data))
		checkParsed(t, "rwtab", items, err)
	})
}

func FuzzParseStatetab(f *testing.F) {
	f.Add([]byte("/etc/ssh\n# c\n/var/lib/nfs/\n"))
	f.Add([]byte("/a /b\nrel\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ParseStatetab("statetab", bytes.NewReader(data))
		checkParsed(t, "statetab", items, err)
	})
}

func FuzzParseNodes(f *testing.F) {
	f.Add([]byte("10.8.136.1 node001\n10.8.226.73 node003 00:21:5E:40:64:5C\n"))
	f.Add([]byte("fe80::1 x\n10.8.136.1 node001 node001\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := ParseNodes("nodes", bytes.NewReader(data))
		if err != nil {
			if nodes != nil {
				t.Fatalf("nodes and error: %v", err)
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, "nodes:") {
					t.Fatalf("error line %q does not name the file", line)
				}
			}
			return
		}
		if err := CheckNodes(nodes); err != nil {
			t.Fatalf("accepted nodes fail CheckNodes: %v", err)
		}
		for _, n := range nodes {
			if len(HexIP(n.IP)) != 8 {
				t.Fatalf("accepted %s, which has no pxelinux name", n.IP)
			}
			if err := tree.ValidatePath(n.Host); err != nil || strings.Contains(n.Host, "/") {
				t.Fatalf("host %q is not a safe snapshot directory name", n.Host)
			}
		}
	})
}
