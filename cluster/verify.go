package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
	"github.com/goldsync/goldsync/remote"
)

// The kinds of drift Verify reports.
const (
	DriftContent  = "content"  // file content, symlink target, device number or type
	DriftMetadata = "metadata" // mode, owner, mtime, xattrs, ACLs, hard links
	DriftMissing  = "missing"  // in the manifest, not in the image
	DriftExtra    = "extra"    // in the image, not in the manifest
	DriftGolden   = "golden"   // differs from the golden node (Against)
)

// Drift is one path that differs.
type Drift struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	Detail string `json:"detail,omitempty"`
}

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Image, when set, is the config's image: its root, state dir,
	// excludes, delete policy and remote settings are the defaults.
	Image *config.Image
	// Root is the image directory (required without Image).
	Root string
	// StateDir holds the manifest; default Image's, else
	// imaging.DefaultStateDir(Root).
	StateDir string
	// Excludes are added to Image's.
	Excludes []string
	// Against, when set, also compares the image with this source, as a
	// dry-run pull would: each difference is a DriftGolden.
	Against string
	// Rsh is the remote shell for Against; default Image's.
	Rsh string
	// Logger receives the libraries' logs; nil discards them.
	Logger *slog.Logger
}

// Target sets the image arg names, as goldsync verify takes it: a word
// without a "/" is an image of the config load returns (unless no config
// was named, configNamed false, and a directory of that name exists);
// anything else is an image directory. An unknown name is a StepConfig
// error wrapping ErrNoImage; load's errors are returned as they are.
func (o *VerifyOptions) Target(arg string, configNamed bool, load func() (*config.Config, error)) error {
	isDir := func() bool { st, err := os.Stat(arg); return err == nil && st.IsDir() }
	if !strings.Contains(arg, "/") && arg != "." && arg != ".." && (configNamed || !isDir()) {
		cfg, err := load()
		if err != nil {
			return err
		}
		img, ok := cfg.Image(arg)
		if !ok {
			return noImage("no image %q in %s (images: %s); write a path with a / for an image directory",
				arg, cfg.Path, strings.Join(cfg.ImageNames(), ", "))
		}
		o.Image = img
		return nil
	}
	root, err := filepath.Abs(arg)
	o.Root = root
	return stepErr(StepConfig, err)
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Image           string         `json:"image,omitempty"`
	Root            string         `json:"root"`
	StateDir        string         `json:"state_dir"`
	ManifestEntries int            `json:"manifest_entries"`
	Checked         int            `json:"checked"`
	HashedBytes     int64          `json:"hashed_bytes"`
	Unreadable      int            `json:"unreadable"`
	Against         string         `json:"against,omitempty"`
	Clean           bool           `json:"clean"`
	Drift           []Drift        `json:"drift"`
	Counts          map[string]int `json:"counts"`
	Seconds         float64        `json:"seconds"`
}

// Verify re-reads every file of an image and compares it with the
// manifest the last sync recorded (see CompareTrees), and optionally with
// the golden tree. Drift is not an error: it is in the report (Clean is
// false). Nothing is written. Errors are StepErrors: StepManifest
// (wrapping ErrNoManifest when there is none), StepExcludes, StepImage,
// StepConnect and StepPull (for Against).
func Verify(ctx context.Context, o VerifyOptions) (*VerifyReport, error) {
	start := time.Now()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &VerifyReport{Drift: []Drift{}, Counts: map[string]int{}, Root: o.Root}
	var excludes []string
	ro := remote.Options{Rsh: o.Rsh, Logger: log, Serve: agent.InProcess}
	noDelete := false
	if img := o.Image; img != nil {
		rep.Image, rep.Root, rep.StateDir = img.Name, img.Root, img.StateDir
		excludes = append(excludes, img.Excludes...)
		ro.AgentPath, ro.Streams, ro.IdleTimeout = img.AgentPath, img.Streams, img.Timeout
		if ro.Rsh == "" {
			ro.Rsh = img.Rsh
		}
		noDelete = img.NoDelete
	}
	if rep.Root == "" {
		return nil, stepErr(StepImage, errors.New("no image root"))
	}
	if rep.StateDir == "" {
		rep.StateDir = imaging.DefaultStateDir(rep.Root)
	}
	if o.StateDir != "" {
		rep.StateDir = o.StateDir
	}
	excludes = append(excludes, o.Excludes...)

	if _, err := os.Stat(rep.Root); err != nil {
		return nil, stepErr(StepImage, fmt.Errorf("image: %w", err))
	}
	// 1. The image against its manifest, every file re-read.
	m, err := imaging.LoadManifest(imaging.State(rep.StateDir).Manifest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, stepErr(StepManifest, kindError{ErrNoManifest, fmt.Errorf("no manifest in %s: the image was never synced by goldsync, or its state dir is elsewhere (--state-dir)", rep.StateDir)})
	}
	if err != nil {
		return nil, stepErr(StepManifest, err)
	}
	rep.ManifestEntries = len(m.Entries)
	wo := imaging.WalkOptions{Hash: true, Logger: log, Temps: func(string) {}}
	if len(excludes) > 0 {
		ex, err := exclude.New(excludes)
		if err != nil {
			return nil, stepErr(StepExcludes, fmt.Errorf("excludes: %w", err))
		}
		wo.Exclude = ex
	}
	root, err := fsx.OpenRoot(rep.Root)
	if err != nil {
		return nil, stepErr(StepImage, fmt.Errorf("image: %w", err))
	}
	defer root.Close()
	w, err := imaging.Walk(ctx, root, wo)
	if err != nil {
		return nil, stepErr(StepImage, err)
	}
	rep.Checked, rep.HashedBytes, rep.Unreadable = len(w.Entries), w.HashedBytes, w.Problems
	rep.Drift = append(rep.Drift, CompareTrees(m.Entries, w.Entries)...)

	// 2. Optionally, the image against the golden node: a dry-run pull.
	if o.Against != "" {
		rep.Against = o.Against
		source, err := remote.Open(ctx, o.Against, ro)
		if err != nil {
			return nil, stepErr(StepConnect, err)
		}
		opts := imaging.Options{DryRun: true, MaxDelete: -1, StateDir: rep.StateDir, Excludes: excludes, Logger: log, NoDelete: noDelete}
		opts.Itemize = func(c imaging.Change) {
			rep.Drift = append(rep.Drift, Drift{Path: strings.TrimSuffix(c.Path, "/") + c.Extra, Kind: DriftGolden, Detail: strings.TrimSpace(c.Code)})
		}
		_, err = imaging.Sync(ctx, source, rep.Root, opts)
		source.Close()
		if err != nil {
			return nil, stepErr(StepPull, err)
		}
	}
	for _, d := range rep.Drift {
		rep.Counts[d.Kind]++
	}
	rep.Clean = len(rep.Drift) == 0
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// CountsText says how many paths drifted, by kind: "3 paths (content 1,
// missing 2)".
func CountsText(c map[string]int) string {
	var parts []string
	total := 0
	for _, k := range []string{DriftContent, DriftMetadata, DriftMissing, DriftExtra, DriftGolden} {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
			total += c[k]
		}
	}
	return fmt.Sprintf("%d paths (%s)", total, strings.Join(parts, ", "))
}

// CompareTrees compares what the manifest recorded (want) with what a walk
// found (got), both in tree.Compare order, and returns the paths that
// differ. Local identity (device, inode, ctime, link count) is not
// compared; content is compared by hash when both sides have one, else by
// size.
func CompareTrees(want, got []*tree.Entry) []Drift {
	var out []Drift
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
			out = append(out, Drift{Path: w.Path, Kind: DriftMissing, Detail: w.Type.String()})
		case w == nil:
			out = append(out, Drift{Path: g.Path, Kind: DriftExtra, Detail: g.Type.String()})
		default:
			out = append(out, compareEntry(w, g)...)
		}
	}
	return out
}

func compareEntry(w, g *tree.Entry) []Drift {
	var out []Drift
	if w.Type != g.Type {
		return []Drift{{Path: w.Path, Kind: DriftContent, Detail: fmt.Sprintf("type %s -> %s", w.Type, g.Type)}}
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
	// One drift a path: a file whose content changed has its metadata
	// (its mtime at least) changed too; both go in the content drift's
	// detail, so verify counts and lists the path once.
	switch {
	case len(content) > 0:
		out = append(out, Drift{Path: w.Path, Kind: DriftContent, Detail: strings.Join(append(content, meta...), ", ")})
	case len(meta) > 0:
		out = append(out, Drift{Path: w.Path, Kind: DriftMetadata, Detail: strings.Join(meta, ", ")})
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
