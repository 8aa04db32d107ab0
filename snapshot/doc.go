// Package snapshot builds the per-node side of a diskless cluster: the
// read-write snapshot tree of each node, from the lists of paths each
// client keeps read-write and the node inventory.
//
// It owns:
//
//   - the list formats: system-config-netboot's files and files.custom
//     (ParseFiles), RHEL readonly-root rwtab and statetab (ParseRwtab,
//     ParseStatetab), their merge (MergeLists: files, then files.custom, then
//     the rest; later lists win, cross-list duplicates become notices), and
//     the default files list (DefaultFiles, WriteDefaultFiles);
//   - the nodes file, "IP hostname [MAC]" a line (ParseNodes, CheckNodes),
//     and the pxelinux name of a node's IPv4 address (HexIP);
//   - the snapshot builder (Build): SnapshotDir/<host>/<path> for every
//     listed path, from the image, for many nodes at once, refreshed by a
//     three-way rule (ThreeWay, Decide) that never loses a node's data,
//     with a per-node record kept in a state dir outside the snapshots
//     (DefaultStateDir, RecordPath, RemoveSnapshot).
//
// Every parser reports every problem it finds, each as a *LineError
// "file:line: what is wrong", joined with errors.Join, and returns nothing
// usable when there is any, so a caller writes nothing from a broken input.
// Paths come out as tree paths (relative, see tree.ValidatePath); bad ones
// wrap tree.ErrBadPath.
//
// # Building snapshots
//
// Build scans the image once, for the listed paths and their parents only
// (Scopes), turns the scan into what each snapshot should hold (Want:
// "files" copies a tree, "dirs" its directories, "empty" the path alone,
// emptied), then for each node walks its snapshot with the same scopes,
// plans with ThreeWay against the node's record and hands the plan to the
// imaging engine (imaging.Apply): it does no copying of its own. The
// engine writes every file whole (temp file, rename) with the image's full
// metadata, copies with reflinks or copy_file_range, and writes beneath an
// openat2 root at the node's snapshot, which a node's symlink cannot
// escape.
//
// The three-way rule, for each path: the node lacks it: copy it; the node
// has not changed it since goldsync copied it (its entry equals the record:
// type, content hash, owner, mode, xattrs, mtime) and the image has: follow
// the image; the node changed it: keep the node's, and report a conflict
// when the image changed it too; the image dropped it: keep the node's, say
// so once. Nothing in a snapshot is ever deleted. A path the node deleted
// is copied again, as Red Hat's pxeboot and updateDiskless did. Directory
// mtimes are not compared (they change whenever the node adds a file).
//
// # Identity and boot list
//
// After a node's snapshot is refreshed, Build gives the node its identity
// (IsIdentityPath): /etc/hostname, a random /etc/machine-id, ssh host keys
// made with ssh-keygen for each type the image's /etc/ssh has, and a
// diskless /etc/fstab. Each is created only when absent (a temporary file
// hard-linked to its name, so nothing is ever replaced) and written beneath
// the node's openat2 root; the golden node's versions are dropped from the
// three-way refresh, whatever the lists say. Then it rewrites the node's
// boot list (BootListPath, BootList): what goldsync's client piece binds
// from the snapshot at boot.
//
// Records live in the state dir, by default ".<snapshot>.goldsync" beside
// the snapshot directory (DefaultStateDir): never inside a node's snapshot,
// which is the node's NFS-exported read-write root, nor inside the exported
// snapshot directory. A rebuild with nothing changed reuses every recorded
// hash (the engine's quick check: inode, size, mtime, ctime), reads no
// content and writes no record.
//
// It does not pull images (package imaging), has no CLI (cmd/goldsync) and
// writes no boot files: pxelinux, GRUB, iPXE, dhcpd and exports live in the
// subpackage netboot.
package snapshot
