package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestNodesFromArgs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "nodes")
	if err := os.WriteFile(file, []byte("10.0.0.5 n5\n10.0.0.6 n6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		file    string
		args    []string
		want    int // nodes
		wantErr error
	}{
		{name: "file", file: file, want: 2},
		{name: "args", args: []string{"10.0.0.7", "n7"}, want: 1},
		{name: "args with MAC", args: []string{"10.0.0.7", "n7", "52:54:00:12:34:56"}, want: 1},
		{name: "both", file: file, args: []string{"10.0.0.7", "n7"}, wantErr: ErrNodes},
		{name: "neither", wantErr: ErrNodes},
		{name: "one arg", args: []string{"10.0.0.7"}, wantErr: ErrNodes},
		{name: "bad IP", args: []string{"not-an-ip", "n7"}, wantErr: ErrNodes},
		{name: "missing file", file: file + ".missing", wantErr: os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, err := NodesFromArgs(tc.file, tc.args)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("NodesFromArgs: %v, want an error wrapping %v", err, tc.wantErr)
				}
				if tc.wantErr == os.ErrNotExist && errors.Is(err, ErrNodes) {
					t.Fatalf("NodesFromArgs: %v wraps ErrNodes: an unreadable file is no wrong line", err)
				}
				return
			}
			if err != nil || len(nodes) != tc.want {
				t.Fatalf("NodesFromArgs: %d nodes, %v; want %d nodes", len(nodes), err, tc.want)
			}
		})
	}
}
