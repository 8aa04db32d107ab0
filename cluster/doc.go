// Package cluster is the job that ties goldsync's libraries together for a
// cluster config (package config): Run pulls each image from its golden
// node (package imaging, through package remote), refreshes the read-write
// snapshots of the nodes booting it (package snapshot) and their netboot
// files (package snapshot/netboot), under a run lock per image, and leaves
// a status record and Prometheus metrics; Status reads those records back;
// Verify re-reads an image against its manifest or its golden node.
//
// The package never prints and never exits: it reports through a
// *slog.Logger and the callbacks of Options, and returns errors that
// errors.Is and errors.As can take apart (StepError says which step of
// which image failed, wrapping the library's own error: imaging.ErrGuard,
// imaging.ErrPartial, remote.ErrSSH, ...). The goldsync command maps them
// to exit codes.
package cluster
