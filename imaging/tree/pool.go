package tree

import "sync"

// EntryPool holds entries their users are done with, for a producer of
// entries (a decoder, a walk) to fill again instead of allocating new
// ones: a bounded free list, safe for concurrent use. Unlike a sync.Pool
// it allocates nothing as entries move from the goroutine that gives them
// back to the one that takes them (a sync.Pool's per-P rings grew, ~9 MB
// a no-change pull of 225k entries; issue #14). The zero value is empty
// and ready.
type EntryPool struct {
	mu   sync.Mutex
	free []*Entry
}

// entryPoolMax bounds what an EntryPool keeps: more than the entries in
// flight between a receiver's lists and its plan (a few thousand).
const entryPoolMax = 4096

// Get returns an entry given back, or nil when there is none. Its fields
// are whatever they were: the caller sets them all.
func (p *EntryPool) Get() *Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := len(p.free)
	if k == 0 {
		return nil
	}
	e := p.free[k-1]
	p.free[k-1] = nil
	p.free = p.free[:k-1]
	return e
}

// Put gives e back: nobody may look at *e any more (its strings and
// xattrs may still be held: they are never written to). Beyond the pool's
// bound it is dropped.
func (p *EntryPool) Put(e *Entry) {
	p.mu.Lock()
	if len(p.free) < entryPoolMax {
		p.free = append(p.free, e)
	}
	p.mu.Unlock()
}
