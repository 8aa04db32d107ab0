// Command gentree makes and changes the trees goldsync is benchmarked on
// (package bench/internal/gen). Everything is deterministic by seed.
//
//	gentree tree   [-seed S] -n FILES DIR      synthetic root-like tree
//	gentree sparse [-seed S] DIR               sparse-heavy tree
//	gentree debian [-seed S] [-cache DIR] DIR  debootstrap'd Debian root + tricky parts
//	gentree mutate [-seed S] -change yum|blocks -journal JDIR DIR
//	gentree revert -journal JDIR DIR
//
// It prints what it made or changed as JSON on stdout. Run it as root:
// owners, devices and capabilities need it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/goldsync/goldsync/bench/internal/gen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gentree:", err)
		if errors.Is(err, gen.ErrNoDebian) {
			os.Exit(3)
		}
		os.Exit(1)
	}
}

const usage = `usage:
  gentree tree   [-seed S] -n FILES DIR
  gentree sparse [-seed S] DIR
  gentree debian [-seed S] [-cache DIR] DIR
  gentree mutate [-seed S] -change yum|blocks -journal JDIR DIR
  gentree revert -journal JDIR DIR`

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("gentree "+args[0], flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "seed of the tree or change")
	n := fs.Int("n", 0, "number of regular files (tree)")
	cache := fs.String("cache", "/var/tmp/goldsync-bench", "cache `DIR` for the debootstrap'd root (debian)")
	change := fs.String("change", "yum", "yum or blocks (mutate)")
	journal := fs.String("journal", "", "journal `DIR` on the tree's filesystem, outside it (mutate, revert)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(usage)
	}
	dir := fs.Arg(0)
	var out any
	var err error
	switch args[0] {
	case "tree":
		out, err = gen.Tree(ctx, dir, gen.Spec{Kind: gen.KindSynthetic, Files: *n, Seed: *seed})
	case "sparse":
		out, err = gen.Tree(ctx, dir, gen.Spec{Kind: gen.KindSparse, Seed: *seed})
	case "debian":
		out, err = gen.Debian(ctx, *cache, dir, *seed, func(s string) { fmt.Fprintln(os.Stderr, "gentree:", s) })
	case "mutate", "revert":
		if *journal == "" {
			return errors.New("-journal is required")
		}
		if args[0] == "revert" {
			return gen.Revert(dir, *journal)
		}
		out, err = gen.Mutate(dir, *journal, gen.Change(*change), *seed)
	default:
		return errors.New(usage)
	}
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
