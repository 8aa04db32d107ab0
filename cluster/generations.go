package cluster

import (
	"time"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
)

// ListImageGenerations returns the generations of the images args name
// (ResolveImage, with stateDir), or of every image of the config load
// returns when args is empty. The errors of ResolveImage and load are
// returned as they are; a state dir whose generations cannot be read is
// a StepGenerations error.
func ListImageGenerations(args []string, stateDir string, load func() (*config.Config, error)) ([]ImageGenerations, error) {
	if len(args) == 0 {
		cfg, err := load()
		if err != nil {
			return nil, err
		}
		args = cfg.ImageNames()
	}
	var all []ImageGenerations
	for _, a := range args {
		ref, err := ResolveImage(a, stateDir, load)
		if err != nil {
			return nil, err
		}
		gens, err := imaging.ListGenerations(ref.StateDir)
		if err != nil {
			return nil, stepErr(StepGenerations, err)
		}
		all = append(all, ImageGenerations{Image: ref.Root, Generations: gens})
	}
	return all, nil
}

// Prune removes the generations of the image policy no longer keeps, and
// their content (imaging.PruneGenerations), under the image's lock. A
// lock that cannot be taken is a StepLock error (wrapping
// imaging.ErrLocked when another run holds it); a failed pruning a
// StepGenerations error.
func Prune(ref ImageRef, policy imaging.GenerationPolicy, now time.Time) (PruneReport, error) {
	rep := PruneReport{Image: ref.Root}
	unlock, err := imaging.Lock(ref.StateDir)
	if err != nil {
		return rep, stepErr(StepLock, err)
	}
	defer unlock()
	rep.Removed, rep.FreedBytes, err = imaging.PruneGenerations(ref.StateDir, policy, now)
	return rep, stepErr(StepGenerations, err)
}
