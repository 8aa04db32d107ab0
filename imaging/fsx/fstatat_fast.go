//go:build linux && (amd64 || arm64)

package fsx

import (
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nameBuf bounds the names fstatatName passes from the stack: NAME_MAX
// (255) and the terminating NUL.
const nameBuf = 256

// fstatatName is unix.Fstatat without its heap copy of name for a name of
// up to NAME_MAX bytes: the NUL-terminated copy the kernel reads is on the
// stack (a goroutine's stack is not moved while it is in a system call).
// A longer name, or one with a NUL, takes unix.Fstatat (which refuses
// the NUL).
func fstatatName(dirfd int, name string, st *unix.Stat_t, flags int) error {
	if len(name) >= nameBuf || strings.IndexByte(name, 0) >= 0 {
		return unix.Fstatat(dirfd, name, st, flags)
	}
	var b [nameBuf]byte
	copy(b[:], name)
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(st)), uintptr(flags), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
