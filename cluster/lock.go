package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goldsync/goldsync/imaging"
)

// RunLockName is the lock `goldsync sync` holds in an image's state dir for
// its whole run (pull, snapshots, netboot files, status), so two runs never
// interleave. The pull itself also takes imaging's own lock (StateDir/lock),
// which a manual `goldsync pull` of the same image holds too.
const RunLockName = "sync.lock"

// Holder describes the process holding a lock.
type Holder struct {
	PID     int
	Start   time.Time // zero when not known
	Command string    // empty when not known
}

// String says "pid N (command), started TIME".
func (h Holder) String() string {
	s := fmt.Sprintf("pid %d", h.PID)
	if h.Command != "" {
		s += " (" + h.Command + ")"
	}
	if !h.Start.IsZero() {
		s += ", started " + h.Start.Local().Format("2006-01-02 15:04:05 MST")
	}
	return s
}

// TakeRunLock takes the run lock of a state dir, non-blocking, and writes
// the holder's PID, start time and command line into it (for humans: the
// lock itself is the flock). The returned function releases it.
func TakeRunLock(stateDir string) (func(), error) {
	f, err := imaging.LockStateFile(stateDir, RunLockName)
	if errors.Is(err, imaging.ErrLocked) {
		return nil, lockedError(filepath.Join(stateDir, RunLockName))
	}
	if err != nil {
		return nil, err
	}
	rec := fmt.Sprintf("pid=%d\nstarted=%s\ncommand=%s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339),
		strings.Join(os.Args, " "))
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(rec), 0)
	}
	return func() {
		f.Truncate(0)
		f.Close()
	}, nil
}

// lockedError says who holds the lock at path, wrapping imaging.ErrLocked.
func lockedError(path string) error {
	h, ok := LockHolder(path)
	if !ok {
		return fmt.Errorf("%w: lock %s is held by another process", imaging.ErrLocked, path)
	}
	return fmt.Errorf("%w: lock %s is held by %s", imaging.ErrLocked, path, h)
}

// DescribeLocked adds the holder to an imaging.ErrLocked error from the
// engine, whose message names the lock file but not who holds it.
func DescribeLocked(err error, stateDir string) error {
	if !errors.Is(err, imaging.ErrLocked) {
		return err
	}
	path := imaging.State(stateDir).Lock
	if h, ok := LockHolder(path); ok {
		return fmt.Errorf("%w; held by %s", err, h)
	}
	return err
}

// LockHolder finds the process holding a flock on path: /proc/locks names
// the PID and the inode, so nothing has to be recorded by the holder. The
// record a run lock holds (see TakeRunLock) fills in the command and start
// when it is the same PID's.
func LockHolder(path string) (Holder, bool) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Holder{}, false
	}
	pid := flockPID(st)
	if pid <= 0 {
		return Holder{}, false
	}
	h := Holder{PID: pid, Start: processStart(pid)}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		h.Command = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	if rec, err := os.ReadFile(path); err == nil {
		fields := map[string]string{}
		for line := range strings.Lines(string(rec)) {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				fields[k] = v
			}
		}
		if fields["pid"] == strconv.Itoa(pid) && h.Start.IsZero() {
			h.Start, _ = time.Parse(time.RFC3339, fields["started"])
		}
	}
	return h, true
}

// flockPID returns the PID /proc/locks gives for a FLOCK lock on the file
// with st's device and inode, or 0.
func flockPID(st unix.Stat_t) int {
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; blocked waiters
	// are "1: -> FLOCK ..." and are skipped. Some filesystems (overlayfs)
	// report another device there than stat does: then the inode alone
	// decides, when only one FLOCK has it.
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	ino := ":" + strconv.FormatUint(st.Ino, 10)
	byIno := map[int]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != "FLOCK" {
			continue
		}
		pid, err := strconv.Atoi(fs[4])
		if err != nil {
			continue
		}
		if strings.EqualFold(fs[5], want) {
			return pid
		}
		if strings.HasSuffix(fs[5], ino) {
			byIno[pid] = true
		}
	}
	if len(byIno) == 1 {
		for pid := range byIno {
			return pid
		}
	}
	return 0
}

// processStart returns when a process started, from /proc: its start in
// clock ticks since boot (USER_HZ, 100 on Linux) plus the boot time.
func processStart(pid int) time.Time {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return time.Time{}
	}
	fs := strings.Fields(s[i+1:])
	// fs[0] is field 3 (state); starttime is field 22.
	if len(fs) < 20 {
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(fs[19], 10, 64)
	if err != nil {
		return time.Time{}
	}
	procStat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for line := range strings.Lines(string(procStat)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			btime, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}
			}
			const userHZ = 100
			return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / userHZ)
		}
	}
	return time.Time{}
}
