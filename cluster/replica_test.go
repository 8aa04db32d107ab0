package cluster_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/sshtest"
	"github.com/goldsync/goldsync/internal/testbin"
	"github.com/goldsync/goldsync/internal/treetest"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

var bin string

func TestMain(m *testing.M) {
	testbin.Main(m, func(dir string) { bin = dir }, testbin.Goldsync)
}

// replicaSite is a site whose image has replicas, each an sshd on
// loopback with its own image dir, snapshot dir and TFTP root, and its
// own address in the boot files (10.77.0.1N).
type replicaSite struct {
	*site
	names []string
	srv   map[string]*sshtest.Server
	stop  map[string]func()
	// from maps a replica to the one that feeds it (tree fan-out).
	from map[string]string
	// patterns are a replica's node patterns.
	patterns map[string][]string
	// persist is the image's replica_ssh_persist.
	persist string
	// receiver, when set, is every replica's receiver command instead of
	// the test's goldsync.
	receiver string
}

func newReplicaSite(t *testing.T, names ...string) *replicaSite {
	s := &replicaSite{site: newSite(t, golden), names: names, srv: map[string]*sshtest.Server{}, stop: map[string]func(){}}
	// A golden tree with every kind of entry and attribute.
	if err := os.MkdirAll(filepath.Join(s.golden, "tricky"), 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.MakeTricky(t, filepath.Join(s.golden, "tricky"), treetest.TrickyOptions{NoLongPath: true})
	// Enough files that a change of a few dozen is a small part.
	for i := range 300 {
		put(t, filepath.Join(s.golden, fmt.Sprintf("usr/share/doc/pkg%02d/file%02d", i/10, i%10)), fmt.Sprintf("doc %d\n", i))
	}
	var nodes strings.Builder
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&nodes, "10.8.136.%d node%03d 52:54:00:00:00:%02x\n", i, i, i)
	}
	put(t, s.nodes, nodes.String())
	for _, n := range names {
		s.start(t, n)
		// The replica's admin makes the image's parent, as for a pull.
		if err := os.MkdirAll(s.replicaDir(n, ""), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// start starts (or restarts) the replica's sshd.
func (s *replicaSite) start(t *testing.T, name string) {
	t.Helper()
	srv, stop, err := sshtest.StartServer(filepath.Join(s.base, "sshd-"+name), sshtest.Options{})
	if errors.Is(err, sshtest.ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.srv[name], s.stop[name] = srv, stop
	t.Cleanup(stop)
}

func (s *replicaSite) replicaDir(name, what string) string {
	return filepath.Join(s.base, "replicas", name, what)
}

// config is the site's config with an OS and every replica.
func (s *replicaSite) config(t *testing.T) *config.Config {
	t.Helper()
	return s.configWith(t, "")
}

// configWith is config with tail after the image's replicas (more
// images).
func (s *replicaSite) configWith(t *testing.T, tail string) *config.Config {
	t.Helper()
	var extra strings.Builder
	extra.WriteString("os = \"rhel9compute\"\n")
	if s.persist != "" {
		fmt.Fprintf(&extra, "replica_ssh_persist = %q\n", s.persist)
	}
	for i, n := range s.names {
		srv := s.srv[n]
		fmt.Fprintf(&extra, "\n[[image.replica]]\nname = %q\nssh = %q\nrsh = %q\npath = %q\naddress = \"10.77.0.%d\"\nsnapshot_dir = %q\ntftpboot = %q\nreceiver = %q\n",
			n, srv.UserHost(), strings.Join(srv.SSHArgs(), " "), s.replicaDir(n, "root"), 11+i,
			s.replicaDir(n, "snapshot"), s.replicaDir(n, "tftpboot"), cmp.Or(s.receiver, filepath.Join(bin, "goldsync")))
		if f := s.from[n]; f != "" {
			fmt.Fprintf(&extra, "from = %q\n", f)
		}
		if ns := s.patterns[n]; ns != nil {
			fmt.Fprintf(&extra, "nodes = [%q]\n", strings.Join(ns, `", "`))
		}
	}
	extra.WriteString(tail)
	return s.site.config(t, false, extra.String())
}

// exact checks that every replica named holds exactly the primary's image:
// the tree scan (content, owners, modes, times, xattrs, hard links, holes)
// and stock rsync's dry run (-aHAXS, nothing to do).
func (s *replicaSite) exact(t *testing.T, names ...string) {
	t.Helper()
	want := treetest.Scan(t, s.root)
	for _, n := range names {
		root := s.replicaDir(n, "root")
		treetest.Equal(t, want, treetest.Scan(t, root), treetest.DiffOptions{CheckSparse: true})
		out, err := exec.Command("rsync", "-naHAXS", "--numeric-ids", "--delete", "-i", s.root+"/", root+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("rsync -n: %v\n%s", err, out)
		}
		if len(out) > 0 {
			t.Errorf("replica %s: rsync -n would change:\n%s", n, out)
		}
	}
}

// yum changes the golden tree as a package update does: a new package's
// files, a few updated ones, a removed one.
func yum(t *testing.T, s *replicaSite, round int) {
	t.Helper()
	for i := range 40 {
		put(t, filepath.Join(s.golden, fmt.Sprintf("usr/lib/pkg%d/file%02d", round, i)), strings.Repeat(fmt.Sprintf("pkg %d file %d\n", round, i), 50))
	}
	put(t, filepath.Join(s.golden, "usr/bin/tool"), strings.Repeat(fmt.Sprintf("tool v%d ", round), 120))
	put(t, filepath.Join(s.golden, "etc/tool.conf"), fmt.Sprintf("version = %d\n", round))
	if round > 1 {
		if err := os.RemoveAll(filepath.Join(s.golden, fmt.Sprintf("usr/lib/pkg%d", round-1))); err != nil {
			t.Fatal(err)
		}
	}
}

func replicaReport(t *testing.T, ir *cluster.ImageReport, name string) *cluster.ReplicaReport {
	t.Helper()
	for _, r := range ir.Replicas {
		if r.Replica == name {
			t.Logf("replica %s: %s, generation %d, full %v, sent %d entries, %d files, %d bytes; %s",
				r.Replica, r.Result, r.Generation, r.Full, r.Entries, r.Files, r.Bytes, r.Receiver)
			return r
		}
	}
	t.Fatalf("no report for replica %s: %+v", name, ir.Replicas)
	return nil
}

var scannedRE = regexp.MustCompile(`(\d+) entries scanned`)

// receiverScanned is what the replica's receiver says it scanned.
func receiverScanned(t *testing.T, r *cluster.ReplicaReport) int {
	t.Helper()
	m := scannedRE.FindStringSubmatch(r.Receiver)
	if m == nil {
		t.Fatalf("replica %s: no receiver summary in %q", r.Replica, r.Receiver)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// pxelinux returns a node's pxelinux config in a TFTP root.
func pxelinux(t *testing.T, tftp string, ip netip.Addr) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tftp, netboot.PXELinuxDir, snapshot.HexIP(ip)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestReplicasFanOut runs the cluster's sync against three replicas on
// loopback: the first sync fills them (full compare), a yum-size change
// reaches each one by the generations (the replica scans only the changed
// paths), a replica that is down is reported and the others are updated,
// its nodes boot from the primary meanwhile, and the next sync catches it
// up and routes them back.
func TestReplicasFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three sshds")
	}
	s := newReplicaSite(t, "r1", "r2", "r3")
	ctx := context.Background()
	run := func(wantOK bool) *cluster.ImageReport {
		t.Helper()
		rep, err := cluster.Run(ctx, s.config(t), cluster.Options{})
		if wantOK && err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rep == nil || len(rep.Images) != 1 {
			t.Fatalf("Run: %+v, %v", rep, err)
		}
		return rep.Images[0]
	}

	// 1. The first sync fills every replica with a full compare.
	ir := run(true)
	gen1 := ir.PullResult.Generation
	for _, n := range s.names {
		r := replicaReport(t, ir, n)
		if r.Result != cluster.ResultOK || !r.Full || r.Generation != gen1 {
			t.Errorf("first sync, replica %s: %+v, want ok, a full compare, generation %d", n, r, gen1)
		}
	}
	s.exact(t, s.names...)
	total := receiverScanned(t, replicaReport(t, ir, "r1"))

	// Each node boots from its replica: the primary's boot files and the
	// replica's own name the replica's address and paths, and the replica
	// built the node's snapshot from its own copy.
	cfg := s.config(t)
	byOS, _, err := cluster.Nodes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := cluster.Routes(cfg, byOS)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]int{}
	for _, n := range byOS["rhel9compute"] {
		r := routes[n.Host]
		if r.Replica == "" || r.Fallback {
			t.Fatalf("node %s: route %+v, want a replica", n.Host, r)
		}
		served[r.Replica]++
		img, _ := cfg.Image("rhel9")
		rep, _ := img.Replica(r.Replica)
		want := "nfsroot=" + rep.Address + ":" + rep.Path
		if got := pxelinux(t, s.tftp, n.IP); !strings.Contains(got, rep.Address+":") {
			t.Errorf("node %s: primary's pxelinux config does not name %s:\n%s", n.Host, rep.Address, got)
		}
		got := pxelinux(t, s.replicaDir(r.Replica, "tftpboot"), n.IP)
		if !strings.Contains(got, rep.Address+":"+s.replicaDir(r.Replica, "snapshot")+"/"+n.Host) && !strings.Contains(got, want) && !strings.Contains(got, "NFSROOT="+rep.Address) {
			t.Errorf("node %s: replica %s's pxelinux config does not route to it:\n%s", n.Host, r.Replica, got)
		}
		if _, err := os.Stat(filepath.Join(s.replicaDir(r.Replica, "snapshot"), n.Host, "var/log/messages")); err != nil {
			t.Errorf("node %s: no snapshot on replica %s: %v", n.Host, r.Replica, err)
		}
	}
	if len(served) < 2 {
		t.Errorf("nodes spread over %d replicas: %v", len(served), served)
	}
	next, err := cluster.DhcpdNextServers(cfg, snapshotNodes(byOS))
	if err != nil {
		t.Fatal(err)
	}
	for host, r := range routes {
		if next[host] != r.Server {
			t.Errorf("dhcpd next-server of %s: %q, want %q", host, next[host], r.Server)
		}
	}

	// 2. A yum-size change: journal-driven, by the generations.
	yum(t, s, 1)
	ir = run(true)
	for _, n := range s.names {
		r := replicaReport(t, ir, n)
		if r.Result != cluster.ResultOK || r.Full || r.Generation != ir.PullResult.Generation {
			t.Errorf("yum sync, replica %s: %+v, want ok by the generations at %d", n, r, ir.PullResult.Generation)
		}
		// The change is 43 paths and their parents; the image is more
		// than twice that.
		if got := receiverScanned(t, r); got >= total/2 || got > 60 {
			t.Errorf("replica %s scanned %d entries of %d for a 43-path change: not scoped", n, got, total)
		}
	}
	s.exact(t, s.names...)

	// 3. One replica unreachable: the others are updated, the run is
	// partial, the replica's nodes boot from the primary.
	s.stop["r3"]()
	yum(t, s, 2)
	rep, err := cluster.Run(ctx, s.config(t), cluster.Options{})
	if !errors.Is(err, cluster.ErrReplica) || !errors.Is(err, imaging.ErrPartial) || cluster.StepOf(err) != cluster.StepReplica {
		t.Fatalf("Run with r3 down: %v, want a partial replica error", err)
	}
	ir = rep.Images[0]
	if ir.Result != cluster.ResultPartial {
		t.Errorf("result %s, want partial", ir.Result)
	}
	gen3 := ir.PullResult.Generation
	if r := replicaReport(t, ir, "r3"); r.Result != cluster.ResultFailed || !strings.Contains(r.Error, "r3") {
		t.Errorf("r3: %+v, want failed", r)
	}
	s.exact(t, "r1", "r2")
	st, err := cluster.Status(cfg, cluster.StatusOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rs := range st[0].Replicas {
		switch {
		case rs.Replica == "r3" && (!rs.Down || rs.Behind != 1 || rs.LastError == "" || rs.LagSeconds <= 0):
			t.Errorf("status of r3 while down: %+v", rs)
		case rs.Replica != "r3" && (rs.Down || rs.Behind != 0 || rs.Generation != gen3):
			t.Errorf("status of %s: %+v, want up to date at %d", rs.Replica, rs, gen3)
		}
	}
	if rec, err := cluster.LoadRecord(s.stateDir); err != nil || rec.Replicas["r1"] != gen3 || rec.Replicas["r3"] >= gen3 {
		t.Errorf("status record's replica generations %v (%v), want r1 at %d and r3 behind", rec.Replicas, err, gen3)
	}
	routes, _ = cluster.Routes(cfg, byOS)
	for _, n := range byOS["rhel9compute"] {
		r := routes[n.Host]
		if r.Assigned != "r3" {
			continue
		}
		if !r.Fallback || r.Server != "10.8.0.2" {
			t.Errorf("node %s of r3 while down: %+v, want the primary", n.Host, r)
		}
		if got := pxelinux(t, s.tftp, n.IP); !strings.Contains(got, "10.8.0.2:"+s.root) && !strings.Contains(got, "NFSROOT=10.8.0.2:") {
			t.Errorf("node %s of r3 while down: primary's pxelinux config:\n%s", n.Host, got)
		}
	}

	// 4. r3 is back: the next sync (the golden node unchanged) catches it
	// up with one full compare and routes its nodes back to it; the
	// others, up to date, get an empty change set.
	s.start(t, "r3")
	ir = run(true)
	if r := replicaReport(t, ir, "r3"); r.Result != cluster.ResultOK || r.Generation != gen3 || !r.Full {
		t.Errorf("r3 back: %+v, want a full compare to %d", r, gen3)
	}
	if r := replicaReport(t, ir, "r1"); r.Full || r.Files != 0 || receiverScanned(t, r) > 1 {
		t.Errorf("r1, up to date: %+v, want only the root scanned", r)
	}
	s.exact(t, s.names...)
	cfg = s.config(t)
	routes, _ = cluster.Routes(cfg, byOS)
	for _, r := range routes {
		if r.Fallback {
			t.Errorf("node %s still falls back: %+v", r.Node, r)
		}
	}
	st, _ = cluster.Status(cfg, cluster.StatusOptions{})
	for _, rs := range st[0].Replicas {
		if rs.Down || rs.Behind != 0 || rs.LastResult != cluster.ResultOK {
			t.Errorf("status of %s after catching up: %+v", rs.Replica, rs)
		}
	}
}

func snapshotNodes(byOS map[string][]snapshot.Node) []snapshot.Node {
	var out []snapshot.Node
	for _, ns := range byOS {
		out = append(out, ns...)
	}
	return out
}
