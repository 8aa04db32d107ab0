// Package bench holds goldsync's side-by-side benchmarks against stock
// rsync: the programs in bench/cmd (gentree makes the trees, benchrun runs
// both tools over a loopback sshd and writes bench/results, rusage measures
// the remote side), and microbenchmarks of the public imaging API
// (micro_test.go: walk, hash, plan, apply on generated trees).
//
// It owns no library code: tree generation lives in bench/internal/gen,
// measurement in bench/internal/measure. Engine microbenchmarks that need
// unexported code belong to the engine packages. bench/snapshot/ belongs to
// the snapshot builder's benchmark. See bench/README.md.
package bench
