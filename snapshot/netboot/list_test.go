package netboot

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/snapshot"
)

func TestListNodeConfigs(t *testing.T) {
	o := rhel5
	tftp := fakeTFTP(t, o)
	if got, err := ListNodeConfigs(tftp); err != nil || got != nil {
		t.Fatalf("empty TFTP tree: %v, %v", got, err)
	}
	nodes, err := snapshot.ParseNodes("nodes", strings.NewReader("10.8.226.73 node003\n10.8.136.1 node001\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteNodeConfigs(tftp, o, nodes, NodeOptions{}); err != nil {
		t.Fatal(err)
	}
	// Files that are not goldsync's node configs.
	for name, content := range map[string]string{
		"default":              "default local\n",
		"01-00-21-5e-40-64-5c": "default other\n",
		"0a088802":             "default lower\n",
		"0A088803":             "# no default, no append\n",
	} {
		if err := os.WriteFile(filepath.Join(tftp, PXELinuxDir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ListNodeConfigs(tftp)
	if err != nil {
		t.Fatal(err)
	}
	want := []NodeConfig{
		{IP: netip.MustParseAddr("10.8.136.1"), Snapshot: "node001", OS: o.Name, File: PXELinuxDir + "/0A088801"},
		{IP: netip.MustParseAddr("10.8.136.3"), File: PXELinuxDir + "/0A088803"},
		{IP: netip.MustParseAddr("10.8.226.73"), Snapshot: "node003", OS: o.Name, File: PXELinuxDir + "/0A08E249"},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("ListNodeConfigs (-want +got):\n%s", diff)
	}
}

func TestParseHexIP(t *testing.T) {
	for name, want := range map[string]string{
		"0A088801": "10.8.136.1", "0A08E249": "10.8.226.73", "FFFFFFFF": "255.255.255.255",
		"0a088801": "", "0A0888": "", "0A08880G": "", "default": "", "0A088801.bak": "",
	} {
		ip, ok := parseHexIP(name)
		if got := map[bool]string{true: ip.String(), false: ""}[ok]; got != want {
			t.Errorf("parseHexIP(%q) = %q, want %q", name, got, want)
		}
	}
}
