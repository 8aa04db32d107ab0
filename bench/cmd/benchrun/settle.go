package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// settleDisk waits until the filesystem holding dir has finished the work
// a mass delete leaves behind, so the next run does not pay for the last
// one's cleanup. On this VM (ext4 mounted with online discard) file
// creation right after deleting a 225k-file tree was at times 3-4x slower
// than a minute later; queued discards and writeback are the likely cause.
// It syncs, then polls the device's write, in-flight and discard counters
// in /proc/diskstats until they have not moved for 2 s (at most 3
// minutes), and returns how long it waited.
func settleDisk(dir string) time.Duration {
	start := time.Now()
	unix.Sync()
	var st unix.Stat_t
	if unix.Stat(dir, &st) != nil {
		return time.Since(start)
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	last, stable := "", 0
	for time.Since(start) < 3*time.Minute {
		cur := diskCounters(major, minor)
		if cur == "" {
			break // no such device line (a virtual filesystem): nothing to wait for
		}
		if cur == last {
			stable++
			if stable >= 4 {
				break
			}
		} else {
			stable = 0
		}
		last = cur
		time.Sleep(500 * time.Millisecond)
	}
	return time.Since(start)
}

// diskCounters returns the write, in-flight and discard counters of the
// device major:minor from /proc/diskstats, as one comparable string.
func diskCounters(major, minor uint32) string {
	f, err := os.Open("/proc/diskstats")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 18 {
			continue
		}
		ma, _ := strconv.ParseUint(fs[0], 10, 32)
		mi, _ := strconv.ParseUint(fs[1], 10, 32)
		if uint32(ma) != major || uint32(mi) != minor {
			continue
		}
		// 8 writes completed, 12 I/Os in progress, 15 discards completed,
		// 17 sectors discarded (1-based field numbers).
		return fmt.Sprint(fs[7], " ", fs[11], " ", fs[14], " ", fs[16])
	}
	return ""
}
