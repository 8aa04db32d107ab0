// Package netlab builds a small network of hosts on one machine for tests
// and benchmarks of goldsync's replicas: a golden node, a primary image
// server and up to 8 replica image servers, each with its own address and
// its own OpenSSH sshd (internal/sshtest) on port 22.
//
// The program (a test binary, through its TestMain, or the replica
// benchmark) first calls Enter, which re-executes it in a private network
// namespace: the lab's addresses, bridge and routes exist only there, and
// two labs in two test binaries never meet. Inside, the program is the
// primary, 10.77.0.1 on the bridge lab0; every other host is a network
// namespace of its own (held by a sleeping process) joined to the bridge by
// a veth pair, with one address: the golden node 10.77.0.10, replica i
// (from 1) 10.77.0.(10+i). Each host has a directory of its own (Host.Root)
// on the shared filesystem, where its image copies live.
//
// One client key logs in to every host as the user running the program
// (root), with one known_hosts file: Lab.SSHArgs and Lab.Rsh. Host.Down
// unplugs a host (its bridge port goes down: packets to it are dropped, so
// connections time out as with a dead machine) and Host.Up plugs it back;
// Host.KillSessions kills everything running on a host but its sshd, as a
// crash of a receiver mid-update would.
//
// Everything needs root. New skips the test, saying why, when the program is
// not root, when Enter was not called or failed, or when ip, nsenter, sshd
// or the kernel's veth and bridge links are missing. Close (or the test's
// cleanup) stops the sshds and holders and removes the links; the
// namespaces go with their last process.
//
// The package owns only the network and the sshds; it does not know the
// goldsync protocol or configuration.
package netlab
