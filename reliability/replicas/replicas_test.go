//go:build linux

package replicas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/netlab"
	"github.com/goldsync/goldsync/internal/testbin"
	"github.com/goldsync/goldsync/internal/treetest"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// bin holds goldsync and goldsync-agent.
var bin string

func TestMain(m *testing.M) {
	if err := netlab.Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "replicas: the lab tests will skip:", err)
	}
	testbin.Main(m, func(d string) { bin = d }, testbin.Goldsync, testbin.Agent)
}

// exitPartial is goldsync's exit code of a partial run (rsync's 23).
const exitPartial = 23

// runTimeout bounds every goldsync run: a hung run fails the test.
const runTimeout = 5 * time.Minute

// site is a lab with a cluster config: the golden node's tree, the
// primary's image and boot files, and 8 replicas, each with its image,
// snapshot dir and TFTP root in its own directory.
type site struct {
	lab    *netlab.Lab
	golden string // the golden node's tree
	root   string // the primary's image
	tftp   string // the primary's TFTP root
	nodes  string // the nodes file
	config string // the config file
	// persist is the image's replica_ssh_persist ("": the run's own
	// ssh connections).
	persist string
	// receiver is the receiver command of the replicas it names (else
	// the goldsync under test).
	receiver map[string]string
}

// newSite builds the lab and the golden tree: every kind of entry and
// attribute (treetest.MakeTricky), a kernel and initramfs for the OS, and
// enough files that a yum-size change is a small part of the image.
func newSite(t *testing.T) *site {
	t.Helper()
	return newSiteWith(t, netlab.MaxReplicas)
}

// newSiteWith is newSite with n replicas.
func newSiteWith(t *testing.T, n int) *site {
	t.Helper()
	l := netlab.New(t, netlab.Options{Replicas: n})
	s := &site{lab: l, golden: filepath.Join(l.Golden.Root, "tree"),
		root: filepath.Join(l.Primary.Root, "images/rhel9/root"), tftp: filepath.Join(l.Primary.Root, "tftpboot"),
		nodes: filepath.Join(l.Primary.Root, "nodes"), config: filepath.Join(l.Primary.Root, "goldsync.toml")}
	for p, c := range map[string]string{
		"boot/vmlinuz-5.14.0-427.el9":       "kernel",
		"boot/initramfs-5.14.0-427.el9.img": "initramfs",
		"etc/hostname":                      "golden\n",
		"var/log/messages":                  "boot\n",
		"usr/bin/tool":                      strings.Repeat("tool ", 100),
	} {
		put(t, filepath.Join(s.golden, p), c)
	}
	if err := os.MkdirAll(filepath.Join(s.golden, "tricky"), 0o755); err != nil {
		t.Fatal(err)
	}
	treetest.MakeTricky(t, filepath.Join(s.golden, "tricky"), treetest.TrickyOptions{NoLongPath: true})
	for i := range 400 {
		put(t, filepath.Join(s.golden, fmt.Sprintf("usr/share/doc/pkg%02d/file%02d", i/10, i%10)), fmt.Sprintf("doc %d\n", i))
	}
	// 16 nodes: two a replica.
	var nodes strings.Builder
	for i := 1; i <= 16; i++ {
		fmt.Fprintf(&nodes, "10.8.136.%d node%03d 52:54:00:00:00:%02x\n", i, i, i)
	}
	put(t, s.nodes, nodes.String())
	// The golden node's agent keeps its state in the golden host's own
	// directory.
	agent := filepath.Join(l.Golden.Root, "goldsync-agent")
	put(t, agent, fmt.Sprintf("#!/bin/sh\nexec %s --state-dir %s \"$@\"\n", filepath.Join(bin, "goldsync-agent"), filepath.Join(l.Golden.Root, "agent-state")))
	if err := os.Chmod(agent, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(s.root), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range l.Replicas {
		// The replica's admin makes the image's parent, as for a pull.
		if err := os.MkdirAll(filepath.Join(r.Root, "images/rhel9"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.writeConfig(t, nil)
	return s
}

// writeConfig writes the site's config: the image and its 8 replicas,
// each fed by the replica from names (tree fan-out), else by the primary.
// Every host of the lab shares the lab's key files, so the ssh command the
// primary uses for a replica works on its parent too.
func (s *site) writeConfig(t *testing.T, from map[string]string) {
	t.Helper()
	l := s.lab
	agent := filepath.Join(l.Golden.Root, "goldsync-agent")
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[cluster]\ntftpboot = %q\nnodes = %q\nnfs_server = %q\n\n", s.tftp, s.nodes, netlab.PrimaryAddr)
	fmt.Fprintf(&cfg, "[[image]]\nname = \"rhel9\"\nsource = %q\nroot = %q\nrsh = %q\nagent_path = %q\nos = \"rhel9compute\"\n",
		l.Golden.Target(s.golden), s.root, l.Rsh(), agent)
	if s.persist != "" {
		fmt.Fprintf(&cfg, "replica_ssh_persist = %q\n", s.persist)
	}
	for _, r := range l.Replicas {
		recv := filepath.Join(bin, "goldsync")
		if c := s.receiver[r.Name]; c != "" {
			recv = c
		}
		fmt.Fprintf(&cfg, "\n[[image.replica]]\nname = %q\nssh = %q\npath = %q\nsnapshot_dir = %q\ntftpboot = %q\nreceiver = %q\n",
			r.Name, r.UserHost(), replicaRoot(r), filepath.Join(r.Root, "images/rhel9/snapshot"), filepath.Join(r.Root, "tftpboot"), recv)
		if f := from[r.Name]; f != "" {
			fmt.Fprintf(&cfg, "from = %q\n", f)
		}
	}
	put(t, s.config, cfg.String())
}

// replicaRoot is the image on replica r.
func replicaRoot(r *netlab.Host) string { return filepath.Join(r.Root, "images/rhel9/root") }

func put(t testing.TB, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replace writes a new version of a file as rpm and dpkg do: a new inode
// renamed over the old one.
func replace(t testing.TB, p, content string) {
	t.Helper()
	put(t, p+".new", content)
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
}

// yum changes the golden tree as a package update does: 60 new files in a
// new package directory (size bytes each), 5 files replaced by new
// versions, 3 deleted.
func (s *site) yum(t *testing.T, round, size int) {
	t.Helper()
	for i := range 60 {
		line := fmt.Sprintf("pkg %d file %d\n", round, i)
		put(t, filepath.Join(s.golden, fmt.Sprintf("usr/lib/pkg%d/file%02d", round, i)), strings.Repeat(line, size/len(line)+1))
	}
	replace(t, filepath.Join(s.golden, "usr/bin/tool"), strings.Repeat(fmt.Sprintf("tool v%d ", round), 120))
	replace(t, filepath.Join(s.golden, "etc/tool.conf"), fmt.Sprintf("version = %d\n", round))
	for i := range 3 {
		replace(t, filepath.Join(s.golden, fmt.Sprintf("usr/share/doc/pkg%02d/file%02d", round, i)), fmt.Sprintf("doc %d v%d\n", i, round))
		if err := os.Remove(filepath.Join(s.golden, fmt.Sprintf("usr/share/doc/pkg%02d/file%02d", 20+round, i))); err != nil {
			t.Fatal(err)
		}
	}
}

// exact checks that each replica holds exactly the golden node's tree: the
// tree scan (content, owners, modes, times, xattrs, hard links, holes) and
// stock rsync's dry run (-aHAXS --delete lists nothing).
func (s *site) exact(t *testing.T, reps ...*netlab.Host) {
	t.Helper()
	want := treetest.Scan(t, s.golden)
	for _, r := range reps {
		root := replicaRoot(r)
		if d := treetest.Diff(want, treetest.Scan(t, root), treetest.DiffOptions{CheckSparse: true}); len(d) > 0 {
			t.Errorf("replica %s differs from the golden tree:\n%s", r.Name, strings.Join(d, "\n"))
		}
		out, err := exec.Command("rsync", "-naHAXS", "--numeric-ids", "--delete", "-i", s.golden+"/", root+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("rsync -n: %v\n%s", err, out)
		}
		if len(out) > 0 {
			t.Errorf("replica %s: rsync -n against the golden tree would change:\n%s", r.Name, out)
		}
	}
}

// run is one goldsync run: its exit code, its JSON report (sync) or stdout,
// and its stderr.
type run struct {
	code   int
	stdout []byte
	stderr string
}

// gs runs goldsync with the site's config and args.
func (s *site) gs(t *testing.T, args ...string) run {
	t.Helper()
	p := s.start(t, args...)
	return p.wait(t)
}

type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

func (s *site) start(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "goldsync"), append([]string{"--config", s.config}, args...)...)
	p := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

func (p *proc) wait(t *testing.T) run {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(runTimeout):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Fatalf("goldsync %s did not end within %v; stderr:\n%s", strings.Join(p.cmd.Args[1:], " "), runTimeout, p.stderr.String())
	}
	r := run{stdout: p.stdout.Bytes(), stderr: p.stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(p.err, &ee):
		r.code = ee.ExitCode()
	case p.err != nil:
		t.Fatalf("goldsync: %v", p.err)
	}
	return r
}

// sync runs goldsync sync and returns the image's report; it fails the
// test unless the exit code is want.
func (s *site) sync(t *testing.T, want int) *cluster.ImageReport {
	t.Helper()
	return s.syncReport(t, s.gs(t, "--json", "sync"), want)
}

func (s *site) syncReport(t *testing.T, r run, want int) *cluster.ImageReport {
	t.Helper()
	if r.code != want {
		t.Fatalf("goldsync sync: exit %d, want %d; stderr:\n%s", r.code, want, r.stderr)
	}
	var rep cluster.Report
	if err := json.Unmarshal(r.stdout, &rep); err != nil || len(rep.Images) != 1 {
		t.Fatalf("goldsync sync --json: %v: %s", err, r.stdout)
	}
	return rep.Images[0]
}

// replica returns the report of replica name.
func replica(t *testing.T, ir *cluster.ImageReport, name string) *cluster.ReplicaReport {
	t.Helper()
	for _, r := range ir.Replicas {
		if r.Replica == name {
			return r
		}
	}
	t.Fatalf("no report for replica %s: %+v", name, ir.Replicas)
	return nil
}

func (s *site) cfg(t *testing.T) *config.Config {
	t.Helper()
	c, err := config.Load(s.config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// status is the image's status row.
func (s *site) status(t *testing.T) cluster.StatusReport {
	t.Helper()
	st, err := cluster.Status(s.cfg(t), cluster.StatusOptions{})
	if err != nil || len(st) != 1 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	return st[0]
}

func pxelinux(t *testing.T, tftp string, ip netip.Addr) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tftp, netboot.PXELinuxDir, snapshot.HexIP(ip)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestReplicasInTheLab is the scale-out issue's "must show" on one machine:
// the first sync fills 8 replicas; a yum-size change reaches all 8 exact,
// by the generations; the boot files route each node to its replica; a
// replica whose receiver is killed mid-update is reported and converges on
// the next sync; an unplugged replica is reported (exit code, status) while
// the others are updated, and catches up when it is back. Each step needs
// the one before it.
func TestReplicasInTheLab(t *testing.T) {
	s := newSite(t)
	// The primary's ssh connections to the replicas are kept across runs:
	// the unplugged replica is cut off under a live master.
	s.persist = "10m"
	s.writeConfig(t, nil)
	t.Cleanup(func() { cluster.EndReplicaConnections(imaging.DefaultStateDir(s.root)) })
	reps := s.lab.Replicas
	steps := []struct {
		name string
		fn   func(t *testing.T, s *site)
	}{
		{"first sync fills every replica", func(t *testing.T, s *site) {
			ir := s.sync(t, 0)
			for _, r := range reps {
				if rr := replica(t, ir, r.Name); rr.Result != cluster.ResultOK || !rr.Full || rr.Generation == 0 {
					t.Errorf("replica %s: %+v, want ok by a full compare", r.Name, rr)
				}
			}
			s.exact(t, reps...)
		}},
		{"a yum-size change reaches all 8 replicas exact", func(t *testing.T, s *site) {
			before := s.status(t)
			s.yum(t, 1, 4096)
			ir := s.sync(t, 0)
			gen := int64(0)
			for _, r := range reps {
				rr := replica(t, ir, r.Name)
				if rr.Result != cluster.ResultOK || rr.Full || rr.Files == 0 || rr.Files > 70 {
					t.Errorf("replica %s: %+v, want ok by the generations: the 65 changed files, not a full compare", r.Name, rr)
				}
				if gen == 0 {
					gen = rr.Generation
				}
				if rr.Generation != gen || gen <= before.Replicas[0].Generation {
					t.Errorf("replica %s at generation %d, want %d, after %d", r.Name, rr.Generation, gen, before.Replicas[0].Generation)
				}
			}
			s.exact(t, reps...)
			for _, rs := range s.status(t).Replicas {
				if rs.Down || rs.Behind != 0 || rs.Generation != gen {
					t.Errorf("status of %s: %+v, want up to date at %d", rs.Replica, rs, gen)
				}
			}
		}},
		{"the boot files route each node to its replica", func(t *testing.T, s *site) {
			s.routes(t, "")
		}},
		{"a replica killed mid-update converges on the next sync", func(t *testing.T, s *site) {
			s.killMidUpdate(t, reps[0])
		}},
		{"an unreachable replica is reported and the others are updated", func(t *testing.T, s *site) {
			s.unreachable(t, reps[len(reps)-1])
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, func(t *testing.T) { st.fn(t, s) }) {
			t.Fatalf("step %q failed: the later steps need it", st.name)
		}
	}
}

// routes checks that every node boots from its replica (or, for the
// replica down, from the primary): the dhcpd next-server, the primary's
// pxelinux config and the replica's own name its address, and the replica
// built the node's snapshot from its own copy. Every replica serves nodes.
func (s *site) routes(t *testing.T, down string) {
	t.Helper()
	cfg := s.cfg(t)
	img, _ := cfg.Image("rhel9")
	byOS, _, err := cluster.Nodes(cfg)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := cluster.Routes(cfg, byOS)
	if err != nil {
		t.Fatal(err)
	}
	var all []snapshot.Node
	for _, ns := range byOS {
		all = append(all, ns...)
	}
	next, err := cluster.DhcpdNextServers(cfg, all)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]int{}
	for _, n := range byOS["rhel9compute"] {
		r := routes[n.Host]
		rep, ok := img.Replica(r.Assigned)
		if !ok {
			t.Fatalf("node %s: route %+v: assigned to no replica", n.Host, r)
		}
		served[r.Assigned]++
		host := s.host(t, r.Assigned)
		want := host.Addr
		if r.Assigned == down {
			want = netlab.PrimaryAddr
		}
		if rep.Address != host.Addr {
			t.Errorf("replica %s: address %s, want its lab address %s", rep.Name, rep.Address, host.Addr)
		}
		if r.Server != want || (r.Assigned == down) != r.Fallback {
			t.Errorf("node %s: route %+v, want server %s", n.Host, r, want)
		}
		if next[n.Host] != want {
			t.Errorf("node %s: dhcpd next-server %q, want %q", n.Host, next[n.Host], want)
		}
		got := pxelinux(t, s.tftp, n.IP)
		if !strings.Contains(got, want+":") {
			t.Errorf("node %s: the primary's pxelinux config does not name %s:\n%s", n.Host, want, got)
		}
		for _, other := range s.lab.Replicas {
			if other.Addr != want && strings.Contains(got, other.Addr) {
				t.Errorf("node %s: the primary's pxelinux config names %s, not its server %s:\n%s", n.Host, other.Addr, want, got)
			}
		}
		if r.Assigned == down {
			continue
		}
		if got := pxelinux(t, filepath.Join(host.Root, "tftpboot"), n.IP); !strings.Contains(got, host.Addr+":") {
			t.Errorf("node %s: replica %s's pxelinux config does not name it:\n%s", n.Host, host.Name, got)
		}
		if _, err := os.Stat(filepath.Join(host.Root, "images/rhel9/snapshot", n.Host, "var/log/messages")); err != nil {
			t.Errorf("node %s: no snapshot on replica %s: %v", n.Host, host.Name, err)
		}
	}
	if len(served) != len(s.lab.Replicas) {
		t.Errorf("nodes spread over %d replicas of %d: %v", len(served), len(s.lab.Replicas), served)
	}
}

func (s *site) host(t *testing.T, name string) *netlab.Host {
	t.Helper()
	for _, h := range s.lab.Replicas {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no replica %s in the lab", name)
	return nil
}

// killMidUpdate slows victim's link down, starts a sync of a change of a
// few MiB, kills everything running on the victim once part of the change
// has landed there, and checks that the run reports the victim failed (exit
// 23) while the others are updated, and that the next sync brings the
// victim back exact.
func (s *site) killMidUpdate(t *testing.T, victim *netlab.Host) {
	t.Helper()
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("SKIPPED: tc not found: the victim's link cannot be slowed down")
	}
	// 60 files of 64 KiB through 4 Mbit/s: about 8 s for the victim.
	if err := victim.Throttle(4000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Throttle(0) })
	s.yum(t, 2, 64<<10)
	p := s.start(t, "--json", "sync")
	newDir := filepath.Join(replicaRoot(victim), "usr/lib/pkg2")
	landed := func() int {
		ents, _ := os.ReadDir(newDir)
		n := 0
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(runTimeout)
	for landed() == 0 {
		select {
		case <-p.done:
			t.Fatalf("the sync ended before any of the change reached %s: %s", victim.Name, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing of the change reached %s", victim.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var killed []string
	for _, pr := range victim.Sessions() {
		killed = append(killed, pr.Cmdline)
	}
	victim.KillSessions()
	n := landed()
	t.Logf("killed on %s with %d of 60 new files there: %q", victim.Name, n, killed)
	if !strings.Contains(strings.Join(killed, "\n"), "receive") {
		t.Errorf("no receiver ran on %s when it was killed: %q", victim.Name, killed)
	}
	ir := s.syncReport(t, p.wait(t), exitPartial)
	if rr := replica(t, ir, victim.Name); rr.Result != cluster.ResultFailed || rr.Error == "" {
		t.Errorf("replica %s, killed: %+v, want failed", victim.Name, rr)
	}
	if n == 60 {
		t.Logf("all new files had landed on %s before the kill (the rest of the update was cut)", victim.Name)
	}
	var others []*netlab.Host
	for _, r := range s.lab.Replicas {
		if r != victim {
			others = append(others, r)
			if rr := replica(t, ir, r.Name); rr.Result != cluster.ResultOK {
				t.Errorf("replica %s: %+v, want ok", r.Name, rr)
			}
		}
	}
	s.exact(t, others...)
	if rs := s.replicaStatus(t, victim.Name); !rs.Down || rs.Behind != 1 || rs.LastError == "" {
		t.Errorf("status of %s after the kill: %+v, want down, one generation behind, with its error", victim.Name, rs)
	}

	// The next sync, the golden node unchanged and the link fast again.
	if err := victim.Throttle(0); err != nil {
		t.Fatal(err)
	}
	ir = s.sync(t, 0)
	if rr := replica(t, ir, victim.Name); rr.Result != cluster.ResultOK || !rr.Full {
		t.Errorf("replica %s after the kill: %+v, want ok by one full compare", victim.Name, rr)
	}
	s.exact(t, s.lab.Replicas...)
	if rs := s.replicaStatus(t, victim.Name); rs.Down || rs.Behind != 0 {
		t.Errorf("status of %s after converging: %+v", victim.Name, rs)
	}
}

func (s *site) replicaStatus(t *testing.T, name string) cluster.ReplicaStatus {
	t.Helper()
	for _, rs := range s.status(t).Replicas {
		if rs.Replica == name {
			return rs
		}
	}
	t.Fatalf("no status row for replica %s", name)
	return cluster.ReplicaStatus{}
}

// unreachable unplugs victim, syncs a change and checks that the run
// reports it (exit 23, its error; status shows it down and behind, and
// exits 23 too) while the others are updated exact and its nodes boot from
// the primary; then plugs it back and checks that the next sync catches it
// up and routes its nodes back to it.
func (s *site) unreachable(t *testing.T, victim *netlab.Host) {
	t.Helper()
	if err := victim.Down(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Up() })
	s.yum(t, 3, 4096)
	r := s.gs(t, "--json", "sync")
	ir := s.syncReport(t, r, exitPartial)
	if !strings.Contains(r.stderr, victim.Name) {
		t.Errorf("sync's stderr does not name %s:\n%s", victim.Name, r.stderr)
	}
	if rr := replica(t, ir, victim.Name); rr.Result != cluster.ResultFailed || !strings.Contains(rr.Error, victim.Name) {
		t.Errorf("replica %s, unplugged: %+v, want failed", victim.Name, rr)
	} else {
		t.Logf("replica %s, unplugged: failed after %.1fs: %s", victim.Name, rr.Seconds, rr.Error)
	}
	var others []*netlab.Host
	for _, h := range s.lab.Replicas {
		if h != victim {
			others = append(others, h)
			if rr := replica(t, ir, h.Name); rr.Result != cluster.ResultOK || rr.Full {
				t.Errorf("replica %s: %+v, want ok by the generations", h.Name, rr)
			}
		}
	}
	s.exact(t, others...)
	if rs := s.replicaStatus(t, victim.Name); !rs.Down || rs.Behind != 1 || rs.LastError == "" {
		t.Errorf("status of %s while unplugged: %+v, want down, one generation behind, with its error", victim.Name, rs)
	}
	st := s.gs(t, "status")
	if st.code != exitPartial || !strings.Contains(string(st.stdout), victim.Name) {
		t.Errorf("goldsync status while %s is unplugged: exit %d, want %d, naming it:\n%s%s", victim.Name, st.code, exitPartial, st.stdout, st.stderr)
	}
	s.routes(t, victim.Name)

	// Plugged back: the next sync catches it up.
	if err := victim.Up(); err != nil {
		t.Fatal(err)
	}
	ir = s.sync(t, 0)
	if rr := replica(t, ir, victim.Name); rr.Result != cluster.ResultOK || !rr.Full {
		t.Errorf("replica %s back: %+v, want ok by one full compare", victim.Name, rr)
	}
	s.exact(t, s.lab.Replicas...)
	for _, rs := range s.status(t).Replicas {
		if rs.Down || rs.Behind != 0 {
			t.Errorf("status of %s after %s came back: %+v", rs.Replica, victim.Name, rs)
		}
	}
	s.routes(t, "")
}
