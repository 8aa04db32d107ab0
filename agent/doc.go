// Package agent is the golden node's side of goldsync: it serves pulls over
// a stdio stream (goldsync-agent serve --stdio, started by the image server
// through ssh), and — with package agent/watch — watches the root and
// pushes changes to image servers.
//
// It owns the agent's policy (where its hash cache lives, which roots it
// serves); the protocol is package imaging/proto and the reading of trees is
// imaging.DirSource. It never writes into the tree it serves.
package agent
