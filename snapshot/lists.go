package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/goldsync/goldsync/imaging/fsx"
	"github.com/goldsync/goldsync/imaging/tree"
)

// Kind says what the snapshot tree builder does with an Item. The names are
// the keywords of RHEL's readonly-root rwtab.
type Kind uint8

// The kinds. The zero value is invalid so a forgotten field is caught.
const (
	KindInvalid Kind = iota
	// KindFiles copies the path, recursively, from the image.
	KindFiles
	// KindDirs recreates the directory tree structure under the path, with
	// no files in it.
	KindDirs
	// KindEmpty creates an empty directory, or an empty file when the image
	// holds a file at the path.
	KindEmpty
	kindMax
)

var kindNames = [...]string{"invalid", "files", "dirs", "empty"}

// String returns the rwtab keyword ("files", "dirs", "empty").
func (k Kind) String() string {
	if k < kindMax {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k > KindInvalid && k < kindMax }

// Item is one path of a snapshot list.
type Item struct {
	// Path is the tree path: relative to the image root, no leading or
	// trailing slash, valid for tree.ValidatePath, never tree.Root.
	Path string
	// Dir says the path must be a directory: the list wrote it with a
	// trailing slash, or its kind is KindDirs.
	Dir bool
	// Kind says what to do with the path. Lists in the files format are
	// always KindFiles.
	Kind Kind
	// Source is where the item was read, as "file:line".
	Source string
}

// Abs returns the path as the list spelled it: absolute, with a trailing
// slash when Dir is set.
func (it Item) Abs() string {
	if it.Dir {
		return "/" + it.Path + "/"
	}
	return "/" + it.Path
}

// LineError is one problem found in one line of an input file. Parsers
// collect every LineError of a file and return them joined (errors.Join),
// so errors.As finds each of them.
type LineError struct {
	File string
	Line int
	Err  error
}

// Error formats the problem as "file:line: what is wrong".
func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

// Unwrap returns the underlying problem (tree.ErrBadPath for bad paths).
func (e *LineError) Unwrap() error { return e.Err }

// maxErrors bounds how many problems one parse reports.
const maxErrors = 100

// maxLine bounds a line of any list file.
const maxLine = 64 << 10

// errList collects the problems of one parse.
type errList struct {
	name string
	errs []error
}

func (l *errList) add(line int, format string, a ...any) {
	l.addErr(line, fmt.Errorf(format, a...))
}

func (l *errList) addErr(line int, err error) {
	switch {
	case len(l.errs) < maxErrors:
		l.errs = append(l.errs, &LineError{File: l.name, Line: line, Err: err})
	case len(l.errs) == maxErrors:
		l.errs = append(l.errs, fmt.Errorf("%s: more than %d errors, the rest are not shown", l.name, maxErrors))
	}
}

func (l *errList) err() error { return errors.Join(l.errs...) }

// scanFields reads r line by line and calls fn with each line's
// whitespace-separated fields, a "#" field and everything after it removed
// (so "#" starts a comment at the start of a line or after whitespace).
// Lines without fields are skipped. Only read errors are returned; a line
// that is too long is reported through errs and ends the scan.
func scanFields(r io.Reader, errs *errList, fn func(line int, fields []string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	line := 0
	for sc.Scan() {
		line++
		fields := splitFields(sc.Text())
		if len(fields) > 0 {
			fn(line, fields)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			errs.add(line+1, "line longer than %d bytes", maxLine)
			return nil
		}
		return fmt.Errorf("read %s: %w", errs.name, err)
	}
	return nil
}

// splitFields splits s on ASCII blanks, as the shell's read does, and drops
// a comment.
func splitFields(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\v' || r == '\f'
	})
	for i, f := range fields {
		if strings.HasPrefix(f, "#") {
			return fields[:i]
		}
	}
	return fields
}

// parsePath turns an absolute list path into a tree path, reporting whether
// it had a trailing slash. Errors wrap tree.ErrBadPath.
func parsePath(abs string) (rel string, dir bool, err error) {
	bad := func(why string) (string, bool, error) {
		return "", false, fmt.Errorf("%w %q: %s", tree.ErrBadPath, short(abs), why)
	}
	if strings.IndexByte(abs, 0) >= 0 {
		return bad("contains a NUL byte")
	}
	if !strings.HasPrefix(abs, "/") {
		return bad("not absolute (paths must start with /)")
	}
	if len(abs) > tree.MaxPathLen {
		return bad(fmt.Sprintf("longer than %d bytes", tree.MaxPathLen))
	}
	if strings.Trim(abs, "/") == "" {
		return bad("the root directory itself cannot be listed")
	}
	rel = abs[1:]
	if strings.HasSuffix(rel, "/") {
		dir = true
		rel = rel[:len(rel)-1]
	}
	for comp := range strings.SplitSeq(rel, "/") {
		switch {
		case comp == "":
			return bad(`contains an empty component ("//")`)
		case comp == "." || comp == "..":
			return bad(fmt.Sprintf("contains a %q component", comp))
		case len(comp) > tree.MaxNameLen:
			return bad(fmt.Sprintf("has a component longer than %d bytes", tree.MaxNameLen))
		}
	}
	if err := tree.ValidatePath(rel); err != nil {
		return "", false, err
	}
	return rel, dir, nil
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// listParser holds the state shared by the three list formats.
type listParser struct {
	errs  errList
	items []Item
	first map[string]string // tree path -> source of its first listing
}

func newListParser(name string) *listParser {
	return &listParser{errs: errList{name: name}, first: make(map[string]string)}
}

// add records one path of kind k read at line, or the reason it is bad.
func (p *listParser) add(line int, abs string, k Kind) {
	rel, dir, err := parsePath(abs)
	if err != nil {
		p.errs.addErr(line, err)
		return
	}
	if k == KindDirs {
		dir = true
	}
	src := fmt.Sprintf("%s:%d", p.errs.name, line)
	if prev, ok := p.first[rel]; ok {
		p.errs.add(line, "%s listed twice in one file (first at %s)", short(abs), prev)
		return
	}
	p.first[rel] = src
	p.items = append(p.items, Item{Path: rel, Dir: dir, Kind: k, Source: src})
}

func (p *listParser) result(readErr error) ([]Item, error) {
	if readErr != nil {
		return nil, readErr
	}
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return p.items, nil
}

// ParseFiles parses a list in the format of system-config-netboot's files
// and files.custom: absolute paths separated by blanks (one a line, or
// several), "#" comments at the start of a line or after a blank, blank
// lines allowed, a trailing "/" marking a directory. Every item is
// KindFiles, in file order.
//
// name is used in error messages only. A path that is relative, contains
// "." or ".." or "//" or NUL, is too long, is the root itself or is listed
// twice is an error; all problems are reported, joined, each as a
// *LineError, and no items are returned when there is any.
func ParseFiles(name string, r io.Reader) ([]Item, error) {
	p := newListParser(name)
	err := scanFields(r, &p.errs, func(line int, fields []string) {
		for _, f := range fields {
			p.add(line, f, KindFiles)
		}
	})
	return p.result(err)
}

// ParseRwtab parses a RHEL readonly-root rwtab (/etc/rwtab, /etc/rwtab.d/*):
// lines "dirs PATH", "empty PATH" or "files PATH", "#" comments. Paths
// follow the rules of ParseFiles; a "dirs" item always has Dir set.
func ParseRwtab(name string, r io.Reader) ([]Item, error) {
	p := newListParser(name)
	err := scanFields(r, &p.errs, func(line int, fields []string) {
		var k Kind
		switch fields[0] {
		case "dirs":
			k = KindDirs
		case "empty":
			k = KindEmpty
		case "files":
			k = KindFiles
		default:
			if strings.HasPrefix(fields[0], "/") {
				p.errs.add(line, "missing kind before %s (want: dirs|empty|files PATH)", short(fields[0]))
			} else {
				p.errs.add(line, "unknown kind %q (want dirs, empty or files)", short(fields[0]))
			}
			return
		}
		switch len(fields) {
		case 1:
			p.errs.add(line, "missing path after %q", fields[0])
		case 2:
			p.add(line, fields[1], k)
		default:
			p.errs.add(line, "unexpected %q after the path (want: %s PATH)", short(fields[2]), fields[0])
		}
	})
	return p.result(err)
}

// ParseStatetab parses a RHEL readonly-root statetab (/etc/statetab,
// /etc/statetab.d/*): one absolute path a line, "#" comments. Items are
// KindFiles: their content is copied from the image.
func ParseStatetab(name string, r io.Reader) ([]Item, error) {
	p := newListParser(name)
	err := scanFields(r, &p.errs, func(line int, fields []string) {
		if len(fields) > 1 {
			p.errs.add(line, "%d paths on one line (a statetab takes one path a line)", len(fields))
			return
		}
		p.add(line, fields[0], KindFiles)
	})
	return p.result(err)
}

// MergeLists merges parsed lists, applied in order: files, then
// files.custom, then any rwtab or statetab. A path listed again in a later
// list is not an error: when the later item asks for the same thing it is
// ignored, otherwise it replaces the earlier one (later lists win). Either
// way a notice says so, naming both sources. The result is sorted in
// tree.Compare order, so a directory comes before what lies beneath it.
func MergeLists(lists ...[]Item) (items []Item, notices []string) {
	index := make(map[string]int)
	for _, list := range lists {
		for _, it := range list {
			i, ok := index[it.Path]
			if !ok {
				index[it.Path] = len(items)
				items = append(items, it)
				continue
			}
			prev := items[i]
			if prev.Kind == it.Kind && prev.Dir == it.Dir {
				notices = append(notices, fmt.Sprintf("%s: %s already listed at %s; ignored", it.Source, short(it.Abs()), prev.Source))
				continue
			}
			notices = append(notices, fmt.Sprintf("%s: %s (%s) overrides %s (%s) at %s", it.Source, short(it.Abs()), it.Kind, short(prev.Abs()), prev.Kind, prev.Source))
			items[i] = it
		}
	}
	slices.SortStableFunc(items, func(a, b Item) int { return tree.Compare(a.Path, b.Path) })
	return items, notices
}

// DefaultFilesName is the name of the default list in a snapshot directory;
// CustomFilesName is the site's own additions, applied after it.
const (
	DefaultFilesName = "files"
	CustomFilesName  = "files.custom"
)

// DefaultFiles is the files list WriteDefaultFiles writes when a snapshot
// directory has none. It follows Red Hat's system-config-netboot default
// and RHEL's readonly-root /etc/rwtab.
const DefaultFiles = `# This file lists the files and directories stored in the snapshot
# directory of each diskless client: the paths a client may write, kept
# per node and mounted over the read-only image at boot.
#
# Written by goldsync from the defaults of Red Hat's system-config-netboot
# ("files") and RHEL's readonly-root (/etc/rwtab).
#
# Please do not edit this file. To add files, create files.custom in this
# directory and add entries to it, in the same format: absolute paths, one
# a line, a trailing / for a directory, # starts a comment.
/etc/adjtime
/etc/lvm/archive/
/etc/lvm/backup/
/etc/lvm/cache/
/etc/mtab
/etc/ntp.conf
/etc/resolv.conf
/etc/ssh/
/etc/sysconfig/network
/etc/sysconfig/network-scripts/
/home/
/root/
/tmp/
/var/account/
/var/cache/
/var/lib/
/var/lock/
/var/log/
/var/run/
/var/spool/
/var/tmp/
/var/yp/
`

// WriteDefaultFiles writes DefaultFiles to dir/files when, and only when,
// that name does not exist (as a file, a symlink or anything else). It never
// edits an existing list: the write is create-only and atomic, so a list
// that appears meanwhile is kept. It reports whether it wrote.
func WriteDefaultFiles(dir string) (written bool, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false, fmt.Errorf("write default files list: %w", err)
	}
	defer root.Close()
	written, err = fsx.CreateAtomic(root, DefaultFilesName, []byte(DefaultFiles), 0o644)
	if err != nil {
		return false, fmt.Errorf("write default files list in %s: %w", dir, err)
	}
	return written, nil
}
