// Command rusage runs a command and appends what it cost (wall, CPU, peak
// memory, as package measure reports them) as one JSON line to a file. The
// benchmark runner puts it in front of the remote rsync and goldsync-agent
// so the golden node's side is measured too:
//
//	rusage -o FILE [-tag NAME] [-count] -- COMMAND [ARGS...]
//
// It passes its stdin, stdout and stderr to the command untouched (they
// carry the protocol), forwards SIGINT, SIGTERM and SIGHUP, and exits with
// the command's exit code. With -count it copies stdin and stdout through
// pipes instead and records how many bytes went each way (the bytes on the
// wire of a protocol that does not count them itself).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/goldsync/goldsync/bench/internal/measure"
)

// record is one line of the output file.
type record struct {
	Tag  string   `json:"tag,omitempty"`
	Argv []string `json:"argv"`
	measure.Usage
	// StdinBytes and StdoutBytes are counted with -count only.
	StdinBytes  int64 `json:"stdin_bytes,omitempty"`
	StdoutBytes int64 `json:"stdout_bytes,omitempty"`
}

func main() {
	out := flag.String("o", "", "append the JSON usage line to `FILE` (required)")
	tag := flag.String("tag", "", "label for the line")
	count := flag.Bool("count", false, "count the bytes through stdin and stdout")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: rusage -o FILE [-tag NAME] -- COMMAND [ARGS...]")
		os.Exit(2)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var nIn, nOut atomic.Int64
	var copied sync.WaitGroup
	var childOut *os.File
	if *count {
		inR, inW, err := os.Pipe()
		if err != nil {
			fail(err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			fail(err)
		}
		cmd.Stdin, cmd.Stdout, childOut = inR, outW, outW
		go func() {
			copyCounting(inW, os.Stdin, &nIn)
			inW.Close()
		}()
		copied.Add(1)
		go func() {
			defer copied.Done()
			copyCounting(os.Stdout, outR, &nOut)
		}()
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			if cmd.Process != nil {
				cmd.Process.Signal(s)
			}
		}
	}()
	u, err := measure.Run(cmd, measure.Options{})
	if err != nil {
		fail(err)
	}
	if childOut != nil {
		childOut.Close() // the child has exited: the copy sees EOF
		copied.Wait()
	}
	b, _ := json.Marshal(record{Tag: *tag, Argv: flag.Args(), Usage: u, StdinBytes: nIn.Load(), StdoutBytes: nOut.Load()})
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.Write(append(b, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rusage:", err)
	}
	os.Exit(u.ExitCode)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rusage:", err)
	os.Exit(127)
}

// copyCounting copies src to dst, adding what it wrote to n as it goes.
func copyCounting(dst *os.File, src *os.File, n *atomic.Int64) {
	buf := make([]byte, 256<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
			n.Add(int64(k))
		}
		if err != nil {
			return
		}
	}
}
