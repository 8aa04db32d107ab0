package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goldsync/goldsync/agent"
	"github.com/goldsync/goldsync/agent/push"
	"github.com/goldsync/goldsync/agent/watch"
	"github.com/goldsync/goldsync/imaging/exclude"
	"github.com/goldsync/goldsync/imaging/wire"
	"github.com/goldsync/goldsync/internal/cli"
)

type pushFlags struct {
	to           []string
	rsh          string
	receiverPath string
	receiveArgs  []string
	persist      time.Duration
	replicaWait  time.Duration
	allOfRoot    bool // --no-default-excludes
}

func (f *pushFlags) register(cmd *cli.Command, toFlag string, persist time.Duration) {
	fl := cmd.Flags()
	fl.DurationVar(&f.persist, "ssh-persist", persist, "keep the ssh connection up `D` after a push, so the next one skips the login (OpenSSH ControlMaster, socket in the state dir; 0 turns it off)")
	fl.DurationVar(&f.replicaWait, "replica-wait", push.DefaultReplicaWait, "after the server confirms, wait up to `D` for it to update the image's replicas (receive --image) before leaving it to finish alone; -1s waits without limit")
	fl.StringArrayVar(&f.to, toFlag, nil, "image to push to, `[user@]server:/image` (repeatable)")
	fl.StringVarP(&f.rsh, "rsh", "e", "ssh", "remote shell `COMMAND`, as rsync's -e")
	fl.StringVar(&f.receiverPath, "receiver-path", "goldsync", "goldsync `PATH` on the image server")
	fl.StringArrayVar(&f.receiveArgs, "receive-arg", nil, "extra `ARG` for goldsync receive on the server (repeatable), e.g. --receive-arg=--exclude=/scratch/*")
	fl.BoolVar(&f.allOfRoot, "no-default-excludes", false, "ask the receiver to copy /proc/*, /sys/*, /dev/*, /run/*, /tmp/*, /var/tmp/*, /var/lib/goldsync/* too (a receiver restricted to a config image takes its excludes from the config)")
}

func (f *pushFlags) push(ctx context.Context, g *globalFlags, to string) error {
	root, err := filepath.Abs(g.root)
	if err != nil {
		return err
	}
	args := f.receiveArgs
	if f.allOfRoot {
		args = append(append([]string(nil), args...), "--no-default-excludes")
	}
	res, err := push.Push(ctx, push.Options{Root: root, StateDir: g.stateDir, To: to, Rsh: f.rsh,
		ReceiverPath: f.receiverPath, ReceiveArgs: args, Persist: f.persist, ReplicaWait: f.replicaWait, Logger: g.logger()})
	// The server's own lines, unless the error below says them already
	// (a remote shell that failed: its message, made inert, is the
	// error's).
	if res != nil && res.Stderr != "" {
		lines := wire.InertLines(res.Stderr)
		if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(lines)) {
			fmt.Fprintln(os.Stderr, lines)
		}
	}
	if err != nil {
		return fmt.Errorf("push to %s: %w", to, err)
	}
	if res.ReplicasPending {
		fmt.Fprintf(os.Stderr, "goldsync-agent: pushed to %s in %.3fs; the server is still updating the image's replicas (not waited for past --replica-wait %v: goldsync status on the server shows them)\n", to, res.Duration.Seconds(), f.replicaWait)
		return nil
	}
	fmt.Fprintf(os.Stderr, "goldsync-agent: pushed to %s in %.3fs\n", to, res.Duration.Seconds())
	return nil
}

func newPushCmd(g *globalFlags) *cli.Command {
	f := &pushFlags{}
	cmd := &cli.Command{
		Use:   "push --to [user@]server:/image",
		Short: "send the changes since the last push to image servers (run after yum/dnf)",
		Args:  cli.NoArgs,
		Run: func(ctx context.Context, _ *cli.Command, _ []string) error {
			if len(f.to) == 0 {
				return fmt.Errorf("push needs --to [user@]server:/image")
			}
			for _, to := range f.to {
				if err := f.push(ctx, g, to); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.register(cmd, "to", 0)
	return cmd
}

func newWatchCmd(g *globalFlags) *cli.Command {
	f := &pushFlags{}
	var excludes []string
	var quiet time.Duration
	var backend string
	cmd := &cli.Command{
		Use:   "watch [--push-to [user@]server:/image]...",
		Short: "watch the golden tree and keep the change journal (and push when changes settle)",
		Args:  cli.NoArgs,
		Run: func(ctx context.Context, _ *cli.Command, _ []string) error {
			return runWatch(ctx, g, f, excludes, quiet, backend)
		},
	}
	f.register(cmd, "push-to", 10*time.Minute)
	cmd.Flags().StringArrayVar(&excludes, "exclude", []string{"/proc/*", "/sys/*"}, "`PATTERN`s of paths not to record (rsync patterns; repeatable)")
	cmd.Flags().DurationVar(&quiet, "quiet-period", 2*time.Second, "push once changes have settled for `D`")
	cmd.Flags().StringVar(&backend, "backend", "auto", "`KIND` of watch: auto, fanotify or inotify")
	return cmd
}

func runWatch(ctx context.Context, g *globalFlags, f *pushFlags, excludes []string, quiet time.Duration, backend string) error {
	log := g.logger()
	root, err := filepath.Abs(g.root)
	if err != nil {
		return err
	}
	stateDir := g.stateDir
	if stateDir == "" {
		stateDir = agent.DefaultStateDir()
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return err
	}
	j, err := watch.OpenJournal(agent.JournalDir(stateDir, root), watch.JournalOptions{Logger: log})
	if err != nil {
		return err
	}
	defer j.Close()
	m, err := exclude.New(excludes)
	if err != nil {
		return err
	}
	wo := watch.WatchOptions{Logger: log, Backend: backend}
	if m != nil {
		wo.Exclude = m
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- watch.Watch(ctx, root, j, wo) }()
	if len(f.to) == 0 {
		return <-errc
	}
	// Push loop: when the journal holds changes a destination has not
	// acknowledged, and they stopped growing for the quiet period, push.
	last := map[string]string{}
	tick := time.NewTicker(quiet)
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-tick.C:
		}
		dests, err := j.Destinations()
		if err != nil {
			log.Warn("journal", "err", err)
			continue
		}
		for _, to := range f.to {
			cs, err := j.Since(dests["push:"+to])
			if err != nil || (!cs.Full && len(cs.Scopes) == 0) {
				continue
			}
			now := fmt.Sprint(cs.Full, cs.Scopes)
			if last[to] != now {
				last[to] = now // still changing: wait another period
				continue
			}
			if err := f.push(ctx, g, to); err != nil {
				log.Error("push failed; will retry", "to", to, "err", err)
				continue
			}
			delete(last, to)
		}
	}
}
