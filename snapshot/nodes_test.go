package snapshot

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestParseNodes(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Node
		wantErr []string
	}{
		{name: "empty"},
		{
			name: "seed shape, with and without MAC",
			in: "# IP hostname [MAC]\n" +
				"10.8.136.1\tnode001\n" +
				"10.8.226.73 node003 00:21:5E:40:64:5C   # diskless client\n" +
				"\n" +
				"10.8.226.74 node004.cluster.example 00-21-5e-40-63-c8\n" +
				"10.8.226.75 NODE005 0021.5e40.63c9\r\n",
			want: []Node{
				{IP: netip.MustParseAddr("10.8.136.1"), Host: "node001", Source: "nodes:2"},
				{IP: netip.MustParseAddr("10.8.226.73"), Host: "node003", MAC: mac("00:21:5e:40:64:5c"), Source: "nodes:3"},
				{IP: netip.MustParseAddr("10.8.226.74"), Host: "node004.cluster.example", MAC: mac("00:21:5e:40:63:c8"), Source: "nodes:5"},
				{IP: netip.MustParseAddr("10.8.226.75"), Host: "NODE005", MAC: mac("00:21:5e:40:63:c9"), Source: "nodes:6"},
			},
		},
		{name: "one field", in: "10.8.136.1\n", wantErr: []string{"nodes:1: 1 fields, want IP HOSTNAME [MAC]"}},
		{name: "hosts-file aliases", in: "10.8.136.1 node001 node001.cluster alias\n", wantErr: []string{"nodes:1: 4 fields, want IP HOSTNAME [MAC]"}},
		{name: "alias where the MAC goes", in: "10.8.136.1 node001.cluster node001\n", wantErr: []string{`nodes:1: "node001" is not a MAC address`}},
		{name: "IPv6", in: "fe80::1 node001\n", wantErr: []string{"nodes:1: IPv6 address fe80::1: not supported, pxelinux names config files by IPv4 address"}},
		{name: "IPv4-mapped IPv6", in: "::ffff:10.8.136.1 node001\n", wantErr: []string{"nodes:1: IPv4-mapped IPv6 address ::ffff:10.8.136.1: write it as 10.8.136.1"}},
		{name: "bad IP", in: "10.8.136 node001\n", wantErr: []string{`nodes:1: "10.8.136" is not an IPv4 address`}},
		{name: "leading zero", in: "010.8.136.1 node001\n", wantErr: []string{`nodes:1: "010.8.136.1" is not an IPv4 address`}},
		{name: "columns swapped", in: "node001 10.8.136.1\n", wantErr: []string{`nodes:1: "node001" is not an IPv4 address`, `bad host name "10.8.136.1": an IP address, not a name`}},
		{name: "unspecified", in: "0.0.0.0 node001\n", wantErr: []string{"nodes:1: IP address 0.0.0.0 is not a host address"}},
		{name: "broadcast", in: "255.255.255.255 node001\n", wantErr: []string{"is not a host address"}},
		{name: "loopback", in: "127.0.0.1 node001\n", wantErr: []string{"is not a host address"}},
		{name: "multicast", in: "224.0.0.1 node001\n", wantErr: []string{"is not a host address"}},
		{name: "underscore", in: "10.8.136.1 node_001\n", wantErr: []string{`nodes:1: bad host name "node_001": character '_' not allowed`}},
		{name: "leading hyphen", in: "10.8.136.1 -node\n", wantErr: []string{`bad host name "-node": label starts or ends with a hyphen`}},
		{name: "empty label", in: "10.8.136.1 node..x\n", wantErr: []string{`bad host name "node..x": empty label`}},
		{name: "trailing dot", in: "10.8.136.1 node.\n", wantErr: []string{"empty label"}},
		{name: "label too long", in: "10.8.136.1 " + strings.Repeat("a", 64) + "\n", wantErr: []string{"label longer than 63 bytes"}},
		{name: "name too long", in: "10.8.136.1 " + strings.Repeat("abcdefg.", 32) + "x\n", wantErr: []string{"longer than 253 bytes"}},
		{name: "slash in name", in: "10.8.136.1 a/etc\n", wantErr: []string{"character '/' not allowed"}},
		{name: "bad MAC", in: "10.8.136.1 node001 00:21:5E:40:64\n", wantErr: []string{`nodes:1: "00:21:5E:40:64" is not a MAC address`}},
		{name: "EUI-64", in: "10.8.136.1 node001 02:00:5e:10:00:00:00:01\n", wantErr: []string{"nodes:1: MAC 02:00:5e:10:00:00:00:01 is 8 bytes long, want a 6-byte Ethernet address"}},
		{name: "multicast MAC", in: "10.8.136.1 node001 01:00:5E:00:00:01\n", wantErr: []string{"MAC 01:00:5E:00:00:01 is a multicast or broadcast address"}},
		{name: "broadcast MAC", in: "10.8.136.1 node001 ff:ff:ff:ff:ff:ff\n", wantErr: []string{"is a multicast or broadcast address"}},
		{name: "zero MAC", in: "10.8.136.1 node001 00:00:00:00:00:00\n", wantErr: []string{"is all zeros"}},
		{
			name:    "duplicate IP",
			in:      "10.8.136.1 node001\n10.8.136.1 node002\n",
			wantErr: []string{"nodes:2: IP address 10.8.136.1 already used at nodes:1 (node001)"},
		},
		{
			name:    "duplicate host, any case",
			in:      "10.8.136.1 node001\n10.8.136.2 Node001\n",
			wantErr: []string{"nodes:2: host name Node001 already used at nodes:1 (10.8.136.1)"},
		},
		{
			name:    "duplicate MAC, any spelling",
			in:      "10.8.136.1 node001 00:21:5E:40:64:5C\n10.8.136.2 node002 00-21-5e-40-64-5c\n",
			wantErr: []string{"nodes:2: MAC 00:21:5E:40:64:5C already used at nodes:1 (node001)"},
		},
		{
			name: "every error is reported",
			in: "10.8.136.1 node001\n" +
				"fe80::1 node002\n" +
				"10.8.136.3 node_3\n" +
				"10.8.136.1 node004 xx\n" +
				"10.8.136.1 node001\n",
			wantErr: []string{
				"nodes:2: IPv6 address",
				"nodes:3: bad host name",
				`nodes:4: "xx" is not a MAC address`,
				"nodes:5: IP address 10.8.136.1 already used at nodes:1",
				"nodes:5: host name node001 already used at nodes:1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNodes("nodes", strings.NewReader(tt.in))
			wantErrs(t, err, tt.wantErr)
			if err != nil && got != nil {
				t.Errorf("nodes returned with an error: %v", got)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("ParseNodes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseNodesLineErrors(t *testing.T) {
	_, err := ParseNodes("nodes", strings.NewReader("10.8.136.1 node001\nfe80::1 x\n\nbad y\n"))
	var lines []int
	var join interface{ Unwrap() []error }
	if !errors.As(err, &join) {
		t.Fatalf("error %v is not joined", err)
	}
	for _, e := range join.Unwrap() {
		var le *LineError
		if !errors.As(e, &le) {
			t.Fatalf("%v is not a *LineError", e)
		}
		lines = append(lines, le.Line)
	}
	if diff := cmp.Diff([]int{2, 4}, lines); diff != "" {
		t.Errorf("error lines (-want +got):\n%s", diff)
	}
}

func TestCheckNodes(t *testing.T) {
	ip := netip.MustParseAddr
	tests := []struct {
		name    string
		nodes   []Node
		wantErr []string
	}{
		{name: "none"},
		{name: "good", nodes: []Node{
			{IP: ip("10.0.0.1"), Host: "a", MAC: mac("00:21:5e:40:64:5c")},
			{IP: ip("10.0.0.2"), Host: "b"},
		}},
		{name: "zero node", nodes: []Node{{}}, wantErr: []string{"node 1: missing IP address", `bad host name "": empty`}},
		{name: "IPv6", nodes: []Node{{IP: ip("2001:db8::1"), Host: "a"}}, wantErr: []string{"node 1 (a): IPv6 address 2001:db8::1"}},
		{name: "short MAC", nodes: []Node{{IP: ip("10.0.0.1"), Host: "a", MAC: net.HardwareAddr{1, 2}}}, wantErr: []string{"node 1 (a): MAC 01:02 is 2 bytes long"}},
		{name: "duplicates name the source", nodes: []Node{
			{IP: ip("10.0.0.1"), Host: "a", Source: "nodes:1"},
			{IP: ip("10.0.0.1"), Host: "A", Source: "nodes:7"},
		}, wantErr: []string{
			"nodes:7: IP address 10.0.0.1 already used at nodes:1 (a)",
			"nodes:7: host name A already used at nodes:1 (10.0.0.1)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrs(t, CheckNodes(tt.nodes), tt.wantErr)
		})
	}
}

func TestHexIP(t *testing.T) {
	tests := []struct {
		ip   netip.Addr
		want string
	}{
		{netip.MustParseAddr("10.8.136.1"), "0A088801"},
		{netip.MustParseAddr("10.8.226.73"), "0A08E249"},
		{netip.MustParseAddr("10.8.136.128"), "0A088880"},
		{netip.MustParseAddr("192.168.0.255"), "C0A800FF"},
		{netip.MustParseAddr("1.2.3.4"), "01020304"},
		{netip.MustParseAddr("::ffff:10.8.136.1"), "0A088801"},
		{netip.MustParseAddr("fe80::1"), ""},
		{netip.Addr{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.ip.String(), func(t *testing.T) {
			if got := HexIP(tt.ip); got != tt.want {
				t.Errorf("HexIP(%s) = %q, want %q", tt.ip, got, tt.want)
			}
		})
	}
}
