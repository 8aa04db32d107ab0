package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/internal/sshtest"
)

// The replica site's network: the primary's namespace and the replica's,
// joined by a veth pair. QEMU runs in the primary's namespace, so a guest
// reaches the replica's address through QEMU's user-mode NAT from
// primaryLink, and the primary itself as 10.0.2.2 (its loopback).
const (
	primaryLink = "10.78.0.1"
	replicaLink = "10.78.0.2"
	linkPrefix  = "/24"
)

// replicaSite is a primary image server and one replica image server r1,
// each in its own network and mount namespace with its own address,
// driven by a cluster config: goldsync sync pulls the golden node into the
// primary's image and pushes it over ssh to the replica (its own sshd),
// whose replica-build makes its nodes' snapshots and boot files. Both run
// nfs-ganesha and rpcbind; the nodes boot from the replica's TFTP tree (as
// render dhcpd's next-server says).
type replicaSite struct {
	t *testing.T
	// primary is the primary's image, snapshots, TFTP tree and namespace
	// (where QEMU runs); replica is the replica's image, snapshots and
	// TFTP tree, with the primary's namespace for QEMU and its golden
	// node, so that site.boot and site.checkNode see the replica's paths.
	primary, replica *site
	repNS            *netns
	config           string
}

// newReplicaSite builds a site whose node n is served by the replica r1.
func newReplicaSite(t *testing.T, flavour, osName string, n node) *replicaSite {
	t.Helper()
	dir := t.TempDir()
	p := &site{t: t, dir: dir, golden: filepath.Join(dir, "golden"), osName: osName, nodes: []node{n},
		loc: filepath.Join(dir, "diskless", osName), tftp: filepath.Join(dir, "tftpboot")}
	p.image = filepath.Join(p.loc, "root")
	p.snap = filepath.Join(p.loc, "snapshot")
	rdir := filepath.Join(dir, "r1")
	r := &site{t: t, dir: dir, golden: p.golden, osName: osName, nodes: p.nodes,
		loc: filepath.Join(rdir, "diskless", osName), tftp: filepath.Join(rdir, "tftpboot")}
	r.image = filepath.Join(r.loc, "root")
	r.snap = filepath.Join(r.loc, "snapshot")
	// The admins' directories: the images' bases and the TFTP roots.
	for _, d := range []string{p.loc, p.tftp, r.loc, r.tftp} {
		must(t, os.MkdirAll(d, 0o755))
	}
	start := time.Now()
	newGolden(t, flavour, p.golden)
	t.Logf("golden root ready in %s", time.Since(start).Round(time.Second))

	p.ns, r.ns = newNetns(t), newNetns(t)
	rs := &replicaSite{t: t, primary: p, replica: r, repNS: r.ns, config: filepath.Join(dir, "goldsync.toml")}
	linkNetns(t, p.ns, r.ns, primaryLink, replicaLink)
	sshd := startSSHD(t, r.ns, filepath.Join(rdir, "sshd"), replicaLink)
	// QEMU runs in the primary's namespace: the node's view of the network.
	r.ns = p.ns

	nodesFile := filepath.Join(dir, "nodes")
	must(t, os.WriteFile(nodesFile, []byte(n.IP+" "+n.Host+" "+n.MAC+"\n"), 0o644))
	// The primary's NFS server is 10.0.2.2 for the guests (its loopback
	// through QEMU's user network); the replica's is its own address.
	cfg := fmt.Sprintf(`[cluster]
tftpboot = %q
nodes = %q
nfs_server = "10.0.2.2"

[netboot]
append = %q

[[image]]
name = %q
source = %q
root = %q
excludes = ["/proc/*", "/sys/*"]
os = %q

[[image.replica]]
name = "r1"
ssh = %q
rsh = %q
path = %q
tftpboot = %q
receiver = %q
nodes = [%q]
`, p.tftp, nodesFile, strings.TrimSpace("console=ttyS0,115200 systemd.show_status=0 "+os.Getenv("GOLDSYNC_E2E_APPEND")),
		osName, p.golden, p.image, osName,
		"root@"+replicaLink, sshd.RshCommand(), r.image, r.tftp, filepath.Join(binDir, "goldsync"), n.Host)
	must(t, os.WriteFile(rs.config, []byte(cfg), 0o644))
	t.Logf("cluster config:\n%s", cfg)

	// The replica's admin installs the boot loaders in its TFTP root.
	r.goldsync("netboot", "install", "--tftpboot", r.tftp)
	ir := rs.sync()
	t.Logf("goldsync sync: pull and push to r1 in %.1f s (r1: %d files, %d bytes sent, full compare %v, %.1f s)",
		ir.Seconds, ir.Replicas[0].Files, ir.Replicas[0].Bytes, ir.Replicas[0].Full, ir.Replicas[0].Seconds)

	// Each server's ganesha exports what render gives it: the primary its
	// image and every node's snapshot (the fallback), the replica its copy
	// and its nodes' snapshots. The replica sees QEMU's guests as coming
	// from the primary's link address (QEMU's NAT), the primary as
	// 127.0.0.1.
	p.nfsConf = filepath.Join(dir, "ganesha.conf")
	must(t, os.WriteFile(p.nfsConf, []byte(rs.goldsync("render", "ganesha", "--snapshot-clients", "127.0.0.1")), 0o644))
	r.nfsConf = filepath.Join(rdir, "ganesha.conf")
	must(t, os.WriteFile(r.nfsConf, []byte(rs.goldsync("render", "ganesha", "--replica", "r1", "--snapshot-clients", primaryLink)), 0o644))
	p.nfsStop = p.ns.startNFS(t, dir, p.nfsConf)
	r.nfsStop = rs.repNS.startNFS(t, rdir, r.nfsConf)
	return rs
}

// goldsync runs goldsync with the site's config, in the host's namespaces.
func (rs *replicaSite) goldsync(args ...string) string {
	rs.t.Helper()
	return run(rs.t, filepath.Join(binDir, "goldsync"), append([]string{"--config", rs.config}, args...)...)
}

// sync runs goldsync sync in the primary's namespace (where the replica's
// address is reachable) and returns the image's report; the run and its
// replica must succeed.
func (rs *replicaSite) sync() *cluster.ImageReport {
	t := rs.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := rs.primary.ns.command(ctx, filepath.Join(binDir, "goldsync"), "--config", rs.config, "--json", "sync")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("goldsync sync: %v\n%s\n%s", err, out, stderr.String())
	}
	var rep cluster.Report
	if err := json.Unmarshal(out, &rep); err != nil || len(rep.Images) != 1 {
		t.Fatalf("goldsync sync --json: %v: %s", err, out)
	}
	ir := rep.Images[0]
	if ir.Result != cluster.ResultOK || len(ir.Replicas) != 1 || ir.Replicas[0].Result != cluster.ResultOK {
		t.Fatalf("goldsync sync: %s\n%s", out, stderr.String())
	}
	return ir
}

// checkRouting checks the files goldsync wrote that send the node to the
// replica: render dhcpd's next-server, and the pxelinux entries of both
// TFTP trees (the primary's names the replica too, for a node whose DHCP
// still points at the primary).
func (rs *replicaSite) checkRouting(n node) {
	t := rs.t
	t.Helper()
	dhcpd := rs.goldsync("render", "dhcpd")
	if !strings.Contains(dhcpd, "next-server "+replicaLink+";") {
		t.Errorf("render dhcpd: no next-server %s for %s:\n%s", replicaLink, n.Host, dhcpd)
	}
	ip := netip.MustParseAddr(n.IP).As4()
	name := fmt.Sprintf("linux-install/pxelinux.cfg/%02X%02X%02X%02X", ip[0], ip[1], ip[2], ip[3])
	for _, tftp := range []string{rs.primary.tftp, rs.replica.tftp} {
		b, err := os.ReadFile(filepath.Join(tftp, name))
		must(t, err)
		if !strings.Contains(string(b), replicaLink+":"+rs.replica.image) || !strings.Contains(string(b), replicaLink+":"+filepath.Join(rs.replica.snap, n.Host)) ||
			strings.Contains(string(b), "10.0.2.2") {
			t.Errorf("%s: does not send %s to the replica's image and snapshot at %s:\n%s", filepath.Join(tftp, name), n.Host, replicaLink, b)
		}
	}
}

// checkFromReplica checks on the node that every NFS mount it has (the
// root, its snapshot and the binds of it) comes from the replica's
// address and paths, and that what it writes lands in the replica's
// snapshot only.
func (rs *replicaSite) checkFromReplica(v *vm, n node) {
	t := rs.t
	t.Helper()
	mounts := v.sh("grep -E '^[^ ]+ [^ ]+ nfs4? ' /proc/mounts")
	t.Logf("%s: NFS mounts:\n%s", n.Host, mounts)
	var root, snap bool
	for _, l := range strings.Split(mounts, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			t.Fatalf("%s: /proc/mounts line %q", n.Host, l)
		}
		host, path, _ := strings.Cut(f[0], ":")
		if host != replicaLink || !strings.Contains(","+f[3]+",", ",addr="+replicaLink+",") {
			t.Errorf("%s: %s is mounted from %s (%s), not from the replica %s", n.Host, f[1], host, f[3], replicaLink)
		}
		switch {
		case f[1] == "/" && path == rs.replica.image:
			root = true
		case path == filepath.Join(rs.replica.snap, n.Host):
			snap = true
		}
	}
	if !root || !snap {
		t.Errorf("%s: want / from %s:%s and the snapshot from %s:%s (root %v, snapshot %v)", n.Host,
			replicaLink, rs.replica.image, replicaLink, filepath.Join(rs.replica.snap, n.Host), root, snap)
	}
	// checkNode wrote its marker through the node's snapshot: it is in the
	// replica's copy, not in the primary's (which the node falls back to
	// only while its replica is down).
	if _, err := os.Stat(filepath.Join(rs.primary.snap, n.Host, "var/log/e2e-marker")); err == nil {
		t.Errorf("%s: its write landed in the primary's snapshot too", n.Host)
	}
	if t.Failed() {
		// A node on the primary's NFS server would hang once it stops.
		t.FailNow()
	}
}

// liveUpdateFromReplica changes the golden node while the node runs with
// the primary's NFS server stopped: goldsync sync pulls the change and
// pushes it to the replica, and the node sees it from there.
func (rs *replicaSite) liveUpdateFromReplica(v *vm) {
	t := rs.t
	t.Helper()
	rs.primary.nfsStop()
	g := rs.primary.golden
	must(t, os.WriteFile(filepath.Join(g, "usr/local/bin/e2e-new.tmp"), []byte("#!/bin/sh\necho new from the golden node\n"), 0o755))
	must(t, os.Chmod(filepath.Join(g, "usr/local/bin/e2e-new.tmp"), 0o755))
	must(t, os.Rename(filepath.Join(g, "usr/local/bin/e2e-new.tmp"), filepath.Join(g, "usr/local/bin/e2e-new")))
	must(t, os.WriteFile(filepath.Join(g, "usr/share/e2e/probe.new"), []byte("version 2\n"), 0o644))
	must(t, os.Rename(filepath.Join(g, "usr/share/e2e/probe.new"), filepath.Join(g, "usr/share/e2e/probe")))
	start := time.Now()
	ir := rs.sync()
	took := time.Since(start)
	r := ir.Replicas[0]
	if r.Full || r.Files < 2 || r.Files > 10 {
		t.Errorf("the push of a two-file change to r1 sent %d files (full compare %v), want the changed ones", r.Files, r.Full)
	}
	synced := time.Now()
	for {
		out, rc, err := v.run(context.Background(), "e2e-new && grep -q 'version 2' /usr/share/e2e/probe")
		if err == nil && rc == 0 && strings.Contains(out, "new from the golden node") {
			break
		}
		if time.Since(synced) > 3*time.Minute {
			t.Fatalf("the node did not see the change 3 min after the sync (primary's NFS stopped): %q %v", out, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("LIVE UPDATE THROUGH THE REPLICA: goldsync sync (pull, push to r1: %d files, %d bytes, its build) took %s; the node, with the primary's NFS server stopped, saw the change %.1f s after it ended",
		r.Files, r.Bytes, took.Round(10*time.Millisecond), time.Since(synced).Seconds())
}

// netPath returns the namespace's network namespace file.
func (n *netns) netPath() string { return fmt.Sprintf("/proc/%d/ns/net", n.pid) }

// linkNetns joins two namespaces with a veth pair, eth1 in each, with
// addresses addrA and addrB.
func linkNetns(t *testing.T, a, b *netns, addrA, addrB string) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []struct {
		n    *netns
		args []string
	}{
		{a, []string{"link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", fmt.Sprint(b.pid)}},
		{a, []string{"addr", "add", addrA + linkPrefix, "dev", "eth1"}},
		{b, []string{"addr", "add", addrB + linkPrefix, "dev", "eth1"}},
		{a, []string{"link", "set", "eth1", "up"}},
		{b, []string{"link", "set", "eth1", "up"}},
	} {
		if out, err := c.n.command(ctx, "ip", c.args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(c.args, " "), err, out)
		}
	}
}

// startSSHD starts an sshd on addr:22 in the namespace n, until the test
// ends. sshtest checks a server by connecting to it, so it is started
// from a thread that joined n; that thread ends with its goroutine (a
// goroutine that exits locked takes its thread with it), so no other
// goroutine ever runs in n.
func startSSHD(t *testing.T, n *netns, dir, addr string) *sshtest.Server {
	t.Helper()
	type started struct {
		s    *sshtest.Server
		stop func()
		err  error
	}
	ch := make(chan started, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(n.netPath())
		if err != nil {
			ch <- started{err: err}
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			ch <- started{err: fmt.Errorf("join %s: %w", n.netPath(), err)}
			return
		}
		// Sessions get their own HOME, so the login shell reads none of
		// this machine's startup files.
		s, stop, err := sshtest.StartServer(dir, sshtest.Options{Address: addr, Port: 22, NetNS: n.netPath(),
			ExtraConfig: []string{"SetEnv HOME=" + dir}})
		ch <- started{s, stop, err}
	}()
	st := <-ch
	if st.err != nil {
		t.Fatalf("sshd on %s: %v", addr, st.err)
	}
	t.Cleanup(func() {
		st.stop()
		if t.Failed() {
			t.Logf("replica's sshd log:\n%s", tail([]byte(st.s.Log()), 3000))
		}
	})
	return st.s
}
