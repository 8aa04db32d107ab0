// Package reliability holds goldsync's reliability suite: tests that break a
// pull on purpose and check that the image survives, with the real binaries
// (goldsync and goldsync-agent are built once per run), real processes, a
// real sshd on loopback and real small filesystems.
//
// What it proves, one test file each:
//
//   - crash_test.go: a `goldsync pull` killed with SIGKILL at seeded points
//     of a full and an incremental pull leaves every file at its real name
//     whole (its old or its new content), and the next run converges to an
//     exact copy and removes the stale temp files.
//   - readers_test.go: readers hashing the image in a loop during a sync see
//     only whole old or whole new files; a file held open across its
//     replacement keeps its old content and is kept linked in the retention
//     dir.
//   - diskfull_test.go: a pull into a full filesystem fails with exit code
//     11 (an ENOSPC-wrapping error from the library), leaves the old image
//     whole, and converges once space is freed.
//   - transport_test.go: through a real sshd, a killed ssh, a killed agent
//     and a stalled agent give a clear error within a bounded wait, leave
//     nothing half-applied, and the re-run converges.
//   - lock_test.go: a second pull of a locked image is refused (exit 16,
//     imaging.ErrLocked) and the first completes exactly.
//   - security_test.go: state and retention dirs are 0700, a sync creates
//     no world-writable file the source did not have, a tampered uploaded
//     agent is refused or replaced, and an unknown host key fails the pull.
//
// The quick forms run in `go test ./reliability/` (and so in `make test`).
// With GOLDSYNC_STRESS=1 (`make stress`) each test runs its long form: more
// kill points, bigger trees, more rounds, each bounded by a time budget
// (GOLDSYNC_STRESS_BUDGET, default 2m per test) so the run stops on its
// own. Each test logs its figures ("figures: ...") for README.md.
//
// Most tests need root (owners, devices, mounts) and skip loudly without
// it. The package owns only tests and their helpers; it changes no engine
// code and is never linked into a binary.
package reliability
