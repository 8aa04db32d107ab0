// Package replicas tests goldsync's replica image servers in a network lab
// (internal/netlab): a golden node, the primary and 8 replicas, each host
// its own network namespace, address (10.77.0.10, 10.77.0.1, 10.77.0.11-18)
// and sshd. The real goldsync and goldsync-agent binaries run there: the
// primary pulls the golden node over ssh and pushes every replica through
// its own sshd, as on a real site.
//
// The tests need root (namespaces, veth and bridge links); they say so when
// skipped. They have no timing thresholds: how long the fan-out takes
// against rsync is bench/replicas.sh's figure.
package replicas
