//go:build linux && !amd64 && !arm64

package fsx

import "golang.org/x/sys/unix"

func listxattrAt(int, string, []byte) (int, error) { return 0, unix.ENOSYS }

func getxattrAt(int, string, string, []byte) (int, error) { return 0, unix.ENOSYS }
