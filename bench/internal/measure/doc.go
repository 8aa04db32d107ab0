// Package measure runs a command and reports what it cost: wall time, CPU
// seconds and peak memory, for the command and every descendant it waited
// for (wait4's rusage), plus the sum over its whole process tree of each
// process's own peak resident memory (VmHWM, sampled from /proc), which
// can leave out helpers such as the ssh client.
//
// It owns only measurement; it knows nothing of rsync or goldsync.
package measure
