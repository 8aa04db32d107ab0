package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/export"
)

// ServeOptions returns the rsync export's options of the config: its
// images (the named ones, or all; see SelectImages) as modules, and its
// [export] settings, zero ones left to the export's defaults. Errors are
// SelectImages'.
func ServeOptions(cfg *config.Config, names []string) (export.Options, error) {
	imgs, err := SelectImages(cfg, names)
	if err != nil {
		return export.Options{}, err
	}
	o := export.Options{Allow: cfg.Export.Allow, ServeRootOnly: cfg.Export.ServeRootOnly}
	for _, img := range imgs {
		o.Images = append(o.Images, export.Image{Name: img.Name, Root: img.Root})
	}
	if cfg.Export.MaxConnections > 0 {
		o.MaxConnections = cfg.Export.MaxConnections
	}
	if cfg.Export.MaxPerIP > 0 {
		o.MaxPerIP = cfg.Export.MaxPerIP
	}
	return o, nil
}

// ServeRequest is what goldsync serve's command line asks for: the
// images, as NAME=PATH pairs or as names of the config's, and settings
// that win over the config's [export] ones.
type ServeRequest struct {
	// Pairs are NAME=PATH images (export.ParseImages); they replace the
	// config's, which is then not read.
	Pairs []string
	// Names are images of the config to serve (SelectImages; none: all).
	Names []string
	// MaxConnections and MaxPerIP win over the config's when their Set
	// field says they were given, and stand in for a config without them.
	MaxConnections, MaxPerIP       int
	MaxConnectionsSet, MaxPerIPSet bool
	// Allow, when AllowSet, replaces the config's [export] allow
	// (export.ParseAllow).
	Allow    []string
	AllowSet bool
	// ServeRootOnly adds to the config's serve_root_only.
	ServeRootOnly bool

	// Listen is the rsync listener's address (host:port); required by
	// Serve.
	Listen string
	// Unconfined, ChildArgs, IdleTimeout and Logger are export.Options'.
	Unconfined  bool
	ChildArgs   []string
	IdleTimeout time.Duration
	Logger      *slog.Logger
	// Say, when set, is told the export's start-up lines
	// (export.Server.Banner); Warn that Unconfined took effect.
	Say, Warn func(line string)
}

// Serve runs the export the request asks for (Options) on Listen until
// ctx ends. Its errors are *StepError: StepConfig for the request (a
// kernel without Landlock, unless Unconfined, says what --unconfined
// does), StepImage for an export that cannot start (export.New),
// StepListen for the listener, StepServe for serving (wrapping
// export.ErrConfinement when the confinement's self-test failed); load's
// errors are returned as they are.
func (r ServeRequest) Serve(ctx context.Context, load func() (*config.Config, error)) error {
	if r.Listen == "" {
		return stepErr(StepConfig, errors.New("serve needs --rsync-listen ADDR (the only export there is)"))
	}
	if err := checkListen(r.Listen); err != nil {
		return stepErr(StepConfig, err)
	}
	opts, err := r.Options(load)
	if err != nil {
		return stepErr(StepConfig, err)
	}
	opts.ChildArgs, opts.Unconfined, opts.IdleTimeout, opts.Logger = r.ChildArgs, r.Unconfined, r.IdleTimeout, r.Logger
	srv, err := export.New(opts)
	if errors.Is(err, export.ErrNoLandlock) {
		return stepErr(StepConfig, fmt.Errorf("%w; --unconfined serves anyway, with only the handshake's path checks (and, as root, a chroot) between a symlink in an image and the rest of the filesystem", err))
	} else if err != nil {
		return stepErr(StepImage, err)
	}
	ln, err := net.Listen("tcp", r.Listen)
	if err != nil {
		return stepErr(StepListen, fmt.Errorf("rsync listener: %w", err))
	}
	if r.Unconfined && !strings.HasPrefix(srv.Confinement(), "Landlock") && r.Warn != nil {
		r.Warn("serving WITHOUT Landlock: " + srv.Confinement())
	}
	for _, line := range srv.Banner(ln.Addr()) {
		if r.Say != nil {
			r.Say(line)
		}
	}
	return stepErr(StepServe, srv.Serve(ctx, ln))
}

// Options returns the export's options the request asks for; load reads
// the config, called only when the images come from it. An error is the
// request's (bad pairs, pairs and names both, an unknown name, a bad
// network) or load's.
func (r ServeRequest) Options(load func() (*config.Config, error)) (export.Options, error) {
	var opts export.Options
	switch images, err := export.ParseImages(r.Pairs); {
	case err != nil:
		return opts, fmt.Errorf("--%w", err)
	case len(images) > 0 && len(r.Names) > 0:
		return opts, errors.New("give images either as --image NAME=PATH or as names from the config, not both")
	case len(images) > 0:
		opts.Images = images
	default:
		cfg, err := load()
		if err != nil {
			return opts, err
		}
		if opts, err = ServeOptions(cfg, r.Names); err != nil {
			return opts, err
		}
	}
	opts.ServeRootOnly = opts.ServeRootOnly || r.ServeRootOnly
	if r.MaxConnectionsSet || opts.MaxConnections == 0 {
		opts.MaxConnections = r.MaxConnections
	}
	if r.MaxPerIPSet || opts.MaxPerIP == 0 {
		opts.MaxPerIP = r.MaxPerIP
	}
	if r.AllowSet {
		var err error
		if opts.Allow, err = export.ParseAllow(r.Allow); err != nil {
			return opts, fmt.Errorf("--allow: %w", err)
		}
	}
	return opts, nil
}

// checkListen refuses a malformed listener address before anything starts
// (a usage error, not a failed start). A port of digits must fit 16 bits;
// any other is a service name the listener looks up.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--rsync-listen %q: want host:port (%v)", addr, err)
	}
	digits := strings.Trim(port, "0123456789") == ""
	if _, perr := strconv.ParseUint(port, 10, 16); port == "" || digits && perr != nil {
		return fmt.Errorf("--rsync-listen %q: port %q: want a number from 0 to 65535", addr, port)
	}
	return nil
}
