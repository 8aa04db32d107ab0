package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLists is wrapped by LoadLists when the lists themselves are wrong (a
// bad line, or no path at all), as opposed to a file that cannot be read.
var ErrLists = errors.New("bad snapshot lists")

// ErrNodes is wrapped by ReadNodesFile when the nodes file is wrong (a bad
// line, or no node), as opposed to a file that cannot be read.
var ErrNodes = errors.New("bad nodes file")

// LoadOptions name the lists LoadLists reads.
type LoadOptions struct {
	// SnapshotDir holds the default lists: SnapshotDir/files (written with
	// DefaultFiles when missing, unless DryRun) and SnapshotDir/files.custom
	// (optional). They are read only when Files is empty; both must not be
	// symlinks, since nodes can write the snapshot directory.
	SnapshotDir string
	// Files, Rwtabs and Statetabs are lists named by the caller, in the
	// formats of ParseFiles, ParseRwtab and ParseStatetab.
	Files, Rwtabs, Statetabs []string
	// DryRun reads DefaultFiles in place of a missing SnapshotDir/files
	// instead of writing it.
	DryRun bool
	// Notice, when set, is told what LoadLists did or found that is not an
	// error: the default list written, paths listed twice.
	Notice func(msg string)
}

// LoadLists reads and merges the lists of paths a snapshot build takes.
// Errors of the lists' content wrap ErrLists (with file:line); a list that
// cannot be opened gives its *fs.PathError.
func LoadLists(o LoadOptions) ([]Item, error) {
	notice := o.Notice
	if notice == nil {
		notice = func(string) {}
	}
	type list struct {
		name     string
		parse    func(string, io.Reader) ([]Item, error)
		opt      bool   // may be missing
		fallback string // content when missing, if set
		local    bool   // in the snapshot dir, which nodes can write: no symlinks
	}
	var lists []list
	if len(o.Files) == 0 {
		def := list{name: filepath.Join(o.SnapshotDir, DefaultFilesName), parse: ParseFiles, local: true}
		if _, err := os.Lstat(def.name); errors.Is(err, fs.ErrNotExist) {
			if o.DryRun {
				notice(fmt.Sprintf("%s does not exist: a build would write the default list there (used now)", def.name))
				def.fallback = DefaultFiles
			} else {
				if err := os.MkdirAll(o.SnapshotDir, 0o755); err != nil {
					return nil, err
				}
				written, err := WriteDefaultFiles(o.SnapshotDir)
				if err != nil {
					return nil, err
				}
				if written {
					notice(fmt.Sprintf("wrote the default files list to %s (add your own paths to %s)",
						def.name, filepath.Join(o.SnapshotDir, CustomFilesName)))
				}
			}
		}
		lists = append(lists, def,
			list{name: filepath.Join(o.SnapshotDir, CustomFilesName), parse: ParseFiles, opt: true, local: true})
	}
	for _, n := range o.Files {
		lists = append(lists, list{name: n, parse: ParseFiles})
	}
	for _, n := range o.Rwtabs {
		lists = append(lists, list{name: n, parse: ParseRwtab})
	}
	for _, n := range o.Statetabs {
		lists = append(lists, list{name: n, parse: ParseStatetab})
	}
	var parsed [][]Item
	var errs []error
	for _, l := range lists {
		var r io.Reader
		fh, err := openList(l.name, l.local)
		switch {
		case errors.Is(err, fs.ErrNotExist) && l.fallback != "":
			r = strings.NewReader(l.fallback)
		case errors.Is(err, fs.ErrNotExist) && l.opt:
			continue
		case err != nil:
			return nil, fmt.Errorf("list: %w", err)
		default:
			defer fh.Close()
			r = fh
		}
		items, err := l.parse(l.name, r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		parsed = append(parsed, items)
	}
	if len(errs) > 0 {
		return nil, kindError{ErrLists, errors.Join(errs...)}
	}
	items, notices := MergeLists(parsed...)
	for _, n := range notices {
		notice(n)
	}
	if len(items) == 0 {
		return nil, kindError{ErrLists, errors.New("the lists name no path")}
	}
	return items, nil
}

// openList opens a list file; one in the snapshot directory, which every
// node can write over NFS, must not be a symlink.
func openList(name string, local bool) (*os.File, error) {
	flags := os.O_RDONLY
	if local {
		flags |= unix.O_NOFOLLOW
	}
	f, err := os.OpenFile(name, flags, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symlink: refused (nodes can write the snapshot directory)", name)
	}
	return f, err
}

// ReadNodesFile reads and parses a nodes file (see ParseNodes). Errors of
// its content wrap ErrNodes and are file:line; a file that cannot be read
// gives its *fs.PathError.
func ReadNodesFile(name string) ([]Node, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	nodes, err := ParseNodes(name, strings.NewReader(string(data)))
	if err != nil {
		return nil, kindError{ErrNodes, err}
	}
	if len(nodes) == 0 {
		return nil, kindError{ErrNodes, fmt.Errorf("%s: no nodes", name)}
	}
	return nodes, nil
}

// kindError is err, also matching kind with errors.Is; its message is
// err's alone.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

// NodesFromArgs returns the nodes a command line names: those of the
// nodes file file, or the one node of args (IP HOSTNAME [MAC]), not
// both. Its errors are ReadNodesFile's; wrong arguments wrap ErrNodes.
func NodesFromArgs(file string, args []string) ([]Node, error) {
	switch {
	case file != "" && len(args) > 0:
		return nil, kindError{ErrNodes, errors.New("give either --nodes FILE or IP HOSTNAME, not both")}
	case file != "":
		return ReadNodesFile(file)
	case len(args) == 2 || len(args) == 3:
		nodes, err := ParseNodes("command line", strings.NewReader(strings.Join(args, " ")))
		if err != nil {
			return nil, kindError{ErrNodes, err}
		}
		return nodes, nil
	}
	return nil, kindError{ErrNodes, errors.New("want --nodes FILE, or IP HOSTNAME [MAC]")}
}
