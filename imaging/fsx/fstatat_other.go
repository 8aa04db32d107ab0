//go:build linux && !amd64 && !arm64

package fsx

import "golang.org/x/sys/unix"

// fstatatName is unix.Fstatat (see fstatat_fast.go).
func fstatatName(dirfd int, name string, st *unix.Stat_t, flags int) error {
	return unix.Fstatat(dirfd, name, st, flags)
}
