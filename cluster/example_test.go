package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/imaging"
)

// Run pulls each image of a config; a program reports the result itself,
// and tells errors apart with errors.Is and cluster.StepOf.
func ExampleRun() {
	base, err := os.MkdirTemp("", "cluster-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(base)
	golden := filepath.Join(base, "golden")
	os.MkdirAll(filepath.Join(golden, "etc"), 0o755)
	os.WriteFile(filepath.Join(golden, "etc", "hostname"), []byte("golden\n"), 0o644)

	cfg, err := config.Parse("goldsync.toml", fmt.Appendf(nil, `
[[image]]
name = "rhel9"
source = %q
root = %q
`, golden, filepath.Join(base, "rhel9")))
	if err != nil {
		log.Fatal(err)
	}
	rep, err := cluster.Run(context.Background(), cfg, cluster.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rep.Images {
		fmt.Printf("%s: %s, created %d\n", r.Image, r.Result, r.Pull.Created)
	}

	// The golden tree is gone: the pull's guard refuses to empty the image.
	os.RemoveAll(golden)
	os.MkdirAll(golden, 0o755)
	_, err = cluster.Run(context.Background(), cfg, cluster.Options{})
	fmt.Println("step:", cluster.StepOf(err), "guard:", errors.Is(err, imaging.ErrGuard))
	// Output:
	// rhel9: ok, created 2
	// step: pull guard: true
}

// Status reads back what the runs recorded.
func ExampleStatus() {
	cfg := &config.Config{Path: "goldsync.toml", Images: []config.Image{{Name: "rhel9", Root: "/nonexistent/rhel9", StateDir: "/nonexistent/.rhel9.goldsync"}}}
	st, err := cluster.Status(cfg, cluster.StatusOptions{MaxAge: 26 * time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: synced %v, stale %v, healthy %v\n", st[0].Image, st[0].Synced, st[0].Stale, st[0].Healthy())
	// Output:
	// rhel9: synced false, stale true, healthy false
}

// Replicate brings an image's replicas to its newest generation, as
// goldsync sync does after the pull; a program can run it alone (here
// after a pull of its own), and see each replica's outcome.
func ExampleReplicate() {
	cfg, err := config.Load("/etc/goldsync/goldsync.toml")
	if err != nil {
		log.Fatal(err)
	}
	reports, err := cluster.Replicate(context.Background(), cfg, "rhel9", cluster.ReplicateOptions{
		ReplicaDone: func(r *cluster.ReplicaReport) { fmt.Println(r.Replica, r.Result, "generation", r.Generation) },
	})
	if errors.Is(err, cluster.ErrReplica) {
		// Some replicas were not updated: their nodes boot from the
		// primary until a later run reaches them.
		for _, r := range reports {
			if r.Err != nil {
				fmt.Println(r.Replica, "down:", r.Error)
			}
		}
	} else if err != nil {
		log.Fatal(err)
	}
}
