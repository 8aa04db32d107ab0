// Package treetest is the test oracle for filesystem trees: it builds a
// deliberately tricky tree (MakeTricky), records everything rsync -aHAXS
// --numeric-ids is expected to preserve about a tree (Scan, Manifest),
// compares two records attribute by attribute (Diff, Equal), makes the
// reference copy with stock rsync (RsyncCopy), and catches leaked file
// descriptors (TrackFDs).
//
// It is independent of goldsync's own walker on purpose: it imports none of
// the imaging packages and talks to the kernel through golang.org/x/sys/unix
// directly, so a bug in the engine's scanner cannot hide itself by appearing
// on both sides of a comparison. Every path operation is anchored on a
// directory descriptor (openat and friends, xattrs through
// /proc/self/fd/N/name), so trees with paths longer than PATH_MAX below an
// absolute temporary directory are handled.
//
// It owns only test helpers: failures are reported through the testing.TB
// it is given, nothing is printed, and it is never linked into a binary. It
// does not sync, plan or encode anything.
package treetest
