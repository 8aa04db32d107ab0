// Package proto is goldsync's sync protocol session: a server that exposes
// any imaging.Source over a byte stream, and a Client that is an
// imaging.Source over one or more byte streams to such a server.
//
// Roles do not depend on who started whom. The client is always the
// receiver and drives the session; the server is the sender and answers. A
// pull runs "ssh golden goldsync-agent serve --stdio" and the image server
// is the client; a push runs "ssh server goldsync receive --stdio DEST" and
// the golden node's agent serves over that ssh's stdio.
//
// The package owns the session: handshake and Open, request windows and
// their spreading over streams, pipelining of fetches, checking everything
// a sender says (entry order and validity through tree.Checker, content
// ranges against the request and the basis), stall detection and byte
// counts. It does not own the byte format (package wire), the transports
// that produce the streams (ssh, local pipes: the caller's), or what is
// done with entries and content (package imaging).
//
// The protocol is described in docs/PROTOCOL.md.
package proto
