package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/remote"
	"github.com/goldsync/goldsync/imaging/tree"
)

// The kinds of drift verify reports.
const (
	driftContent  = "content"  // file content, symlink target, device number or type
	driftMetadata = "metadata" // mode, owner, mtime, xattrs, ACLs, hard links
	driftMissing  = "missing"  // in the manifest, not in the image
	driftExtra    = "extra"    // in the image, not in the manifest
	driftGolden   = "golden"   // differs from the golden node (--against)
)

// drift is one path that differs.
type drift struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Detail string `json:"detail,omitempty"`
}

type verifyFlags struct {
	stateDir string
	against  string
	rsh      string
	excludes []string
}

func newVerifyCmd(g *globalFlags) *cobra.Command {
	f := &verifyFlags{}
	cmd := &cobra.Command{
		Use:   "verify [flags] IMAGE",
		Short: "re-read an image and list what drifted from its manifest",
		Long: `Verify re-reads every file of an image and compares it with the manifest the
last sync recorded in the state dir: content (re-hashed, nothing is taken
from the hash cache), type, symlink targets, devices, mode, owner, mtime,
xattrs, ACLs and hard links. It lists every path that drifted (content,
metadata, missing, extra) and exits with status 40 when there is any, 0
when the image is exactly what goldsync wrote.

IMAGE is an image name of the config file (its state dir and excludes are
used) or an image root directory; for a directory the state dir is
--state-dir, else the default beside the image.

--against SRC also compares the image with the golden node (or any source
pull accepts), as a dry-run pull: every difference is listed as "golden".

Nothing is written, neither in the image nor in the state dir.`,
		Example: `  goldsync verify rhel5
  goldsync verify --state-dir /var/lib/goldsync/rhel5 /diskless/i386/RHEL5-AS/root
  goldsync verify --against root@node004:/ rhel5`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVerify(cmd.Context(), g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.stateDir, "state-dir", "", "the image's state `DIR` (default: from the config, else .<image>.goldsync beside it)")
	fl.StringVar(&f.against, "against", "", "also compare with the golden tree `SRC` ([user@]host:/path or a directory)")
	fl.StringVarP(&f.rsh, "rsh", "e", "", "remote shell `COMMAND` for --against (default: the image's rsh, else ssh)")
	fl.StringArrayVar(&f.excludes, "exclude", nil, "leave out paths matching `PATTERN` (added to the config's excludes)")
	return cmd
}

// verifyReport is the --json output of verify.
type verifyReport struct {
	Image           string         `json:"image,omitempty"`
	Root            string         `json:"root"`
	StateDir        string         `json:"state_dir"`
	ManifestEntries int            `json:"manifest_entries"`
	Checked         int            `json:"checked"`
	HashedBytes     int64          `json:"hashed_bytes"`
	Unreadable      int            `json:"unreadable"`
	Against         string         `json:"against,omitempty"`
	Clean           bool           `json:"clean"`
	Drift           []drift        `json:"drift"`
	Counts          map[string]int `json:"counts"`
	Seconds         float64        `json:"seconds"`
}

func runVerify(ctx context.Context, g *globalFlags, f *verifyFlags, arg string) error {
	start := time.Now()
	log := g.logger(os.Stderr)
	rep := &verifyReport{Drift: []drift{}, Counts: map[string]int{}}
	var img *config.Image
	isDir := func() bool { st, err := os.Stat(arg); return err == nil && st.IsDir() }
	if !strings.Contains(arg, "/") && arg != "." && arg != ".." && (g.config != "" || !isDir()) {
		cfg, err := loadConfig(g)
		if err != nil {
			return err
		}
		i, ok := cfg.Image(arg)
		if !ok {
			return withCode(exitUsage, fmt.Errorf("no image %q in %s (images: %s); write a path with a / for an image directory",
				arg, cfg.Path, strings.Join(cfg.ImageNames(), ", ")))
		}
		img = i
		rep.Image, rep.Root, rep.StateDir = img.Name, img.Root, img.StateDir
	} else {
		root, err := filepath.Abs(arg)
		if err != nil {
			return withCode(exitUsage, err)
		}
		rep.Root = root
		rep.StateDir = imaging.DefaultStateDir(root)
	}
	if f.stateDir != "" {
		rep.StateDir = f.stateDir
	}
	var excludes []string
	if img != nil {
		excludes = append(excludes, img.Excludes...)
	}
	excludes = append(excludes, f.excludes...)

	// 1. The image against its manifest, every file re-read.
	m, err := imaging.LoadManifest(imaging.State(rep.StateDir).Manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return withCode(exitSelect, fmt.Errorf("no manifest in %s: the image was never synced by goldsync, or its state dir is elsewhere (--state-dir)", rep.StateDir))
	}
	if err != nil {
		return withCode(exitIO, err)
	}
	rep.ManifestEntries = len(m.Entries)
	root, err := fsx.OpenRoot(rep.Root)
	if err != nil {
		return withCode(exitSelect, fmt.Errorf("image: %w", err))
	}
	defer root.Close()
	wo := imaging.WalkOptions{Hash: true, Logger: log, Temps: func(string) {}}
	if len(excludes) > 0 {
		ex, err := exclude.New(excludes)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("excludes: %w", err))
		}
		wo.Exclude = ex
	}
	w, err := imaging.Walk(ctx, root, wo)
	if err != nil {
		return withCode(exitIO, err)
	}
	rep.Checked, rep.HashedBytes, rep.Unreadable = len(w.Entries), w.HashedBytes, w.Problems
	rep.Drift = append(rep.Drift, compareTrees(m.Entries, w.Entries)...)

	// 2. Optionally, the image against the golden node: a dry-run pull.
	if f.against != "" {
		rep.Against = f.against
		rsh := f.rsh
		ro := remote.Options{Rsh: rsh, Logger: log}
		if img != nil {
			ro.AgentPath, ro.Streams, ro.IdleTimeout = img.AgentPath, img.Streams, img.Timeout
			if rsh == "" {
				ro.Rsh = img.Rsh
			}
		}
		source, err := remote.Open(ctx, f.against, ro)
		if err != nil {
			return classifyConnect(err)
		}
		opts := imaging.Options{DryRun: true, MaxDelete: -1, StateDir: rep.StateDir, Excludes: excludes, Logger: log}
		if img != nil {
			opts.NoDelete = img.NoDelete
		}
		opts.Itemize = func(c imaging.Change) {
			rep.Drift = append(rep.Drift, drift{Path: strings.TrimSuffix(c.Path, "/") + c.Extra, Kind: driftGolden, Detail: strings.TrimSpace(c.Code)})
		}
		_, err = imaging.Sync(ctx, source, rep.Root, opts)
		source.Close()
		if err != nil {
			return classifySync(err)
		}
	}

	for _, d := range rep.Drift {
		rep.Counts[d.Kind]++
	}
	rep.Clean = len(rep.Drift) == 0
	rep.Seconds = time.Since(start).Seconds()
	name := rep.Root
	if rep.Image != "" {
		name = rep.Image
	}
	if g.jsonOut {
		if err := printJSON(rep); err != nil {
			return err
		}
	} else {
		for _, d := range rep.Drift {
			line := fmt.Sprintf("%-9s %s", d.Kind, d.Path)
			if d.Detail != "" {
				line += "  (" + d.Detail + ")"
			}
			printf("%s\n", line)
		}
		if !g.quiet {
			if rep.Clean {
				printf("goldsync: %s is clean: %d entries match the manifest (%s re-read)\n", name, rep.Checked, human(rep.HashedBytes))
			} else {
				printf("goldsync: %s drifted: %s\n", name, countsText(rep.Counts))
			}
		}
	}
	if !rep.Clean {
		return &exitError{code: exitDrift, err: fmt.Errorf("%s drifted: %s", name, countsText(rep.Counts)), silent: g.jsonOut || !g.quiet}
	}
	return nil
}

func countsText(c map[string]int) string {
	var parts []string
	total := 0
	for _, k := range []string{driftContent, driftMetadata, driftMissing, driftExtra, driftGolden} {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
			total += c[k]
		}
	}
	return fmt.Sprintf("%d paths (%s)", total, strings.Join(parts, ", "))
}

// compareTrees compares what the manifest recorded (want) with what a walk
// found (got), both in tree.Compare order, and returns the paths that
// differ. Local identity (device, inode, ctime, link count) is not
// compared; content is compared by hash when both sides have one, else by
// size.
func compareTrees(want, got []*tree.Entry) []drift {
	var out []drift
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		var w, g *tree.Entry
		switch {
		case j >= len(got):
			w = want[i]
			i++
		case i >= len(want):
			g = got[j]
			j++
		default:
			switch c := tree.Compare(want[i].Path, got[j].Path); {
			case c < 0:
				w = want[i]
				i++
			case c > 0:
				g = got[j]
				j++
			default:
				w, g = want[i], got[j]
				i++
				j++
			}
		}
		switch {
		case g == nil:
			out = append(out, drift{Path: w.Path, Kind: driftMissing, Detail: w.Type.String()})
		case w == nil:
			out = append(out, drift{Path: g.Path, Kind: driftExtra, Detail: g.Type.String()})
		default:
			out = append(out, compareEntry(w, g)...)
		}
	}
	return out
}

func compareEntry(w, g *tree.Entry) []drift {
	var out []drift
	if w.Type != g.Type {
		return []drift{{Path: w.Path, Kind: driftContent, Detail: fmt.Sprintf("type %s -> %s", w.Type, g.Type)}}
	}
	var content []string
	switch w.Type {
	case tree.TypeRegular:
		if w.LinkTo == "" && g.LinkTo == "" {
			switch {
			case w.Size != g.Size:
				content = append(content, fmt.Sprintf("size %d -> %d", w.Size, g.Size))
			case w.Hashed() && g.Hashed() && w.Hash != g.Hash:
				content = append(content, "content hash differs")
			}
		}
	case tree.TypeSymlink:
		if w.Target != g.Target {
			content = append(content, fmt.Sprintf("target %q -> %q", w.Target, g.Target))
		}
	case tree.TypeCharDev, tree.TypeBlockDev:
		if w.Rdev != g.Rdev {
			content = append(content, fmt.Sprintf("device %#x -> %#x", w.Rdev, g.Rdev))
		}
	}
	if len(content) > 0 {
		out = append(out, drift{Path: w.Path, Kind: driftContent, Detail: strings.Join(content, ", ")})
	}
	var meta []string
	if w.Type != tree.TypeSymlink && w.Mode != g.Mode {
		meta = append(meta, fmt.Sprintf("mode %04o -> %04o", w.Mode, g.Mode))
	}
	if w.UID != g.UID || w.GID != g.GID {
		meta = append(meta, fmt.Sprintf("owner %d:%d -> %d:%d", w.UID, w.GID, g.UID, g.GID))
	}
	if w.Mtime != g.Mtime {
		meta = append(meta, fmt.Sprintf("mtime %s -> %s", nsTime(w.Mtime), nsTime(g.Mtime)))
	}
	if !tree.XattrsEqual(w.Xattrs, g.Xattrs) {
		acl, other := xattrKinds(w.Xattrs, g.Xattrs)
		if acl {
			meta = append(meta, "ACLs differ")
		}
		if other {
			meta = append(meta, "xattrs differ")
		}
	}
	if w.LinkTo != g.LinkTo {
		meta = append(meta, fmt.Sprintf("hard link %q -> %q", w.LinkTo, g.LinkTo))
	}
	if len(meta) > 0 {
		out = append(out, drift{Path: w.Path, Kind: driftMetadata, Detail: strings.Join(meta, ", ")})
	}
	return out
}

// xattrKinds says whether the ACL xattrs and the other xattrs differ.
func xattrKinds(a, b []tree.Xattr) (acl, other bool) {
	isACL := func(n string) bool { return n == "system.posix_acl_access" || n == "system.posix_acl_default" }
	pick := func(xs []tree.Xattr, want bool) []tree.Xattr {
		var out []tree.Xattr
		for _, x := range xs {
			if isACL(x.Name) == want {
				out = append(out, x)
			}
		}
		return out
	}
	return !tree.XattrsEqual(pick(a, true), pick(b, true)), !tree.XattrsEqual(pick(a, false), pick(b, false))
}

func nsTime(ns int64) string {
	return time.Unix(0, ns).UTC().Format("2006-01-02T15:04:05.999999999Z")
}
