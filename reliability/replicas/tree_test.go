//go:build linux

package replicas

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/internal/netlab"
)

// degree2 is a tree of degree 2 over the lab's 8 replicas: the primary
// feeds r1 and r2, r1 feeds r3 and r4, r2 feeds r5 and r6, r3 feeds r7
// and r8.
var degree2 = map[string]string{"r3": "r1", "r4": "r1", "r5": "r2", "r6": "r2", "r7": "r3", "r8": "r3"}

// primarySent is what the primary has sent on the lab's bridge so far
// (/proc/net/dev, the namespace's own view): the bridge's own transmit
// counter counts what the primary's stack sends, not what the bridge
// forwards between replicas.
func primarySent(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "lab0" {
			continue
		}
		// rx: bytes packets errs drop fifo frame compressed multicast;
		// then tx bytes.
		f := strings.Fields(rest)
		if len(f) < 9 {
			break
		}
		n, err := strconv.ParseInt(f[8], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Fatalf("no lab0 in /proc/self/net/dev:\n%s", b)
	return 0
}

// vias checks that every replica was updated ok, fed as tree says (""
// for the primary), except those in override, fed as it says.
func vias(t *testing.T, ir *cluster.ImageReport, tree map[string]string, override map[string]string, full bool) {
	t.Helper()
	for _, r := range ir.Replicas {
		want, ok := override[r.Replica]
		if !ok {
			want = tree[r.Replica]
		}
		if r.Result != cluster.ResultOK || r.Via != want || r.Full != full {
			t.Errorf("replica %s: %+v, want ok via %q (full %v)", r.Replica, r, want, full)
		}
	}
}

// TestReplicaTreeInTheLab feeds the lab's 8 replicas as a tree of degree 2
// (from = "..." in the config): every replica is exact after the first sync
// and after a yum-size change; the primary itself sends the change to the
// first level only, about a quarter of what it sends to feed all 8 flat
// (counted on the bridge); the children's sshds saw their parents log in;
// an unplugged interior replica is reported (exit 23) while its children
// are fed by the primary and its grandchildren still by their parent, and
// when it is back it catches up and feeds its children again.
func TestReplicaTreeInTheLab(t *testing.T) {
	s := newSite(t)
	reps := s.lab.Replicas
	steps := []struct {
		name string
		fn   func(t *testing.T, s *site)
	}{
		{"the first sync fills the tree", func(t *testing.T, s *site) {
			s.writeConfig(t, degree2)
			ir := s.sync(t, 0)
			vias(t, ir, degree2, nil, true)
			s.exact(t, reps...)
			for child, parent := range degree2 {
				if log := s.host(t, child).SSH.Log(); !strings.Contains(log, "from "+s.host(t, parent).Addr+" ") {
					t.Errorf("%s's sshd saw no login from its parent %s", child, parent)
				}
			}
		}},
		{"the primary sends a change to the first level only", func(t *testing.T, s *site) {
			const size = 64 << 10
			change := int64(60 * size)
			s.writeConfig(t, nil)
			s.yum(t, 1, size)
			before := primarySent(t)
			ir := s.sync(t, 0)
			flat := primarySent(t) - before
			vias(t, ir, nil, nil, false)
			s.exact(t, reps...)

			s.writeConfig(t, degree2)
			s.yum(t, 2, size)
			before = primarySent(t)
			ir = s.sync(t, 0)
			tree := primarySent(t) - before
			vias(t, ir, degree2, nil, false)
			s.exact(t, reps...)
			var fromPrimary int64
			for _, r := range ir.Replicas {
				if r.Via == "" {
					fromPrimary += r.Bytes
				}
				if r.Bytes < change {
					t.Errorf("replica %s got %d content bytes of a %d-byte change", r.Replica, r.Bytes, change)
				}
			}
			t.Logf("a %d-byte change: the primary sent %d bytes on the wire flat, %d as a tree of degree 2 (%.2fx); content bytes it pushed in the tree: %d",
				change, flat, tree, float64(flat)/float64(tree), fromPrimary)
			if fromPrimary > 2*change+change/2 {
				t.Errorf("the primary pushed %d content bytes in the tree, want about 2 x %d (its two children)", fromPrimary, change)
			}
			if tree*3 > flat || tree > 3*change {
				t.Errorf("the primary sent %d bytes as a tree, %d flat, for a %d-byte change: want the tree under a third of flat and under 3x the change", tree, flat, change)
			}
		}},
		{"an interior replica unplugged: its children are fed by the primary", func(t *testing.T, s *site) {
			victim := reps[0] // r1: feeds r3 and r4; r3 feeds r7 and r8
			if err := victim.Down(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { victim.Up() })
			s.yum(t, 3, 4096)
			ir := s.syncReport(t, s.gs(t, "--json", "sync"), exitPartial)
			var others []*netlab.Host
			for _, r := range ir.Replicas {
				if r.Replica == victim.Name {
					if r.Result != cluster.ResultFailed || r.Via != "" {
						t.Errorf("replica %s, unplugged: %+v, want failed", r.Replica, r)
					}
					continue
				}
				want := degree2[r.Replica]
				if want == victim.Name {
					want = ""
				}
				if r.Result != cluster.ResultOK || r.Via != want || r.Full {
					t.Errorf("replica %s: %+v, want ok via %q by the generations", r.Replica, r, want)
				}
				others = append(others, s.host(t, r.Replica))
			}
			s.exact(t, others...)

			if err := victim.Up(); err != nil {
				t.Fatal(err)
			}
			ir = s.sync(t, 0)
			for _, r := range ir.Replicas {
				full := r.Replica == victim.Name
				if r.Result != cluster.ResultOK || r.Via != degree2[r.Replica] || r.Full != full {
					t.Errorf("replica %s after %s came back: %+v, want ok via %q (full %v)", r.Replica, victim.Name, r, degree2[r.Replica], full)
				}
			}
			s.exact(t, reps...)
			for _, rs := range s.status(t).Replicas {
				if rs.Down || rs.Behind != 0 || rs.Via != degree2[rs.Replica] {
					t.Errorf("status of %s: %+v, want up to date, fed via %q", rs.Replica, rs, degree2[rs.Replica])
				}
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { st.fn(t, s) }) {
			t.Fatalf("step %q failed: the later steps need it", st.name)
		}
	}
}
