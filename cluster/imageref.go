package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
)

// ImageRef is an image a command line names: the name of an [[image]] of
// the cluster config, or an image directory.
type ImageRef struct {
	// Root is the image's root directory, as given or from the config.
	Root string
	// StateDir is its state dir: the one asked for, else the config's,
	// else the default beside Root.
	StateDir string
	// Name is the config's name of the image (given, or the image whose
	// root the directory is); "" for a directory of no config image.
	Name string
}

// ResolveImage finds the image arg names. A word without a "/" that is
// no existing path is an image name of the config load returns; anything
// else is a directory, which is matched against the config's image roots
// when a config loads (its errors are then ignored: a plain directory
// needs none). stateDir, when set, is the image's state dir. An unknown
// name is a StepConfig error wrapping ErrNoImage; a missing directory, a
// file, or a directory with no state dir (goldsync never pulled into it)
// is a StepImage error, the last wrapping imaging.ErrNotImage. Errors of
// load for a name are returned as they are.
func ResolveImage(arg, stateDir string, load func() (*config.Config, error)) (ImageRef, error) {
	if !strings.Contains(arg, "/") && arg != "." && arg != ".." {
		if _, err := os.Stat(arg); err != nil {
			cfg, err := load()
			if err != nil {
				return ImageRef{}, err
			}
			img, ok := cfg.Image(arg)
			if !ok {
				return ImageRef{}, noImage("%s is neither an image directory nor an image of %s (images: %s)", arg, cfg.Path, strings.Join(cfg.ImageNames(), ", "))
			}
			return ImageRef{Root: img.Root, StateDir: or(stateDir, img.StateDir), Name: img.Name}, nil
		}
	}
	st, err := os.Stat(arg)
	if err != nil {
		return ImageRef{}, stepErr(StepImage, fmt.Errorf("image: %w", err))
	} else if !st.IsDir() {
		return ImageRef{}, stepErr(StepImage, fmt.Errorf("image %s is not a directory", arg))
	}
	if cfg, err := load(); err == nil {
		for _, img := range cfg.Images {
			if ri, err := os.Stat(img.Root); err == nil && os.SameFile(st, ri) {
				return ImageRef{Root: arg, StateDir: or(stateDir, img.StateDir), Name: img.Name}, nil
			}
		}
	}
	if stateDir == "" {
		def := imaging.DefaultStateDir(arg)
		if _, err := os.Stat(def); errors.Is(err, fs.ErrNotExist) {
			return ImageRef{}, stepErr(StepImage, kindError{imaging.ErrNotImage,
				fmt.Errorf("%s is not an image: it has no state dir %s (goldsync never pulled into it; give --state-dir if its state is elsewhere)", arg, def)})
		}
	}
	return ImageRef{Root: arg, StateDir: or(stateDir, imaging.DefaultStateDir(arg))}, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ImageNames returns the names of the config's images args name, each an
// image name or the root directory of one of cfg's images (ResolveImage),
// for Status and Run. A directory of no image of cfg is a StepImage error
// wrapping imaging.ErrNotImage.
func ImageNames(cfg *config.Config, args []string) ([]string, error) {
	var names []string
	for _, a := range args {
		if _, ok := cfg.Image(a); ok {
			names = append(names, a)
			continue
		}
		ref, err := ResolveImage(a, "", func() (*config.Config, error) { return cfg, nil })
		if err != nil {
			return nil, err
		}
		if ref.Name == "" {
			return nil, stepErr(StepImage, kindError{imaging.ErrNotImage, fmt.Errorf("%s is not an image of %s (its images: %s); goldsync generations %s lists its own generations",
				a, cfg.Path, strings.Join(cfg.ImageNames(), ", "), a)})
		}
		names = append(names, ref.Name)
	}
	return names, nil
}
