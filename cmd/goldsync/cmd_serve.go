package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/export"
)

// rsyncChildCmd is the hidden subcommand the export starts, one process
// per connection, to serve it confined.
const rsyncChildCmd = "rsync-export-child"

// newServeCmds returns the read-only rsync-protocol export command and its
// hidden child.
func newServeCmds(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newServeCmd(g), newRsyncChildCmd()}
}

type serveFlags struct {
	rsyncListen    string
	images         []string
	unconfined     bool
	maxConnections int
	maxPerIP       int
	allow          []string
	serveRootOnly  bool
	timeout        time.Duration
}

func newServeCmd(g *globalFlags) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve --rsync-listen ADDR [--image NAME=PATH]... [IMAGE...]",
		Short: "export images read-only over the rsync daemon protocol",
		Long: `Serve exports images read-only to stock rsync clients and replica image
servers: each image is an rsync module, rsync://HOST:PORT/IMAGE/.

The images are the config file's [[image]] entries (all of them, or the
IMAGE names given), or only the --image NAME=PATH pairs when any is given.

The protocol is rsync 27 as github.com/gokrazy/rsync v0.2.2 speaks it, so
a pull keeps types, contents, modes (set-id bits too), numeric owners,
symlinks, devices, fifos, sockets and hard links (-H), but neither xattrs
and ACLs (file capabilities included) nor sub-second mtimes; see
docs/RSYNC-EXPORT.md. Pull with rsync -aH --numeric-ids.

Nothing can be uploaded. Each connection is served by a new process
confined to its image: Landlock lets it read nothing else, and as root it
runs as nobody (able to read every file of the image), chrooted into the
image, in a mount namespace where the image is read-only and nodev. A
self-test proves the confinement before the first client is accepted.
Without Landlock (Linux < 5.13, or disabled) serve refuses to start unless
--unconfined is given.

Only clients from the allow-list's networks are served (--allow, or the
config's [export] allow; by default loopback and the private ranges
10/8, 172.16/12, 192.168/16, 169.254/16, fc00::/7, fe80::/10), at most
--max-connections at once, handshakes included, and --max-per-ip from one
address. The contents of root-only files (regular files owned by root
that others may not read: /etc/shadow, ssh host keys) are withheld: the
client gets their names and modes, an error naming them and exit status
23, and skips --delete. A replica image server that must be complete
needs --serve-root-only (or serve_root_only = true). See docs/SECURITY.md.`,
		Example: `  # every image of /etc/goldsync/goldsync.toml on the rsync port
  goldsync serve --rsync-listen :873

  # one directory, for a test
  goldsync serve --rsync-listen 127.0.0.1:8730 --image rhel9=/diskless/x86_64/rhel9/root

  # on a replica image server
  rsync -aH --numeric-ids --delete rsync://imageserver/rhel9/ /diskless/x86_64/rhel9/root/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd, g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.rsyncListen, "rsync-listen", "", "serve the rsync daemon protocol on `ADDR` (host:port; :873 is rsync's port)")
	fl.StringArrayVar(&f.images, "image", nil, "export directory PATH as module NAME (`NAME=PATH`, repeatable; replaces the config's images)")
	fl.BoolVar(&f.unconfined, "unconfined", false, "serve even when the kernel lacks Landlock (DANGEROUS: see --help)")
	fl.IntVar(&f.maxConnections, "max-connections", export.DefaultMaxConnections, "transfers served at once (`N` child processes)")
	fl.IntVar(&f.maxPerIP, "max-per-ip", export.DefaultMaxPerIP, "connections from one client address at once (`N`)")
	fl.StringSliceVar(&f.allow, "allow", nil, "serve only clients from these networks (`CIDR`[,CIDR...], repeatable; default: the config's [export] allow, else loopback and private ranges; 0.0.0.0/0,::/0 for all)")
	fl.BoolVar(&f.serveRootOnly, "serve-root-only", false, "also serve the contents of root-only files (owner root, not readable by others: /etc/shadow, host keys); for replica image servers")
	fl.DurationVar(&f.timeout, "timeout", export.DefaultIdleTimeout, "end a transfer whose client sends or takes nothing for this long")
	return cmd
}

// newRsyncChildCmd is what a Server starts for each connection; it is not
// for people.
func newRsyncChildCmd() *cobra.Command {
	return &cobra.Command{
		Use:    rsyncChildCmd,
		Short:  "serve one rsync connection, confined (started by goldsync serve)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !export.IsChild() {
				return withCode(exitUsage, errors.New(rsyncChildCmd+" is started by goldsync serve, not by hand"))
			}
			export.ChildMain(cmd.Context())
			return nil
		},
	}
}

func runServe(cmd *cobra.Command, g *globalFlags, f *serveFlags, names []string) error {
	ctx := cmd.Context()
	if f.rsyncListen == "" {
		return withCode(exitUsage, errors.New("serve needs --rsync-listen ADDR (the only export there is)"))
	}
	// The --image pairs, or the config's images and [export] settings;
	// flags given win.
	var opts export.Options
	switch images, err := export.ParseImages(f.images); {
	case err != nil:
		return withCode(exitUsage, fmt.Errorf("--%w", err))
	case len(images) > 0 && len(names) > 0:
		return withCode(exitUsage, errors.New("give images either as --image NAME=PATH or as names from the config, not both"))
	case len(images) > 0:
		opts.Images = images
	default:
		cfg, err := loadConfig(g)
		if err != nil {
			return err
		}
		if opts, err = cluster.ServeOptions(cfg, names); err != nil {
			return withCode(exitUsage, err)
		}
	}
	fl := cmd.Flags()
	opts.ChildArgs, opts.Unconfined, opts.IdleTimeout, opts.Logger = []string{rsyncChildCmd}, f.unconfined, f.timeout, g.logger(os.Stderr)
	opts.ServeRootOnly = opts.ServeRootOnly || f.serveRootOnly
	if fl.Changed("max-connections") || opts.MaxConnections == 0 {
		opts.MaxConnections = f.maxConnections
	}
	if fl.Changed("max-per-ip") || opts.MaxPerIP == 0 {
		opts.MaxPerIP = f.maxPerIP
	}
	if fl.Changed("allow") {
		var err error
		if opts.Allow, err = export.ParseAllow(f.allow); err != nil {
			return withCode(exitUsage, fmt.Errorf("--allow: %w", err))
		}
	}
	srv, err := export.New(opts)
	if errors.Is(err, export.ErrNoLandlock) {
		return withCode(exitUsage, fmt.Errorf("%w; --unconfined serves anyway, with only the handshake's path checks (and, as root, a chroot) between a symlink in an image and the rest of the filesystem", err))
	}
	if err != nil {
		return withCode(exitSelect, err)
	}
	ln, err := net.Listen("tcp", f.rsyncListen)
	if err != nil {
		return withCode(exitStart, fmt.Errorf("rsync listener: %w", err))
	}
	if f.unconfined && !strings.HasPrefix(srv.Confinement(), "Landlock") {
		fmt.Fprintf(os.Stderr, "goldsync serve: WARNING: serving WITHOUT Landlock: %s\n", srv.Confinement())
	}
	if !g.quiet {
		var list []string
		for _, img := range srv.Images() {
			list = append(list, img.Name+"="+img.Root)
		}
		fmt.Fprintf(os.Stderr, "goldsync serve: rsync://%s/ read-only: %s\n", ln.Addr(), strings.Join(list, " "))
		allow := opts.Allow
		if allow == nil {
			allow = export.DefaultAllow
		}
		withheld := "withheld"
		if opts.ServeRootOnly {
			withheld = "SERVED"
		}
		fmt.Fprintf(os.Stderr, "goldsync serve: clients from %v; root-only files %s\n", allow, withheld)
	}
	if err := srv.Serve(ctx, ln); err != nil {
		if errors.Is(err, export.ErrConfinement) {
			return withCode(exitStart, err)
		}
		return withCode(exitIO, err)
	}
	return nil
}
