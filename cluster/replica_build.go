package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/remote"
	"github.com/goldsync/goldsync/snapshot"
	"github.com/goldsync/goldsync/snapshot/netboot"
)

// ReplicaJob is what a replica builds after a push, from its own copy of
// the image: its nodes' snapshots and boot files. The primary sends it to
// "goldsync replica-build --stdio" on the replica (ServeReplicaBuild).
type ReplicaJob struct {
	// Image names the image; Root and StateDir are the replica's image
	// dir and its state dir.
	Image    string `json:"image"`
	Root     string `json:"root"`
	StateDir string `json:"state_dir"`
	// TFTPBoot is the replica's TFTP root.
	TFTPBoot string `json:"tftpboot"`
	// OS are the operating systems booting the image that have nodes on
	// the replica.
	OS []ReplicaOS `json:"os"`
	// ImageOS names every operating system booting the image: the boot
	// files the replica holds for a node of one of them that is not in OS
	// (it moved to another server) are removed.
	ImageOS []string `json:"image_os,omitempty"`
}

// ReplicaOS is one OS of a ReplicaJob.
type ReplicaOS struct {
	// OS is the OS as the replica's nodes boot it: its NFS server, location
	// and snapshot dir are the replica's.
	OS config.OS `json:"os"`
	// Kernel, when set, is the kernel to boot instead of OS.Kernel (the
	// one a rolled-back generation booted).
	Kernel string `json:"kernel,omitempty"`
	// Nodes are the replica's nodes of this OS.
	Nodes []snapshot.Node `json:"nodes"`
	// Lists are the primary's snapshot lists of the OS by name (files,
	// files.custom), written into the replica's snapshot dir when they
	// differ; a list the primary lacks is left as the replica has it.
	Lists map[string]string `json:"lists,omitempty"`
}

// ReplicaBuildReport is what a replica's build did.
type ReplicaBuildReport struct {
	Snapshots []SnapshotReport `json:"snapshots,omitempty"`
	Netboot   []NetbootReport  `json:"netboot,omitempty"`
	// Removed are the nodes (host names as their pxelinux configs name
	// them) whose boot files the replica removed: they boot from another
	// server now. Their snapshots stay.
	Removed []string `json:"removed,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Bounds of a job.
const (
	maxJobBytes  = 64 << 20
	maxListBytes = 1 << 20
)

// replicaListNames are the lists a job may carry.
var replicaListNames = []string{snapshot.DefaultFilesName, snapshot.CustomFilesName}

// replicaBuildMarker starts a replica build's answer on stdout, so noise a
// login shell prints before it is skipped.
const replicaBuildMarker = "goldsync-replica-build/1\n"

// replicaOS is sys as the nodes of rep boot it: from the replica's
// address, image dir and snapshot dir. A snapshot dir that is the OS's
// default (LOCATION/snapshot) moves with the replica's image dir.
func replicaOS(sys config.OS, img *config.Image, rep *config.Replica) config.OS {
	o := sys
	o.NFSServer = rep.Address
	if rep.Path != img.Root {
		o.Location = filepath.Dir(rep.Path)
	}
	switch {
	case rep.SnapshotDir != "":
		o.SnapshotDir = rep.SnapshotDir
	case sys.SnapshotDir == filepath.Join(sys.Location, "snapshot"):
		o.SnapshotDir = filepath.Join(o.Location, "snapshot")
	}
	return o
}

// replicaStateDir is the replica's state dir for the image.
func replicaStateDir(rep *config.Replica) string {
	if rep.StateDir != "" {
		return rep.StateDir
	}
	return imaging.DefaultStateDir(rep.Path)
}

// replicaJobs builds each replica's job: its nodes of each OS of the
// image, with the primary's lists. A replica without nodes gets a job
// too, without OS: it removes the boot files of nodes that moved away.
func replicaJobs(cfg *config.Config, img *config.Image, byOS map[string][]snapshot.Node, kernels map[string]string) (map[string]*ReplicaJob, error) {
	jobs := map[string]*ReplicaJob{}
	var imageOS []string
	for _, sys := range cfg.OSOf(img.Name) {
		imageOS = append(imageOS, sys.Name)
	}
	for i := range img.Replicas {
		rep := &img.Replicas[i]
		tftp := rep.TFTPBoot
		if tftp == "" {
			tftp = cfg.Cluster.TFTPBoot
		}
		jobs[rep.Name] = &ReplicaJob{Image: img.Name, Root: rep.Path, StateDir: replicaStateDir(rep), TFTPBoot: tftp, ImageOS: imageOS}
	}
	for _, sys := range cfg.OSOf(img.Name) {
		nodes := byOS[sys.Name]
		assign, err := AssignReplicas(img, nodes)
		if err != nil {
			return nil, err
		}
		lists, err := readLists(sys.SnapshotDir)
		if err != nil {
			return nil, err
		}
		for i := range img.Replicas {
			rep := &img.Replicas[i]
			var mine []snapshot.Node
			for _, n := range nodes {
				if assign[n.Host] == rep.Name {
					mine = append(mine, n)
				}
			}
			if len(mine) == 0 {
				continue
			}
			j := jobs[rep.Name]
			j.OS = append(j.OS, ReplicaOS{OS: replicaOS(sys, img, rep), Kernel: kernels[sys.Name], Nodes: mine, Lists: lists})
		}
	}
	return jobs, nil
}

// readLists reads the snapshot lists of a snapshot dir on the primary;
// missing ones are left out.
func readLists(dir string) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range replicaListNames {
		data, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("snapshot list: %w", err)
		case len(data) > maxListBytes:
			return nil, fmt.Errorf("snapshot list %s: larger than %d bytes", filepath.Join(dir, name), maxListBytes)
		}
		out[name] = string(data)
	}
	return out, nil
}

// buildReplica runs the replica's build through ssh.
func buildReplica(ctx context.Context, rep *config.Replica, j *ReplicaJob, log *slog.Logger) (*ReplicaBuildReport, error) {
	cmd := remote.ShellQuote(rep.Receiver) + " replica-build --stdio"
	p, err := remote.Command(ctx, rep.Rsh, replicaSpec(rep, rep.Path), cmd, log)
	if err != nil {
		return nil, fmt.Errorf("start the replica's build: %w", err)
	}
	defer p.Close()
	rep2, code, rerr, err := exchange[ReplicaBuildReport](p, j, replicaBuildMarker)
	if err != nil {
		return nil, fmt.Errorf("send the replica's build job: %w", err)
	}
	switch {
	case code == 255:
		return rep2, fmt.Errorf("%w: %s", remote.ErrSSH, wire.InertLines(strings.TrimSpace(p.Stderr())))
	case rep2 == nil && rerr != nil:
		return nil, fmt.Errorf("replica build: %w", rerr)
	case rep2 == nil:
		return nil, fmt.Errorf("replica build (exit %d) gave no report: %s", code, wire.InertLines(strings.TrimSpace(p.Stderr())))
	case rep2.Error != "":
		return rep2, fmt.Errorf("replica build: %s", wire.InertLines(rep2.Error))
	case code != 0:
		return rep2, fmt.Errorf("replica build exited %d: %s", code, wire.InertLines(strings.TrimSpace(p.Stderr())))
	}
	return rep2, nil
}

// exchange sends req (one JSON line) to a command started through ssh,
// reads its output up to maxJobBytes, and decodes the report after
// marker: nil when there is none or it does not decode. code is the
// command's exit status; rerr the error reading its output; err the
// error sending the request (with the command's stderr).
func exchange[R any](p *remote.Process, req any, marker string) (rep *R, code int, rerr, err error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, 0, nil, err
	}
	if _, err := p.Write(append(data, '\n')); err != nil {
		return nil, 0, nil, fmt.Errorf("%w: %s", err, wire.InertLines(p.Stderr()))
	}
	// The command's stdin stays open until its answer is read: it takes
	// an end of input for the primary gone, and stops.
	out, rerr := io.ReadAll(io.LimitReader(p, maxJobBytes))
	p.Close()
	if _, body, ok := bytes.Cut(out, []byte(marker)); ok {
		rep = new(R)
		if json.Unmarshal(body, rep) != nil {
			rep = nil
		}
	}
	return rep, p.ExitCode(), rerr, nil
}

// ServeReplicaBuild is the replica's side of a build ("goldsync
// replica-build --stdio"): it reads one ReplicaJob (JSON) from in, builds
// it (BuildReplica) and writes its report to out, after a marker line.
// The job comes from the primary, which this server already trusts with
// the image's whole content.
func ServeReplicaBuild(ctx context.Context, in io.Reader, out io.Writer, log *slog.Logger) error {
	var j ReplicaJob
	if err := json.NewDecoder(io.LimitReader(in, maxJobBytes)).Decode(&j); err != nil {
		return fmt.Errorf("replica build: read the job: %w", err)
	}
	rep, err := BuildReplica(ctx, &j, log)
	if rep == nil {
		rep = &ReplicaBuildReport{}
	}
	if err != nil {
		rep.Error = err.Error()
	}
	data, merr := json.Marshal(rep)
	if merr != nil {
		return merr
	}
	if _, werr := fmt.Fprintf(out, "%s%s\n", replicaBuildMarker, data); werr != nil && err == nil {
		err = werr
	}
	return err
}

// BuildReplica builds a job on the replica: for each OS, the primary's
// lists into its snapshot dir (when they differ), the snapshots of its
// nodes from the replica's image, its kernel and initrd, and its nodes'
// boot files (pointing at this replica), under the image's run lock, as
// the snapshot and netboot steps of Run do on the primary.
func BuildReplica(ctx context.Context, j *ReplicaJob, log *slog.Logger) (*ReplicaBuildReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, p := range []struct{ what, p string }{{"root", j.Root}, {"state dir", j.StateDir}, {"tftpboot", j.TFTPBoot}} {
		if !filepath.IsAbs(p.p) || filepath.Clean(p.p) != p.p || p.p == "/" {
			return nil, fmt.Errorf("replica build: %s %q: want a clean absolute path", p.what, p.p)
		}
	}
	if err := os.MkdirAll(j.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("replica build: %w", err)
	}
	unlock, err := TakeRunLock(j.StateDir)
	if err != nil {
		return nil, fmt.Errorf("replica build: %w", err)
	}
	defer unlock()
	cfg := &config.Config{Path: "replica job", Cluster: config.Cluster{TFTPBoot: j.TFTPBoot},
		Images: []config.Image{{Name: j.Image, Root: j.Root, StateDir: j.StateDir}}}
	kernels := map[string]string{}
	for _, ro := range j.OS {
		ro.OS.Image = j.Image
		cfg.OS = append(cfg.OS, ro.OS)
		if ro.Kernel != "" {
			kernels[ro.OS.Name] = ro.Kernel
		}
	}
	jb := &job{o: &Options{Logger: log}, cfg: cfg, img: &cfg.Images[0], kernels: kernels,
		r: &ImageReport{Image: j.Image, Root: j.Root, built: map[string]time.Time{}}}
	var errs []error
	for i, ro := range j.OS {
		sys := cfg.OS[i]
		if err := writeLists(sys.SnapshotDir, ro.Lists); err != nil {
			errs = append(errs, fmt.Errorf("OS %s: %w", sys.Name, err))
			continue
		}
		if err := jb.snapshots(ctx, sys, ro.Nodes); err != nil {
			errs = append(errs, err)
			if !errors.Is(err, imaging.ErrPartial) {
				continue
			}
		}
		if err := jb.netboot(ctx, sys, ro.Nodes); err != nil {
			errs = append(errs, err)
		}
	}
	removed, err := removeMovedNodes(j)
	if err != nil {
		errs = append(errs, err)
	}
	return &ReplicaBuildReport{Snapshots: jb.r.Snapshots, Netboot: jb.r.Netboot, Removed: removed}, errors.Join(errs...)
}

// removeMovedNodes removes the boot files (pxelinux, GRUB, iPXE) of the
// nodes of the job's image that the replica no longer serves: configs in
// its TFTP root whose OS boots the image (ImageOS) and whose address is
// none of the job's nodes'. Configs of other images' OSes are left alone.
func removeMovedNodes(j *ReplicaJob) ([]string, error) {
	if len(j.ImageOS) == 0 {
		return nil, nil
	}
	if _, err := os.Stat(j.TFTPBoot); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	cfgs, err := netboot.ListNodeConfigs(j.TFTPBoot)
	if err != nil {
		return nil, fmt.Errorf("replica build: %w", err)
	}
	mine := map[netip.Addr]bool{}
	for _, ro := range j.OS {
		for _, n := range ro.Nodes {
			mine[n.IP.Unmap()] = true
		}
	}
	var gone []snapshot.Node
	var names []string
	for _, c := range cfgs {
		if !slices.Contains(j.ImageOS, c.OS) || mine[c.IP.Unmap()] {
			continue
		}
		name := c.Snapshot
		if name == "" {
			name = c.IP.String()
		}
		gone = append(gone, snapshot.Node{Host: name, IP: c.IP})
		names = append(names, name)
	}
	if len(gone) == 0 {
		return nil, nil
	}
	if err := netboot.RemoveNodeConfigs(j.TFTPBoot, gone); err != nil {
		return nil, fmt.Errorf("replica build: boot files of nodes that moved away: %w", err)
	}
	return names, nil
}

// writeLists writes the primary's lists into a snapshot dir where they
// differ, atomically (a rename never follows a symlink a node planted).
func writeLists(dir string, lists map[string]string) error {
	if len(lists) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range lists {
		known := false
		for _, n := range replicaListNames {
			known = known || n == name
		}
		if !known || len(content) > maxListBytes {
			return fmt.Errorf("snapshot list %q: not a list a replica takes", name)
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			if cur, err := os.ReadFile(p); err == nil && string(cur) == content {
				continue
			}
		}
		if err := fsx.WritePathAtomic(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("snapshot list: %w", err)
		}
	}
	return nil
}
