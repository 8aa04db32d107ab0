// Package export serves images read-only over the rsync daemon protocol
// (rsync://host:port/IMAGE/), so stock rsync clients and replica image
// servers can pull an image. Each image is one module. The protocol is
// spoken by github.com/gokrazy/rsync v0.2.2 (protocol 27), sender side only.
//
// That library is not hardened: it resolves the paths a client asks for by
// joining strings (IMAGE/../../etc/shadow reaches the host's file), follows
// symlinks inside the image (IMAGE/evil/shadow with evil -> /etc), panics
// on filter rules with wildcards and calls os.Exit when a file shrinks
// while it is sent. So the process that runs it is never the one that
// accepts connections, and it cannot see anything but the image:
//
//   - The Server (parent) accepts a connection and speaks the text part of
//     the daemon handshake itself: greeting, module name or listing, the
//     client's arguments. It refuses uploads (no --sender), unknown modules,
//     paths with ".." or outside the module, more than one path, and
//     options the library gets wrong (-z), with an error the client prints.
//   - For an accepted request it starts a child, a new process of the same
//     binary (Options.ChildArgs, then RunChild), one per connection, handed
//     the connection and the handshake bytes to replay to the library.
//   - The child is confined before its first instruction: the parent starts
//     it from a dedicated OS thread that has entered a private mount
//     namespace where the image is bind-mounted read-only, nodev, nosuid,
//     noexec and without its submounts, and has restricted itself with
//     Landlock so that only the image (read files, read directories) and
//     the files needed to execute the binary (its executable mappings) are
//     reachable; the child inherits all of it. As root the child runs as
//     nobody with CAP_DAC_READ_SEARCH only, so it reads every file of the
//     image (root-only ones too) and can write nothing.
//
// The Server admits a connection right after accept, before the
// handshake: its address must be in Options.Allow, and it takes one of
// Options.MaxConnections slots and one of its address's
// Options.MaxPerIP, until it closes. A failed accept (out of
// descriptors) is retried after a back-off. Unless Options.ServeRootOnly
// is set, the child keeps back the contents of RootOnly files
// (withhold.go): it drops the client's requests for them before the
// library reads them, and the fixer tells the client.
//
// The child also repairs what the library writes where a stock client
// would fail or lose fidelity (fixup.go): file lists over 16 MiB, the
// uid/gid name lists under --numeric-ids, set-id bits, and hard links
// (-H). See docs/RSYNC-EXPORT.md for what protocol 27 carries and what it
// loses.
//
// The package does not pull, write or modify images, does not read the
// cluster config (the CLI passes the images in), and never uses the
// library's receiver. It is Linux-only.
package export
