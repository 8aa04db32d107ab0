// Package gen makes the trees goldsync is benchmarked on: synthetic trees
// that are deterministic by seed (a realistic size distribution, one large
// sparse file, hard links, symlinks, devices, xattrs, capabilities and
// ACLs), a sparse-heavy tree, a debootstrap'd Debian root with the same
// tricky additions, and reversible mutations of a tree (a package
// install-like change, a few changed blocks in a large file).
//
// It owns only tree generation and mutation for benchmarks; it measures
// nothing and never syncs. Owners, devices and capabilities need root.
package gen
