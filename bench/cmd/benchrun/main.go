// Command benchrun compares goldsync with stock rsync on the same trees in
// the same run, over a real OpenSSH sshd on loopback, and writes a Markdown
// table, CSV files and a plot under bench/results.
//
// For each tree (synthetic trees of -sizes files, a debootstrap'd Debian
// root, a sparse-heavy tree) and scenario (full pull, no change, a yum-like
// change, the agent's push of it (logging in, and over a shared ssh
// connection as watch --push-to pushes), a few changed blocks in a large
// file, the 128-node snapshot build), it runs
//
//	rsync -aHAXS --numeric-ids --delete --stats -e RSH --rsync-path 'rusage ... rsync' \
//	      --exclude='/proc/*' --exclude='/sys/*' root@127.0.0.1:SRC/ DEST/
//	goldsync pull -e RSH --json --agent-path WRAPPER --exclude='/proc/*' --exclude='/sys/*' \
//	      root@127.0.0.1:SRC DEST
//
// alternately (rsync, goldsync, rsync, goldsync, ...), -pairs pairs, with
// warm caches and with caches dropped before each run. The local side is
// measured with wait4 (and a /proc sampler for the process tree's memory),
// the remote side by bench/cmd/rusage wrapped around the remote rsync and
// goldsync-agent. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	work      string
	out       string
	bin       string
	sizes     []int
	trees     map[string]bool
	scenarios []string
	modes     []string
	pairs     int
	seed      uint64
	merge     bool
	report    bool
	streams   int
	snapshot  string
	watchBack string
	verbose   bool
	noFloor   bool // no tar copy-floor row in the full scenario
	noRsync   bool // no rsync runs (a tree whose three destinations do not fit)
	timeout   time.Duration
	notes     []string // said in the results
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	c := &config{}
	sizes := flag.String("sizes", "10000,50000", "synthetic tree sizes (regular files), comma-separated; 10k and 1M also work")
	trees := flag.String("trees", "synthetic,debian,sparse", "tree kinds to run: synthetic, debian, sparse")
	scen := flag.String("scenarios", strings.Join(allScenarios, ","), "scenarios to run")
	modes := flag.String("modes", "warm,cold", "cache modes: warm, cold (cold drops the page cache before each run)")
	flag.IntVar(&c.pairs, "pairs", 3, "rsync/goldsync pairs per scenario and mode")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the trees and changes")
	flag.StringVar(&c.work, "work", "/var/tmp/goldsync-bench", "work `DIR`: trees, destinations, sshd, state (needs several GiB)")
	flag.StringVar(&c.out, "out", "bench/results", "results `DIR`")
	flag.StringVar(&c.bin, "bin", "", "`DIR` holding goldsync, goldsync-agent and rusage (default: beside benchrun)")
	flag.BoolVar(&c.merge, "merge", true, "keep earlier results of trees/scenarios/modes not run now")
	flag.BoolVar(&c.report, "report-only", false, "run nothing: rewrite summary.csv, summary.md and wall.png from runs.csv")
	flag.IntVar(&c.streams, "streams", 1, "goldsync --streams")
	flag.StringVar(&c.snapshot, "snapshot-script", "bench/snapshot/run.sh", "the snapshot builder's benchmark script (bench/snapshot/run.sh); n/a when missing")
	flag.StringVar(&c.watchBack, "watch-backend", "auto", "goldsync-agent watch --backend for the push scenarios: auto, fanotify, inotify")
	flag.BoolVar(&c.verbose, "v", false, "log every command")
	flag.BoolVar(&c.noFloor, "no-floor", false, "leave out the full scenario's copy-floor row (ssh tar | tar into an empty dir)")
	flag.BoolVar(&c.noRsync, "no-rsync", false, "leave out rsync's runs (for a tree whose three full destinations do not fit on the disk: run the floor and goldsync alone; no ratios to rsync)")
	flag.DurationVar(&c.timeout, "run-timeout", 30*time.Minute, "give up on one tool run after this long")
	flag.Parse()
	if c.report {
		c.merge = true
		if err := os.MkdirAll(c.out, 0o755); err != nil {
			return err
		}
		return writeResults(c, nil, nil)
	}
	if os.Geteuid() != 0 {
		return errors.New("run as root: the trees have owners, devices and capabilities, and cold runs drop caches")
	}
	for _, s := range strings.Split(*sizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(strings.NewReplacer("k", "000", "m", "000000").Replace(strings.ToLower(s)))
		if err != nil || n < 1000 {
			return fmt.Errorf("bad size %q", s)
		}
		c.sizes = append(c.sizes, n)
	}
	c.trees = map[string]bool{}
	for _, t := range strings.Split(*trees, ",") {
		c.trees[strings.TrimSpace(t)] = true
	}
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		if !validScenario(s) {
			return fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(allScenarios, ", "))
		}
		c.scenarios = append(c.scenarios, s)
	}
	for _, m := range strings.Split(*modes, ",") {
		m = strings.TrimSpace(m)
		if m != "warm" && m != "cold" {
			return fmt.Errorf("unknown mode %q", m)
		}
		c.modes = append(c.modes, m)
	}
	if c.bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.bin = filepath.Dir(exe)
	}
	var err error
	if c.bin, err = filepath.Abs(c.bin); err != nil {
		return err
	}
	if c.work, err = filepath.Abs(c.work); err != nil {
		return err
	}
	for _, b := range []string{"goldsync", "goldsync-agent", "rusage"} {
		if _, err := os.Stat(filepath.Join(c.bin, b)); err != nil {
			return fmt.Errorf("%s not in %s: build it (make bench builds everything into bin/)", b, c.bin)
		}
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	b, err := newBench(ctx, c)
	if err != nil {
		return err
	}
	defer b.close()
	runs, err := b.runAll(ctx)
	// Write what was measured even after a failure.
	if werr := writeResults(c, b, runs); werr != nil && err == nil {
		err = werr
	}
	return err
}
