package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/internal/exitcode"
	"github.com/goldsync/goldsync/internal/gctune"
	stdiostream "github.com/goldsync/goldsync/internal/stdio"
)

func newReceiveCmd(g *globalFlags) *cobra.Command {
	f := &pullFlags{}
	var stdio bool
	var image string
	cmd := &cobra.Command{
		Use:   "receive --stdio (--image NAME | [flags] DEST)",
		Short: "apply a push from a golden node's agent (started by goldsync-agent push through ssh)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r cluster.PullRequest
			var cfg *config.Config // receive --image's
			pullFlag := pullOnly(cmd)
			switch {
			case !stdio:
				return exitcode.With(exitcode.Usage, errors.New("receive needs --stdio (it is started by goldsync-agent push)"))
			case pullFlag != "":
				return exitcode.With(exitcode.Usage, fmt.Errorf("receive: --%s is pull's: a receive reaches no golden node, the agent's push reaches it", pullFlag))
			case image != "":
				var err error
				if r, cfg, err = restrictedReceive(cmd, g, image, args); err != nil {
					return err
				}
			case len(args) != 1:
				return exitcode.With(exitcode.Usage, errors.New("receive needs DEST, or --image NAME"))
			default:
				r = f.request(cmd, g, "push", args[0])
			}
			r.Grown = gctune.SmallRun() // small (a replica's update) until the push grows
			res, err := r.Receive(cmd.Context(), stdiostream.New())
			if res != nil && !g.quiet {
				fmt.Fprintln(os.Stderr, cluster.ReceiveLine(r.Dest, res))
			}
			if err == nil && cfg != nil { // the push stands whatever its replicas do
				// The agent stops waiting for this after its
				// --replica-wait and drops the connection: finish the
				// replicas anyway, whatever a write to the gone
				// session's stderr returns.
				signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
				// A line a replica as it is done: an agent that stops
				// waiting still has the prompt replicas' lines.
				var mu sync.Mutex
				reps, rerr := cluster.ReplicatePush(cmd.Context(), cfg, image, cluster.ReplicateOptions{Logger: r.Logger,
					ReplicaDone: func(rr *cluster.ReplicaReport) {
						mu.Lock()
						defer mu.Unlock()
						for _, l := range cluster.ReplicaLines([]*cluster.ReplicaReport{rr}) {
							fmt.Fprintln(os.Stderr, "goldsync receive: "+l)
						}
					}})
				if rerr != nil && reps == nil {
					r.Logger.Warn("replicas not updated (the next sync updates them)", "err", rerr)
				}
			}
			return exitcode.Pull(cmd.Context(), err)
		},
	}
	cmd.Flags().BoolVar(&stdio, "stdio", false, "speak the protocol on stdin and stdout")
	cmd.Flags().StringVar(&image, "image", "", "receive into the config's image `NAME` only, with its settings, then update its replicas that lack the new generation (for a forced command in authorized_keys)")
	f.register(cmd)
	return cmd
}

// pullOnly returns the first flag given to receive that only a pull
// uses (it reaches the golden node), or "".
func pullOnly(cmd *cobra.Command) string {
	for _, name := range []string{"rsh", "agent-path", "streams", "full-scan"} {
		if cmd.Flags().Changed(name) {
			return name
		}
	}
	return ""
}

// restrictedReceive is the request of receive --image: the restricted
// mode of a forced command in authorized_keys (cluster.ReceiveImage).
// Nothing the client chose reaches it: a DEST or any other receive flag
// is refused (only --stdio, --image and the global flags are allowed),
// and SSH_ORIGINAL_COMMAND is never read for anything but a debug line.
func restrictedReceive(cmd *cobra.Command, g *globalFlags, name string, args []string) (cluster.PullRequest, *config.Config, error) {
	if len(args) > 0 {
		return cluster.PullRequest{}, nil, exitcode.With(exitcode.Usage, fmt.Errorf("receive --image %s takes no DEST: the image's root comes from the config", name))
	}
	var extra []string
	cmd.LocalFlags().Visit(func(fl *pflag.Flag) {
		if fl.Name != "stdio" && fl.Name != "image" {
			extra = append(extra, "--"+fl.Name)
		}
	})
	if len(extra) > 0 {
		return cluster.PullRequest{}, nil, exitcode.With(exitcode.Usage, fmt.Errorf("receive --image %s takes its settings from the config, not %s", name, strings.Join(extra, " ")))
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return cluster.PullRequest{}, nil, err
	}
	r, err := cluster.ReceiveImage(cfg, name)
	if err != nil {
		return r, nil, exitcode.ClusterErr(cmd.Context(), err)
	}
	r.Logger = g.logger(os.Stderr)
	if orig := os.Getenv("SSH_ORIGINAL_COMMAND"); orig != "" {
		r.Logger.Debug("restricted receive: the client's command is ignored", "image", name, "asked", orig)
	}
	return r, cfg, nil
}
