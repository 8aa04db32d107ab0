// Package measure runs a command and reports what it cost: wall time, CPU
// seconds and peak memory, for the command and every descendant it waited
// for (wait4's rusage), plus the peak of the summed resident memory of its
// whole process tree, sampled from /proc.
//
// It owns only measurement; it knows nothing of rsync or goldsync.
package measure
