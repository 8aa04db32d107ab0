package cluster_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/snapshot"
)

func TestAssignNodes(t *testing.T) {
	oses := []config.OS{
		{Name: "gpu", Nodes: []string{"gpu*", "viz01"}},
		{Name: "compute"}, // the rest
	}
	twice := []config.OS{
		{Name: "a", Nodes: []string{"n*"}},
		{Name: "b", Nodes: []string{"n1", "m1"}},
	}
	tests := []struct {
		name      string
		os        []config.OS
		hosts     []string
		want      map[string][]string
		unclaimed []string
		err       string
	}{
		{name: "patterns and the rest", os: oses, hosts: []string{"gpu01", "node01", "viz01", "node02"},
			want: map[string][]string{"gpu": {"gpu01", "viz01"}, "compute": {"node01", "node02"}}},
		{name: "no OS takes the rest", os: twice, hosts: []string{"x1", "m1"},
			want: map[string][]string{"b": {"m1"}}, unclaimed: []string{"x1"}},
		{name: "a node two OSes list", os: twice, hosts: []string{"n1"},
			err: "nodes:n1: node n1 is listed by several operating systems: a, b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nodes []snapshot.Node
			for i, h := range tt.hosts {
				nodes = append(nodes, snapshot.Node{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), Host: h, Source: "nodes:" + h})
			}
			byOS, unclaimed, err := cluster.AssignNodes(&config.Config{OS: tt.os}, nodes)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("AssignNodes: %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for name, ns := range byOS {
				for _, n := range ns {
					got[name] = append(got[name], n.Host)
				}
			}
			var un []string
			for _, n := range unclaimed {
				un = append(un, n.Host)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("AssignNodes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.unclaimed, un); diff != "" {
				t.Errorf("unclaimed (-want +got):\n%s", diff)
			}
		})
	}
}
