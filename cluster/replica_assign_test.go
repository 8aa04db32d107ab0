package cluster

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/snapshot"
)

func nodesN(from, n int) []snapshot.Node {
	var out []snapshot.Node
	for i := from; i < from+n; i++ {
		out = append(out, snapshot.Node{Host: fmt.Sprintf("n%04d", i), IP: netip.AddrFrom4([4]byte{10, 8, byte(i >> 8), byte(i)})})
	}
	return out
}

func imageWith(reps ...config.Replica) *config.Image {
	return &config.Image{Name: "img", Replicas: reps}
}

func TestAssignReplicasSpreadsEvenlyAndStably(t *testing.T) {
	img := imageWith(config.Replica{Name: "r1"}, config.Replica{Name: "r2"}, config.Replica{Name: "r3"})
	nodes := nodesN(0, 600)
	got, err := AssignReplicas(img, nodes)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range got {
		count[r]++
	}
	for _, r := range []string{"r1", "r2", "r3"} {
		// 200 each on average; a generous band, not a timing.
		if count[r] < 140 || count[r] > 260 {
			t.Errorf("replica %s got %d of 600 nodes: %v", r, count[r], count)
		}
	}
	// More nodes: none of the first moves.
	more, err := AssignReplicas(img, nodesN(0, 900))
	if err != nil {
		t.Fatal(err)
	}
	for h, r := range got {
		if more[h] != r {
			t.Errorf("node %s moved from %s to %s when nodes were added", h, r, more[h])
		}
	}
	// A fourth replica: nodes move only to it, about a quarter of them.
	img4 := imageWith(config.Replica{Name: "r1"}, config.Replica{Name: "r2"}, config.Replica{Name: "r3"}, config.Replica{Name: "r4"})
	four, err := AssignReplicas(img4, nodes)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for h, r := range got {
		if four[h] != r {
			moved++
			if four[h] != "r4" {
				t.Errorf("node %s moved from %s to %s, not to the new replica", h, r, four[h])
			}
		}
	}
	if moved < 90 || moved > 210 {
		t.Errorf("%d of 600 nodes moved to the new replica, want about 150", moved)
	}
	// The order of the replicas in the file does not matter.
	rev := imageWith(config.Replica{Name: "r3"}, config.Replica{Name: "r2"}, config.Replica{Name: "r1"})
	again, _ := AssignReplicas(rev, nodes)
	for h, r := range got {
		if again[h] != r {
			t.Fatalf("node %s: %s, with the replicas listed in another order %s", h, r, again[h])
		}
	}
}

func TestAssignReplicasExplicit(t *testing.T) {
	nodes := []snapshot.Node{{Host: "rack1-01"}, {Host: "rack1-02"}, {Host: "rack2-01"}, {Host: "login1"}}
	tests := []struct {
		name string
		img  *config.Image
		want map[string]string
		err  string
	}{
		{name: "no replicas: the primary",
			img:  imageWith(),
			want: map[string]string{"rack1-01": "", "rack1-02": "", "rack2-01": "", "login1": ""}},
		{name: "patterns, the rest stays on the primary",
			img:  imageWith(config.Replica{Name: "a", Nodes: []string{"rack1-*"}}, config.Replica{Name: "b", Nodes: []string{"rack2-*"}}),
			want: map[string]string{"rack1-01": "a", "rack1-02": "a", "rack2-01": "b", "login1": ""}},
		{name: "patterns, the rest spread",
			img:  imageWith(config.Replica{Name: "a", Nodes: []string{"rack1-*"}}, config.Replica{Name: "b"}),
			want: map[string]string{"rack1-01": "a", "rack1-02": "a", "rack2-01": "b", "login1": "b"}},
		{name: "two replicas claim a node",
			img: imageWith(config.Replica{Name: "a", Nodes: []string{"rack1-*"}}, config.Replica{Name: "b", Nodes: []string{"rack1-0[1]"}}),
			err: "node rack1-01 is listed by several replicas of image img: a, b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AssignReplicas(tt.img, nodes)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for h, w := range tt.want {
				if got[h] != w {
					t.Errorf("node %s on %q, want %q", h, got[h], w)
				}
			}
		})
	}
}

func TestUnmatchedReplicas(t *testing.T) {
	cfg := &config.Config{Path: "/etc/goldsync.toml", Cluster: config.Cluster{Nodes: "/etc/nodes"}}
	img := imageWith(
		config.Replica{Name: "r1", Nodes: []string{"rack1-*"}, Line: 12},
		config.Replica{Name: "r2", Nodes: []string{"rakc2-*", "rack3-0?"}, Line: 18},
		config.Replica{Name: "r3", Line: 24},
	)
	nodes := []snapshot.Node{{Host: "rack1-01"}, {Host: "rack2-01"}, {Host: "rack3-10"}}
	got := UnmatchedReplicas(cfg, img, nodes)
	want := []string{"/etc/goldsync.toml:18: image img replica r2: nodes rakc2-*, rack3-0? match none of the image's 3 nodes (nodes file /etc/nodes): it serves no node"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("UnmatchedReplicas:\n got %q\nwant %q", got, want)
	}
	if got := UnmatchedReplicas(cfg, img, append(nodes, snapshot.Node{Host: "rack3-01"})); len(got) != 0 {
		t.Errorf("every replica matches a node: %q", got)
	}
}
