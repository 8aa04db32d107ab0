// Command replab runs a command inside a network lab of a golden node, a
// primary and replica image servers (internal/netlab), for the replica
// benchmark (bench/replicas.sh). Run it as root:
//
//	replab [-replicas N] [-dir DIR] -- COMMAND [ARG...]
//
// The command runs as the primary (10.77.0.1) with the lab in its
// environment:
//
//	LAB_RSH           the ssh command line reaching every host (rsync -e, goldsync -e)
//	LAB_GOLDEN        root@10.77.0.10
//	LAB_GOLDEN_DIR    the golden node's own directory
//	LAB_PRIMARY_DIR   the primary's own directory
//	LAB_REPLICAS      root@10.77.0.11 ... (space-separated)
//	LAB_REPLICA_DIRS  each replica's own directory, in the same order
//	LAB_REPLICA_NAMES r1 ... in the same order
//
// The hosts' directories live in DIR and are kept, so a second run reuses
// trees made by the first. replab exits with the command's status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/goldsync/goldsync/internal/netlab"
)

func main() {
	replicas := flag.Int("replicas", netlab.MaxReplicas, "number of replicas (0 to 8)")
	dir := flag.String("dir", "/var/tmp/gs-replab", "directory of the hosts' files (kept)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: replab [-replicas N] [-dir DIR] -- COMMAND [ARG...]")
		os.Exit(2)
	}
	if err := netlab.Enter(); err != nil {
		fmt.Fprintln(os.Stderr, "replab:", err)
		os.Exit(1)
	}
	code, err := run(*dir, *replicas, flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "replab:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(dir string, replicas int, argv []string) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := netlab.Start(dir, netlab.Options{Replicas: replicas})
	if err != nil {
		return 1, err
	}
	defer l.Close()
	var addrs, dirs, names []string
	for _, r := range l.Replicas {
		addrs, dirs, names = append(addrs, r.UserHost()), append(dirs, r.Root), append(names, r.Name)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		"LAB_RSH="+l.Rsh(),
		"LAB_GOLDEN="+l.Golden.UserHost(),
		"LAB_GOLDEN_DIR="+l.Golden.Root,
		"LAB_PRIMARY_DIR="+l.Primary.Root,
		"LAB_REPLICAS="+strings.Join(addrs, " "),
		"LAB_REPLICA_DIRS="+strings.Join(dirs, " "),
		"LAB_REPLICA_NAMES="+strings.Join(names, " "),
	)
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() >= 0 {
		return ee.ExitCode(), nil
	}
	return 0, err
}
