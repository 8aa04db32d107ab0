package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
	"github.com/goldsync/goldsync/internal/exitcode"
)

// genFlags are the generation flags of pull and receive.
type genFlags struct {
	keep    int
	keepFor time.Duration
	off     bool
}

func (f *genFlags) register(cmd *cobra.Command, keep int) {
	f.registerKeep(cmd, keep)
	cmd.Flags().BoolVar(&f.off, "no-generations", false, "record no generation for this run (content older generations need is still kept)")
}

// registerKeep registers the retention flags alone, for a command that
// records no generation (prune).
func (f *genFlags) registerKeep(cmd *cobra.Command, keep int) {
	fl := cmd.Flags()
	fl.IntVar(&f.keep, "keep-generations", keep, "keep the newest `N` generations of the image (0: no limit by count)")
	fl.DurationVar(&f.keepFor, "keep-generations-for", 0, "also keep generations younger than `D`")
}

func (f *genFlags) policy(source string) *imaging.GenerationPolicy {
	if f.off {
		return nil
	}
	return &imaging.GenerationPolicy{Keep: f.keep, KeepFor: f.keepFor, Source: source}
}

// resolveImage finds the image a command line names (cluster.ResolveImage).
func resolveImage(g *globalFlags, arg, stateDir string) (cluster.ImageRef, error) {
	ref, err := cluster.ResolveImage(arg, stateDir, func() (*config.Config, error) { return loadConfig(g) })
	return ref, exitcode.ClusterErr(context.Background(), err)
}

// parseGens parses generation ids.
func parseGens(args []string) ([]int64, error) {
	ids := make([]int64, len(args))
	for i, s := range args {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, exitcode.With(exitcode.Usage, fmt.Errorf("generation %q: want a generation id (see goldsync generations)", s))
		}
		ids[i] = id
	}
	return ids, nil
}

func newGenerationCmds(g *globalFlags) []*cobra.Command {
	var stateDir string
	stateFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&stateDir, "state-dir", "", "the image's state `DIR` (default: .<image>.goldsync beside it, or the config's)")
	}

	list := &cobra.Command{
		Use:   "generations [IMAGE...]",
		Short: "list an image's generations",
		RunE: func(cmd *cobra.Command, args []string) error {
			all, err := cluster.ListImageGenerations(args, stateDir, func() (*config.Config, error) { return loadConfig(g) })
			if err != nil {
				return exitcode.ClusterErr(cmd.Context(), err)
			}
			return g.show(all, func(w io.Writer) error { return cluster.WriteImageGenerations(w, all, time.Now()) })
		},
	}
	stateFlag(list)

	var (
		dryRun, itemize bool
		force           bool
		maxDelete       int
		gf              genFlags
	)
	rollback := &cobra.Command{
		Use:   "rollback IMAGE GEN",
		Short: "make the live image equal to one of its generations",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return exitcode.With(exitcode.Usage, fmt.Errorf("rollback %s: which generation? give GEN (goldsync generations %s lists them)", args[0], args[0]))
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := parseGens(args[1:])
			if err != nil {
				return err
			}
			id := ids[0]
			ref, err := resolveImage(g, args[0], stateDir)
			if err != nil {
				return err
			}
			if ref.Name != "" && stateDir == "" {
				// An image of the cluster config: its snapshots and
				// netboot files follow, as after a sync.
				return runSync(cmd.Context(), g, &syncFlags{dryRun: dryRun, itemize: itemize, rollbackTo: id, force: force}, []string{ref.Name})
			}
			opts := imaging.Options{StateDir: ref.StateDir, DryRun: dryRun, MaxDelete: maxDelete,
				Logger: g.logger(os.Stderr), Generations: gf.policy("")}
			if itemize || (dryRun && !g.jsonOut) {
				opts.Itemize = func(c imaging.Change) { printf("%s\n", c) }
			}
			res, err := imaging.Rollback(cmd.Context(), ref.Root, id, imaging.RollbackOptions{Options: opts, Force: force})
			if res != nil && !g.quiet && !g.jsonOut {
				_ = cluster.WriteRollbackSummary(os.Stderr, ref.Root, id, dryRun, res, err)
			}
			if g.jsonOut && res != nil {
				if jerr := printJSON(cluster.NewRollbackReport(ref.Root, id, dryRun, res)); jerr != nil {
					return jerr
				}
			}
			return exitcode.Rollback(cluster.RollbackHint(err))
		},
	}
	fl := rollback.Flags()
	fl.BoolVarP(&dryRun, "dry-run", "n", false, "show what would change, change nothing")
	fl.BoolVarP(&itemize, "itemize-changes", "i", false, "print each change in rsync's itemized format")
	fl.BoolVar(&force, "force", false, "roll back over changes to the image its manifest does not know, and without the free-space check")
	fl.IntVar(&maxDelete, "max-delete", -1, "refuse a rollback deleting more than `N` entries (-1: no limit)")
	// A rollback prunes only when asked: the pulls' policy is theirs.
	gf.register(rollback, 0)
	stateFlag(rollback)

	diff := &cobra.Command{
		Use:   "diff IMAGE GEN [GEN]",
		Short: "itemize the changes between two generations, or a generation and the live image",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := resolveImage(g, args[0], stateDir)
			if err != nil {
				return err
			}
			ids, err := parseGens(args[1:])
			if err != nil {
				return err
			}
			ids = append(ids, 0) // no second GEN: the live image
			changes, err := imaging.DiffGenerations(ref.StateDir, ids[0], ids[1])
			if err != nil {
				if errors.Is(err, imaging.ErrNoGeneration) {
					return exitcode.With(exitcode.Select, err)
				}
				return exitcode.With(exitcode.IO, err)
			}
			return g.show(changes, func(w io.Writer) error {
				for _, c := range changes {
					fmt.Fprintf(w, "%s\n", c)
				}
				return nil
			})
		},
	}
	stateFlag(diff)

	pin := func(use string, on bool) *cobra.Command {
		c := &cobra.Command{
			Use:   use + " IMAGE GEN...",
			Short: map[bool]string{true: "keep generations whatever the policy", false: "let the policy prune generations again"}[on],
			Args:  cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				ref, err := resolveImage(g, args[0], stateDir)
				if err != nil {
					return err
				}
				ids, err := parseGens(args[1:])
				if err != nil {
					return err
				}
				for _, id := range ids {
					if err := imaging.PinGeneration(ref.StateDir, id, on); err != nil {
						return exitcode.With(exitcode.Select, err)
					}
				}
				if g.jsonOut {
					return printJSON(map[string]any{"image": ref.Root, use: ids})
				}
				return nil
			},
		}
		stateFlag(c)
		return c
	}

	var pf genFlags
	prune := &cobra.Command{
		Use:   "prune IMAGE",
		Short: "remove the generations the policy no longer keeps, and their content",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := resolveImage(g, args[0], stateDir)
			if err != nil {
				return err
			}
			rep, err := cluster.Prune(ref, *pf.policy(""), time.Now())
			if err != nil {
				return exitcode.ClusterErr(cmd.Context(), err)
			}
			if g.quiet && !g.jsonOut {
				return nil
			}
			return g.show(rep, rep.WriteText)
		},
	}
	pf.registerKeep(prune, 10)
	stateFlag(prune)

	return []*cobra.Command{list, rollback, diff, pin("pin", true), pin("unpin", false), prune}
}
