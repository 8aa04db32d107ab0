package exclude

import "path"

// RootDefaults are the patterns a pull, a push and a config image leave out
// when the source is a whole root ("/"), unless the admin turns them off
// (--no-default-excludes, default_excludes = false). goldsync, like rsync
// -a without -x, crosses mount points on the golden node, so the pseudo
// and volatile filesystems of a running system are left out; their
// mount-point directories are kept, so clients can mount over them:
//
//   - /proc/* and /sys/*: kernel pseudo filesystems (the seed's excludes);
//   - /dev/*: devtmpfs and udev's device nodes, /dev/shm and /dev/pts; the
//     client's initramfs and udev populate its own /dev;
//   - /run/*: runtime state (PID files, sockets) of the golden node's
//     daemons, a tmpfs that systemd-tmpfiles fills at boot;
//   - /tmp/* and /var/tmp/*: the golden node's scratch files (clients get
//     these read-write from their snapshot, see the files list);
//   - /var/lib/goldsync/*: goldsync-agent's own hash cache on the golden
//     node.
//
// Network filesystems mounted on the golden node (/home, /scratch, /apps)
// are not known here: exclude them in the image's excludes.
var RootDefaults = []string{
	"/proc/*",
	"/sys/*",
	"/dev/*",
	"/run/*",
	"/tmp/*",
	"/var/tmp/*",
	"/var/lib/goldsync/*",
}

// IsRoot says whether a source path names a whole root ("/", "//", "/."),
// the case RootDefaults are for.
func IsRoot(p string) bool {
	return p != "" && path.Clean(p) == "/"
}
