package netboot

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// GaneshaOptions are the settings of RenderGanesha.
type GaneshaOptions struct {
	// Exports are the images to export, each with its snapshots (see
	// ExportsOptions), in order.
	Exports []ExportsOptions
	// FirstExportID is the Export_Id of the first image; the following
	// exports take the following ids, in order: the image, then its
	// snapshot directory or its nodes' snapshots in the order of Nodes,
	// then the next image. Zero means 1. Ganesha puts the Export_Id in its
	// file handles: keep the ids of existing exports when rendering again
	// (add new nodes at the end of the nodes file, new images last), or
	// running clients get stale handles after a restart.
	FirstExportID int
}

// ganeshaComment explains MDCACHE { Dir_Chunk = 0; }.
const ganeshaComment = `# Ganesha's metadata cache (MDCACHE) keeps chunks of directory entries.
# With them, a file the image server replaces by a rename (every pull
# does: a temporary file renamed over the old one) goes on being served
# in its old version for minutes, whatever the clients' attribute cache
# says. Dir_Chunk = 0 turns the directory chunk cache off, so clients
# see a change once their own attribute cache (10 s) expires, as with
# the kernel's nfsd, which has no such cache. Each export's
# Attr_Expiration_Time = 0 does the same for attributes: ganesha's
# default keeps them 60 s, and a node then sees a changed directory up to
# a minute late (measured: 59 s instead of 10).
`

// RenderGanesha renders an nfs-ganesha config (VFS FSAL) exporting
// diskless images: NFS_CORE_PARAM with NFSv3 and v4 (v3 is what the
// initramfs mounts with), MDCACHE { Dir_Chunk = 0; } (see the comment it
// writes: without it, live updates are served late), and for each image
// one EXPORT of the image root, read-only, and either one EXPORT of the whole snapshot
// directory, read-write, or, with Nodes, one per node snapshot
// (SnapshotDir/<host>), read-write to that node's address alone through a
// CLIENT block. All exports are No_Root_Squash (clients run as root) and
// have their Path as Pseudo path (the NFSv4 name). An image's Clients,
// when set, limit its image and whole snapshot directory exports to those
// clients.
//
// Paths must be absolute and hold no quotes, backslashes or control
// characters; clients no blanks, quotes, commas, semicolons or braces.
func RenderGanesha(opts GaneshaOptions) ([]byte, error) {
	var errs []error
	count := 0
	for _, x := range opts.Exports {
		paths := []string{x.ImageRoot, x.SnapshotDir}
		count += 2
		for _, n := range x.Nodes {
			paths = append(paths, x.SnapshotDir+"/"+n.Host)
			count++
		}
		for _, p := range paths {
			if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\"\\") || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				errs = append(errs, fmt.Errorf("ganesha export %q: want an absolute path without quotes, backslashes or control characters", shortStr(p)))
			}
		}
		for _, c := range strings.Fields(x.Clients + " " + x.SnapshotClients) {
			if strings.ContainsAny(c, "\"'\\,;{}=#") || strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				errs = append(errs, fmt.Errorf("ganesha client %q: quotes, backslashes and , ; { } = # are not allowed", shortStr(c)))
			}
		}
	}
	if len(opts.Exports) == 0 {
		errs = append(errs, errors.New("nothing to export"))
	}
	first := opts.FirstExportID
	if first == 0 {
		first = 1
	}
	if first < 1 || first+count-1 > 65535 {
		errs = append(errs, fmt.Errorf("ganesha export ids %d to %d: want 1 to 65535", first, first+count-1))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("render ganesha: %w", errors.Join(errs...))
	}

	var b bytes.Buffer
	b.WriteString("# nfs-ganesha exports of diskless images, written by goldsync.\n\n")
	b.WriteString("NFS_CORE_PARAM {\n\t# NFSv3 is what the nodes' initramfs mounts the root and snapshot with.\n\tProtocols = 3, 4;\n}\n\n")
	b.WriteString(ganeshaComment)
	b.WriteString("MDCACHE {\n\tDir_Chunk = 0;\n}\n")
	id := first
	export := func(path, access string, clientAccess string, clients []string) {
		fmt.Fprintf(&b, "\nEXPORT {\n\tExport_Id = %d;\n\tPath = \"%s\";\n\tPseudo = \"%s\";\n", id, path, path)
		id++
		if len(clients) == 0 {
			fmt.Fprintf(&b, "\tAccess_Type = %s;\n", access)
		} else {
			b.WriteString("\tAccess_Type = None;\n")
		}
		b.WriteString("\tSquash = No_Root_Squash;\n\tSecType = sys;\n\tAttr_Expiration_Time = 0;\n\tFSAL {\n\t\tName = VFS;\n\t}\n")
		if len(clients) > 0 {
			fmt.Fprintf(&b, "\tCLIENT {\n\t\tClients = %s;\n\t\tAccess_Type = %s;\n\t}\n", strings.Join(clients, ", "), clientAccess)
		}
		b.WriteString("}\n")
	}
	for _, x := range opts.Exports {
		clients := strings.Fields(x.Clients)
		b.WriteString("\n# The image, read-only.")
		export(x.ImageRoot, "RO", "RO", clients)
		if len(x.Nodes) == 0 {
			b.WriteString("\n# The nodes' snapshots, read-write.")
			export(x.SnapshotDir, "RW", "RW", clients)
			continue
		}
		for _, n := range x.Nodes {
			clients := append([]string{n.IP.Unmap().String()}, strings.Fields(x.SnapshotClients)...)
			fmt.Fprintf(&b, "\n# %s's snapshot, read-write to %s only.", n.Host, strings.Join(clients, ", "))
			export(x.SnapshotDir+"/"+n.Host, "None", "RW", clients)
		}
	}
	return b.Bytes(), nil
}
