package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
)

// TestListAndPruneGenerations lists an image's generations by config
// name, by directory and for the whole config, and prunes them under the
// image's lock.
func TestListAndPruneGenerations(t *testing.T) {
	s := newSite(t, golden)
	cfg := s.config(t, false, "")
	load := func() (*config.Config, error) { return cfg, nil }
	for i := range 2 {
		if err := os.WriteFile(filepath.Join(s.golden, "etc/hostname"), []byte{byte('a' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := cluster.Run(context.Background(), cfg, cluster.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{nil, {"rhel9"}, {s.root}} {
		all, err := cluster.ListImageGenerations(args, "", load)
		if err != nil || len(all) != 1 || all[0].Image != s.root || len(all[0].Generations) != 2 {
			t.Errorf("ListImageGenerations(%q) = %+v, %v; want the image's 2 generations", args, all, err)
		}
	}
	if _, err := cluster.ListImageGenerations([]string{"nope"}, "", load); !errors.Is(err, cluster.ErrNoImage) {
		t.Errorf("an unknown image: %v, want ErrNoImage", err)
	}
	notDir := filepath.Join(s.base, "golden", "etc", "hostname") // a file as state dir
	if _, err := cluster.ListImageGenerations([]string{s.root}, notDir, load); cluster.StepOf(err) != cluster.StepGenerations {
		t.Errorf("an unreadable state dir: %v (step %q), want StepGenerations", err, cluster.StepOf(err))
	}

	ref, err := cluster.ResolveImage("rhel9", "", load)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := imaging.Lock(ref.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Prune(ref, imaging.GenerationPolicy{Keep: 1}, time.Now()); !errors.Is(err, imaging.ErrLocked) || cluster.StepOf(err) != cluster.StepLock {
		t.Errorf("Prune of a locked image: %v, want a StepLock ErrLocked", err)
	}
	unlock()
	rep, err := cluster.Prune(ref, imaging.GenerationPolicy{Keep: 1}, time.Now())
	if err != nil || rep.Image != s.root || len(rep.Removed) != 1 {
		t.Errorf("Prune(keep 1) = %+v, %v; want one generation removed", rep, err)
	}
}

// TestVerifyTarget checks what verify's argument names: a config image
// by name, else a directory.
func TestVerifyTarget(t *testing.T) {
	s := newSite(t, golden)
	cfg := s.config(t, false, "")
	load := func() (*config.Config, error) { return cfg, nil }
	noConfig := func() (*config.Config, error) { return nil, config.ErrNoFile }
	t.Chdir(s.base)
	if err := os.Mkdir("rhel9", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, arg   string
		configNamed bool
		load        func() (*config.Config, error)
		image, root string
		is          error
	}{
		{name: "config image", arg: "rhel9", configNamed: true, load: load, image: "rhel9"},
		{name: "a directory of the name, no config named", arg: "rhel9", load: noConfig, root: filepath.Join(s.base, "rhel9")},
		{name: "a path", arg: s.root, load: noConfig, root: s.root},
		{name: "unknown name", arg: "nope", load: load, is: cluster.ErrNoImage},
		{name: "no config", arg: "nope", load: noConfig, is: config.ErrNoFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o cluster.VerifyOptions
			err := o.Target(tc.arg, tc.configNamed, tc.load)
			if !errors.Is(err, tc.is) || (err == nil) != (tc.is == nil) {
				t.Fatalf("Target: %v, want %v", err, tc.is)
			}
			if tc.image != "" && (o.Image == nil || o.Image.Name != tc.image) {
				t.Errorf("image %+v, want %s", o.Image, tc.image)
			}
			if o.Root != tc.root {
				t.Errorf("root %q, want %q", o.Root, tc.root)
			}
		})
	}
}

// TestStatusByDirectory checks that Status takes an image by its root
// directory, as by its name.
func TestStatusByDirectory(t *testing.T) {
	s := newSite(t, golden)
	cfg := s.config(t, false, "")
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		t.Fatal(err)
	}
	reps, err := cluster.Status(cfg, cluster.StatusOptions{Images: []string{s.root}})
	if err != nil || len(reps) != 1 || reps[0].Image != "rhel9" {
		t.Errorf("Status(%s) = %+v, %v; want image rhel9's", s.root, reps, err)
	}
	if _, err := cluster.Status(cfg, cluster.StatusOptions{Images: []string{t.TempDir()}}); !errors.Is(err, imaging.ErrNotImage) {
		t.Errorf("Status of a directory of no image: %v, want ErrNotImage", err)
	}
}
