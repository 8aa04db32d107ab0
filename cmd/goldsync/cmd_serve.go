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
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/export"
	"github.com/goldsync/goldsync/internal/exitcode"
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
				return exitcode.With(exitcode.Usage, errors.New(rsyncChildCmd+" is started by goldsync serve, not by hand"))
			}
			export.ChildMain(cmd.Context())
			return nil
		},
	}
}

func runServe(cmd *cobra.Command, g *globalFlags, f *serveFlags, names []string) error {
	ctx := cmd.Context()
	if f.rsyncListen == "" {
		return exitcode.With(exitcode.Usage, errors.New("serve needs --rsync-listen ADDR (the only export there is)"))
	}
	// The --image pairs, or the config's images and [export] settings;
	// flags given win.
	fl := cmd.Flags()
	req := cluster.ServeRequest{Pairs: f.images, Names: names, MaxConnections: f.maxConnections, MaxPerIP: f.maxPerIP,
		MaxConnectionsSet: fl.Changed("max-connections"), MaxPerIPSet: fl.Changed("max-per-ip"),
		Allow: f.allow, AllowSet: fl.Changed("allow"), ServeRootOnly: f.serveRootOnly}
	opts, err := req.Options(func() (*config.Config, error) { return loadConfig(g) })
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	opts.ChildArgs, opts.Unconfined, opts.IdleTimeout, opts.Logger = []string{rsyncChildCmd}, f.unconfined, f.timeout, g.logger(os.Stderr)
	srv, err := export.New(opts)
	if errors.Is(err, export.ErrNoLandlock) {
		return exitcode.With(exitcode.Usage, fmt.Errorf("%w; --unconfined serves anyway, with only the handshake's path checks (and, as root, a chroot) between a symlink in an image and the rest of the filesystem", err))
	}
	if err != nil {
		return exitcode.With(exitcode.Select, err)
	}
	ln, err := net.Listen("tcp", f.rsyncListen)
	if err != nil {
		return exitcode.With(exitcode.Start, fmt.Errorf("rsync listener: %w", err))
	}
	if f.unconfined && !strings.HasPrefix(srv.Confinement(), "Landlock") {
		fmt.Fprintf(os.Stderr, "goldsync serve: WARNING: serving WITHOUT Landlock: %s\n", srv.Confinement())
	}
	for _, line := range srv.Banner(ln.Addr()) {
		if !g.quiet {
			fmt.Fprintf(os.Stderr, "goldsync serve: %s\n", line)
		}
	}
	if err := srv.Serve(ctx, ln); err != nil {
		if errors.Is(err, export.ErrConfinement) {
			return exitcode.With(exitcode.Start, err)
		}
		return exitcode.With(exitcode.IO, err)
	}
	return nil
}
