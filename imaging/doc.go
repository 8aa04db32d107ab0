// Package imaging is goldsync's engine: it makes a destination directory
// (an image exported read-only to diskless nodes) an exact copy of a
// source tree, with rsync -aHAXS --numeric-ids fidelity, while clients run
// on it.
//
// Sync is the whole job, in order:
//
//  1. Scan: the Source streams its entries (any Source: DirSource for a
//     local directory, a proto.Client for a golden node's agent) into a
//     spool file while Walk reads the destination, looking the Manifest of
//     the last run up on disk as a cache; excluded paths are left out on
//     both sides.
//  2. Plan: the planner merges the two sorted streams and says what to
//     create, fetch, copy locally, change in place and delete, into one
//     spool per apply phase (MakePlan is the same step over two slices).
//  3. Guard: an empty source over a full image, or more deletes than
//     Options.MaxDelete, is refused (ErrGuard) before anything changes.
//  4. Apply: directories, local copies, fetches into temp files renamed
//     into place (so every file appears whole), links, deletes; replaced
//     inodes are kept for NFS clients (retention).
//  5. Record: the manifest of what the destination now holds, the source's
//     journal token for the next incremental run, and a generation
//     (GenerationPolicy) that Rollback can return to.
//
// Neither the source's entries nor the plan is held on the heap, so a
// receiver's memory stays nearly flat in the size of the tree. Apply runs
// phase 4 alone on a plan held whole (ApplyOptions).
//
// The state a run keeps lives outside the image, in a state dir
// (DefaultStateDir, State) only the runner can write, under its lock
// (Lock). Errors callers branch on: ErrGuard, ErrPartial, ErrLocked,
// ErrUnsafeStateDir, ErrBadSource.
package imaging
