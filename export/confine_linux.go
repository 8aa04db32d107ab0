package export

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Confinement is applied by the parent, on a dedicated OS thread, right
// before it starts a child from that thread: the child inherits the
// thread's mount namespace, Landlock domain and no_new_privs flag from its
// first instruction, on all its threads. (Landlock restricts only the
// calling thread, and the kernels we run on (ABI < 8) cannot restrict all
// threads of a Go process that links cgo; a fresh process started from a
// restricted thread has no unrestricted thread at all.) The goroutine
// never unlocks the thread, so the Go runtime ends the thread with it.

// landlockABI returns the kernel's Landlock ABI version, 0 when Landlock
// is absent or disabled.
func landlockABI() int {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// rulesetAttr is struct landlock_ruleset_attr up to the field ABI 6 added;
// the size passed to the kernel says how much of it is used.
type rulesetAttr struct {
	handledFS  uint64
	handledNet uint64
	scoped     uint64
}

// handled returns the ruleset of everything the kernel's ABI lets us deny,
// and the attr size for that ABI.
func handled(abi int) (rulesetAttr, uintptr) {
	a := rulesetAttr{handledFS: 1<<13 - 1} // ABI 1: EXECUTE .. MAKE_SYM
	size := unsafe.Sizeof(a.handledFS)
	if abi >= 2 {
		a.handledFS |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		a.handledFS |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 4 {
		a.handledNet = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		size += unsafe.Sizeof(a.handledNet)
	}
	if abi >= 5 {
		a.handledFS |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	if abi >= 6 {
		a.scoped = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
		size += unsafe.Sizeof(a.scoped)
	}
	if abi >= 9 {
		a.handledFS |= unix.LANDLOCK_ACCESS_FS_RESOLVE_UNIX
	}
	return a, size
}

// restrictThread makes the calling thread (only) unable to read anything
// but the tree at root, to write anything, to execute anything but the
// files in execs (the binary and its libraries: what exec of the child
// needs), to bind or connect TCP sockets, to reach abstract unix sockets
// or signal processes outside the domain.
func restrictThread(abi int, root string, execs []string) error {
	attr, size := handled(abi)
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer unix.Close(int(fd))
	allow := func(path string, access uint64) error {
		pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		defer unix.Close(pfd)
		rule := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(pfd)}
		_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, fd, unix.LANDLOCK_RULE_PATH_BENEATH,
			uintptr(unsafe.Pointer(&rule)), 0, 0, 0)
		runtime.KeepAlive(&rule)
		if errno != 0 {
			return fmt.Errorf("landlock_add_rule %s: %w", path, errno)
		}
		return nil
	}
	if err := allow(root, unix.LANDLOCK_ACCESS_FS_READ_FILE|unix.LANDLOCK_ACCESS_FS_READ_DIR); err != nil {
		return err
	}
	for _, f := range execs {
		if err := allow(f, unix.LANDLOCK_ACCESS_FS_READ_FILE|unix.LANDLOCK_ACCESS_FS_EXECUTE); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}

// privateImageMount moves the calling thread into a new mount namespace
// (its own fs_struct too) in which root is a bind mount of itself,
// read-only, nodev, nosuid and noexec, without the mounts beneath it: the
// child can open no device node of the image (a block device there would
// be the host's disk), write nothing, execute no file of the image
// (glibc's NSS modules included) and see no /proc or other filesystem
// mounted inside the image.
func privateImageMount(root string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s: %w", root, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC)
	if err := unix.Mount("", root, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", root, err)
	}
	return nil
}

// execFiles lists the files exec of this binary needs: the binary itself
// and every file mapped executable into this process (the ELF interpreter
// and shared libraries of a dynamically linked binary).
func execFiles() ([]string, error) {
	files := []string{"/proc/self/exe"}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fields := strings.SplitN(sc.Text(), " ", 6)
		if len(fields) < 6 || !strings.Contains(fields[1], "x") {
			continue
		}
		path := strings.TrimSpace(fields[5])
		path = strings.TrimSuffix(path, " (deleted)")
		if !strings.HasPrefix(path, "/") || seen[path] {
			continue
		}
		seen[path] = true
		files = append(files, path)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return files, nil
}

// child is a started child process.
type child struct {
	cmd    *exec.Cmd
	stdout *os.File // read end; probe results
	stderr *os.File // read end; log lines
}

// start starts a child for cfg, confined to cfg.Root, with conn as its
// descriptor 3 (none when conn is nil).
func (s *Server) start(ctx context.Context, cfg childConfig, conn *os.File) (*child, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe", s.opts.ChildArgs...)
	cmd.Args[0] = "goldsync-rsync-export"
	cmd.Env = []string{childEnv + "=1"}
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	if conn != nil {
		cmd.ExtraFiles = []*os.File{conn}
	}
	if s.root {
		const nobody = 65534
		caps := []uintptr{unix.CAP_DAC_READ_SEARCH}
		if !cfg.NoChroot {
			caps = append(caps, unix.CAP_SYS_CHROOT)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential:  &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}},
			AmbientCaps: caps,
		}
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked on purpose: it carries the child's
		// restrictions and dies with this goroutine.
		runtime.LockOSThread()
		if s.root {
			if err := privateImageMount(cfg.Root); err != nil {
				errc <- err
				return
			}
		}
		if s.landlock {
			if err := restrictThread(s.abi, cfg.Root, s.exec); err != nil {
				errc <- err
				return
			}
		}
		errc <- cmd.Start()
	}()
	err = <-errc
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start confined child: %w", err)
	}
	go func() {
		inW.Write(data)
		inW.Close()
	}()
	return &child{cmd: cmd, stdout: outR, stderr: errR}, nil
}

// SelfTest starts one probe child per image, confined as a serving child
// is, and checks that it can read the image's root directory but neither
// the host's root directory, nor the image's parent directory, nor create
// a file in the image. It fails with ErrConfinement when any of that does
// not hold. Serve runs it first.
func (s *Server) SelfTest(ctx context.Context) error {
	for _, img := range s.images {
		ops := []probeOp{
			{Op: "read", Path: img.Root},
			{Op: "read", Path: "/"},
			{Op: "read", Path: parentDir(img.Root)},
			{Op: "write", Path: img.Root + "/.goldsync-export-probe"},
		}
		res, err := s.probe(ctx, img, ops, true)
		if err != nil {
			return fmt.Errorf("%w: image %s: %v", ErrConfinement, img.Name, err)
		}
		for i, r := range res {
			allowed := r.Err == ""
			if want := i == 0; allowed != want {
				what := "could"
				if !allowed {
					what = "could not: " + r.Err
				}
				return fmt.Errorf("%w: image %s: the confined child %s %s %s", ErrConfinement, img.Name, what, r.Op, r.Path)
			}
		}
	}
	s.log.Info("rsync export confinement verified", "confinement", s.Confinement())
	return nil
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// probe runs ops in a child confined to img; noChroot leaves the child's
// root alone so host paths mean host paths.
func (s *Server) probe(ctx context.Context, img Image, ops []probeOp, noChroot bool) ([]probeResult, error) {
	cfg := childConfig{Mode: modeProbe, Module: img.Name, Root: img.Root, Probe: ops, NoChroot: noChroot || !s.root}
	ch, err := s.start(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	var res []probeResult
	decErr := json.NewDecoder(ch.stdout).Decode(&res)
	ch.stdout.Close()
	var stderr strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := ch.stderr.Read(buf)
		if stderr.Len() < 4096 {
			stderr.Write(buf[:n])
		}
		if err != nil {
			break
		}
	}
	ch.stderr.Close()
	if err := ch.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("probe child: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if decErr != nil {
		return nil, fmt.Errorf("probe results: %w", decErr)
	}
	if len(res) != len(ops) {
		return nil, errors.New("probe results: wrong count")
	}
	return res, nil
}
