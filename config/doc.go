// Package config reads goldsync's cluster config file, by default
// /etc/goldsync/goldsync.toml: the cluster's paths (TFTP root, nodes file,
// NFS server), the images to pull from golden nodes with their sync
// settings, the netboot kernel arguments, and the operating systems (pxeos
// records) that boot the images.
//
// It owns the file format, its defaults and its checks. Load rejects unknown
// keys, values of the wrong type, bad durations, relative paths, a state
// dir, snapshot dir or TFTP root inside an image (the sync would mirror it
// away), duplicate names and everything else it can check without touching
// the machine, reporting every problem as "file:line: what is wrong", all
// of them joined. A Config that Load returns is complete: every default is
// filled in, so callers never apply defaults of their own.
//
// It does not read the nodes file or the files lists (package snapshot),
// connect to golden nodes, or write anything. The CLI's sync, status and
// verify commands are its users.
//
// The TOML parser is github.com/pelletier/go-toml/v2: its strict mode
// reports unknown keys with their line, and its parser exposes the
// position of every key, so checks made after decoding (a relative path, a
// duplicate name) point at the line too.
package config
