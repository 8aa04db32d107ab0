// Package wire is the byte format of goldsync's sync protocol: the handshake,
// the frames and every message, and an entry codec that the on-disk manifest
// and hash cache reuse.
//
// It owns encoding, decoding and the limits that keep a hostile or broken
// peer from making the decoder allocate without bound: every frame type has
// a maximum length, every count and string a maximum size, and every
// decoded entry passes (*tree.Entry).Validate. It sees only io.Reader,
// io.Writer and tree types.
//
// It does not own the session: who sends what when, request windows,
// timeouts and the mapping onto imaging.Source live in package proto. Nor
// does it check an entry's place in a stream (order, parents, hard-link
// leaders); receivers do that with a tree.Checker.
//
// The format is described for humans in docs/PROTOCOL.md.
package wire
