// Package watch records what changes in a filesystem tree, so a sync can
// look at the changed paths instead of walking the whole tree: after
// `yum install dstat` on the golden node, sixty paths instead of 200,000.
//
// It owns two things:
//
//   - Journal: a persistent, crash-safe set of dirty tree paths in a state
//     directory. Marks are stamped with generations; a token names a
//     generation, and Since(token) returns the minimal set of tree.Scope
//     that covers every change after it, or Full with a reason when the
//     journal cannot vouch for that (unknown or old token, lost events,
//     damaged log, no watcher running). Destinations Ack the tokens they
//     applied so several image servers can each ask "since T"; history no
//     acknowledged destination needs is dropped.
//
//   - Watch: feeds a Journal from kernel events, with fanotify
//     (FAN_MARK_FILESYSTEM + FAN_REPORT_DFID_NAME) when available, else
//     recursive inotify.
//
// The guarantees, and their limits:
//
//   - A watcher that starts records a full rescan: nothing proves that the
//     tree did not change while no watcher ran, so the first Since after a
//     (re)start is Full. While no watcher runs, Since is Full too.
//   - A lost event (queue overflow), an unresolvable event, a damaged log:
//     full rescan, never a silent loss.
//   - Since reports what the watcher recorded so far; events still queued
//     in the kernel are not in it. Barrier waits until they are.
//   - Kernels report no event for writes through a shared mmap, for
//     changes under a mount that appears beneath the root after the watch
//     started, nor for the other names of a hard-linked file written
//     through one name. Filesystems that fanotify cannot mark (devpts...)
//     and pseudo filesystems under inotify are reported as dirty in every
//     change set. A periodic full verification still has to run.
//
// It does not scan, transfer or apply anything: the sync engine (package
// imaging) turns a ChangeSet into a scoped scan, and the agent wires the
// journal into pushes and pulls.
package watch
