// Command fanout brings replicas of an image up to date with its newest
// generation (cluster.Replicate, what goldsync sync does after its pull)
// and says how long it took, for the replica benchmark (bench/replicas.sh):
//
//	fanout -config FILE [-image NAME] [-replicas r1,r2] [-fanout N]
//
// It prints one line per replica (seconds, who fed it, full compare or
// not, files and bytes sent) followed by the receiver's own line (what it
// applied, its CPU time and peak memory), and a total line with the wall
// time and the CPU this process and its children (the ssh clients) used.
// Node snapshots and boot files are not built
// (cluster.ReplicateOptions.NoBuild): only the image is pushed, as rsync
// would. It exits 1 when a replica failed. With
// GOLDSYNC_PROFILE set it writes Go CPU and heap profiles as goldsync does
// (internal/profile).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/goldsync/goldsync/cluster"
	"github.com/goldsync/goldsync/config"
	"github.com/goldsync/goldsync/internal/profile"
)

func main() {
	cfgPath := flag.String("config", "", "cluster config `FILE` (required)")
	image := flag.String("image", "", "image `NAME` (default: the config's only image)")
	replicas := flag.String("replicas", "", "comma-separated replica names (default: all)")
	fanout := flag.Int("fanout", 0, "replicas updated at once (0: the config's, else twice the cores)")
	flag.Parse()
	stopProfile := profile.Start()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, *cfgPath, *image, *replicas, *fanout)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fanout:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfgPath, image, replicas string, fanout int) error {
	if cfgPath == "" {
		return fmt.Errorf("-config is required")
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if image == "" {
		if len(cfg.Images) != 1 {
			return fmt.Errorf("the config has %d images: name one with -image", len(cfg.Images))
		}
		image = cfg.Images[0].Name
	}
	o := cluster.ReplicateOptions{Fanout: fanout, NoBuild: true}
	if replicas != "" {
		o.Replicas = strings.Split(replicas, ",")
	}
	var before, beforeKids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &beforeKids)
	start := time.Now()
	reports, rerr := cluster.Replicate(ctx, cfg, image, o)
	wall := time.Since(start)
	var after, afterKids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &afterKids)
	for _, r := range reports {
		via := r.Via
		if via == "" {
			via = "primary"
		}
		line := fmt.Sprintf("  %s: %s in %.2fs from %s, generation %d, full compare %v, entries %d, files %d, bytes %d",
			r.Replica, r.Result, r.Seconds, via, r.Generation, r.Full, r.Entries, r.Files, r.Bytes)
		if r.Error != "" {
			line += ": " + r.Error
		}
		fmt.Println(line)
		if r.Receiver != "" {
			fmt.Printf("    %s %s\n", r.Replica, r.Receiver)
		}
	}
	selfCPU := tv(after.Utime) - tv(before.Utime) + tv(after.Stime) - tv(before.Stime)
	kidsCPU := tv(afterKids.Utime) - tv(beforeKids.Utime) + tv(afterKids.Stime) - tv(beforeKids.Stime)
	user := tv(after.Utime) - tv(before.Utime) + tv(afterKids.Utime) - tv(beforeKids.Utime)
	sys := tv(after.Stime) - tv(before.Stime) + tv(afterKids.Stime) - tv(beforeKids.Stime)
	fmt.Printf("goldsync fan-out to %d replicas: %.3fs (primary user %.3fs sys %.3fs; goldsync %.3fs, ssh clients %.3fs)\n",
		len(reports), wall.Seconds(), user.Seconds(), sys.Seconds(), selfCPU.Seconds(), kidsCPU.Seconds())
	return rerr
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}
