package measure

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Usage is what one command cost.
type Usage struct {
	Wall time.Duration `json:"wall_ns"`
	// User and Sys are CPU time of the command and the descendants it
	// reaped (wait4 semantics: children it never waited for are missing).
	User time.Duration `json:"user_ns"`
	Sys  time.Duration `json:"sys_ns"`
	// MaxRSS is the peak resident memory of the largest single process
	// of the tree (ru_maxrss), in bytes.
	MaxRSS int64 `json:"max_rss"`
	// TreeRSS sums, over the process and every descendant seen (but
	// Options.SkipTree), each process's own peak resident memory
	// (VmHWM), sampled every SampleEvery (more often at first), in bytes. It is an upper bound
	// of the tree's simultaneous peak; a process that lives less than an
	// interval, or grows after its last sample, is undercounted.
	TreeRSS  int64 `json:"tree_rss"`
	ExitCode int   `json:"exit_code"`
}

// CPU is User + Sys.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// SampleEvery is the interval of the process-tree memory sampler, once it
// has ramped up from 5 ms.
const SampleEvery = 100 * time.Millisecond

// Options tune the measurement. The zero value measures everything.
type Options struct {
	// SkipTree names processes (by /proc/PID/comm, e.g. "ssh") whose
	// memory TreeRSS leaves out; their descendants still count. MaxRSS
	// cannot leave anything out.
	SkipTree []string
}

// Run starts cmd, waits for it and returns its usage. A non-zero exit is
// not an error (see Usage.ExitCode); failing to start or wait is.
func Run(cmd *exec.Cmd, opts Options) (Usage, error) {
	p, err := Start(cmd, opts)
	if err != nil {
		return Usage{}, err
	}
	return p.Wait()
}

// Proc is a started, measured command.
type Proc struct {
	cmd   *exec.Cmd
	start time.Time
	mu    sync.Mutex
	hwm   map[int]int64 // peak RSS per process seen
	stop  chan struct{}
	done  chan struct{}
}

// Start starts cmd and its memory sampler; Wait ends both.
func Start(cmd *exec.Cmd, opts Options) (*Proc, error) {
	p := &Proc{cmd: cmd, start: time.Now(), hwm: map[int]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	go func() {
		defer close(p.done)
		// Sample often at first, so short runs are seen at their size.
		every := 5 * time.Millisecond
		for {
			p.mu.Lock()
			sampleTree(pid, opts.SkipTree, p.hwm)
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
			every = min(2*every, SampleEvery)
		}
	}()
	return p, nil
}

// Pid is the process id of the command.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Wait waits for the command to exit and returns its usage. A non-zero
// exit is not an error (see Usage.ExitCode).
func (p *Proc) Wait() (Usage, error) {
	err := p.cmd.Wait()
	var u Usage
	u.Wall = time.Since(p.start)
	close(p.stop)
	<-p.done
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return u, err
	}
	ps := p.cmd.ProcessState
	u.ExitCode = ps.ExitCode()
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.User = time.Duration(ru.Utime.Nano())
		u.Sys = time.Duration(ru.Stime.Nano())
		u.MaxRSS = ru.Maxrss * 1024
	}
	p.mu.Lock()
	for _, v := range p.hwm {
		u.TreeRSS += v
	}
	p.mu.Unlock()
	if u.TreeRSS == 0 {
		u.TreeRSS = u.MaxRSS // exited before the first sample
	}
	return u, nil
}

// sampleTree records in hwm the peak resident memory (VmHWM) of pid and
// its descendants, skipping processes named in skip. Children are found
// through /proc/PID/task/TID/children, so only the tree is read, not every
// process of the machine.
func sampleTree(pid int, skip []string, hwm map[int]int64) {
	queue := []int{pid}
	seen := map[int]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		if len(skip) == 0 || !slices.Contains(skip, comm(p)) {
			if v := peakRSS(p); v > hwm[p] {
				hwm[p] = v
			}
		} else {
			// A skipped process may have been sampled before its exec,
			// when (vforked by a Go parent) it still shared the parent's
			// memory and showed the parent's peak: that sample is not
			// its own (it once doubled goldsync's figure, 31.7 → 46.2 MiB).
			delete(hwm, p)
		}
		tasks, err := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		if err != nil {
			continue
		}
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					queue = append(queue, c)
				}
			}
		}
	}
}

// comm is a process's command name.
func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// peakRSS is a process's peak resident set (VmHWM in /proc/PID/status),
// in bytes.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}
