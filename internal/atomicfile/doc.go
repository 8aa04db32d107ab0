// Package atomicfile writes files beneath an *os.Root so that readers see
// either the old content or the new one, never a torn file: the data goes to
// a temporary file in the same directory, is synced, given its mode, and
// then renamed (or hard-linked, for create-only writes) into place.
//
// It owns only that write discipline. Callers decide what to write and where.
package atomicfile
