// Package snapshot reads the inputs of goldsync's per-node side: the lists
// of paths each diskless client keeps read-write, and the node inventory.
//
// It owns:
//
//   - the list formats: system-config-netboot's files and files.custom
//     (ParseFiles), RHEL readonly-root rwtab and statetab (ParseRwtab,
//     ParseStatetab), their merge (MergeLists: files, then files.custom, then
//     the rest; later lists win, cross-list duplicates become notices), and
//     the default files list (DefaultFiles, WriteDefaultFiles);
//   - the nodes file, "IP hostname [MAC]" a line (ParseNodes, CheckNodes),
//     and the pxelinux name of a node's IPv4 address (HexIP).
//
// Every parser reports every problem it finds, each as a *LineError
// "file:line: what is wrong", joined with errors.Join, and returns nothing
// usable when there is any, so a caller writes nothing from a broken input.
// Paths come out as tree paths (relative, see tree.ValidatePath); bad ones
// wrap tree.ErrBadPath.
//
// It does not build snapshot trees (copying the listed paths from an image
// into snapshot/<node>/ is the imaging engine's job) and has no CLI. Boot
// files (pxelinux, GRUB, iPXE, dhcpd, exports) live in the subpackage
// netboot.
package snapshot
