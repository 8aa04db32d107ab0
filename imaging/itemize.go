package imaging

import (
	"github.com/goldsync/goldsync/imaging/tree"
)

// Change is one itemized change, as rsync's --itemize-changes prints it.
type Change struct {
	// Code is the 11-character rsync itemize code (">f.st......",
	// "cd+++++++++", "*deleting  " ...).
	Code string
	// Path is the entry's path, with a trailing "/" for directories.
	Path string
	// Extra is " -> target" for symlinks and " => leader" for hard links.
	Extra string
}

// String formats the change like rsync: "CODE PATH[EXTRA]".
func (c Change) String() string { return c.Code + " " + c.Path + c.Extra }

func typeChar(t tree.Type) byte {
	switch t {
	case tree.TypeRegular:
		return 'f'
	case tree.TypeDir:
		return 'd'
	case tree.TypeSymlink:
		return 'L'
	case tree.TypeCharDev, tree.TypeBlockDev:
		return 'D'
	default:
		return 'S'
	}
}

func displayPath(e *tree.Entry, p string) string {
	if p == tree.Root {
		p = "./"
	} else if e != nil && e.Type == tree.TypeDir {
		p += "/"
	}
	return p
}

// Itemize describes what an action changes, in rsync's format.
func Itemize(a Action) Change {
	if a.Op == OpDelete {
		return Change{Code: "*deleting  ", Path: displayPath(a.Dst, a.Path)}
	}
	s := a.Src
	c := Change{Path: displayPath(s, a.Path)}
	switch s.Type {
	case tree.TypeSymlink:
		c.Extra = " -> " + s.Target
	case tree.TypeRegular:
		if a.Op == OpLink {
			c.Extra = " => " + s.LinkTo
		}
	}
	code := []byte("...........")
	switch a.Op {
	case OpFetch:
		code[0] = '>'
		if d := a.Dst; d != nil && !s.Hashed() && d.Type == tree.TypeRegular && d.Size == s.Size && d.Mtime == s.Mtime {
			// The source did not know the hash (its cache missed on a
			// chmod or chown); size and mtime say the content most
			// likely stays: the source will confirm by hash.
			code[0] = '.'
		}
	case OpCopy:
		code[0] = '>'
	case OpLink:
		code[0] = 'h'
	case OpMkdir, OpSymlink, OpSpecial:
		code[0] = 'c'
	default:
		code[0] = '.'
	}
	code[1] = typeChar(s.Type)
	d := a.Dst
	if d == nil || a.Replace && d.Type != s.Type {
		copy(code[2:], "+++++++++")
		c.Code = string(code)
		return c
	}
	if s.Type == tree.TypeRegular && (s.Size != d.Size || (s.Hashed() && d.Hashed() && s.Hash != d.Hash)) {
		if s.Hashed() && d.Hashed() && s.Hash != d.Hash {
			code[2] = 'c'
		}
		if s.Size != d.Size {
			code[3] = 's'
		}
	}
	if s.Type == tree.TypeSymlink && s.Target != d.Target {
		code[2] = 'c'
	}
	if s.Type.IsDevice() && s.Rdev != d.Rdev {
		code[2] = 'c'
	}
	if s.Mtime != d.Mtime {
		code[4] = 't'
	}
	if s.Type != tree.TypeSymlink && s.Mode != d.Mode {
		code[5] = 'p'
	}
	if s.UID != d.UID {
		code[6] = 'o'
	}
	if s.GID != d.GID {
		code[7] = 'g'
	}
	acl, xa := xattrDiff(s.Xattrs, d.Xattrs)
	if acl {
		code[9] = 'a'
	}
	if xa {
		code[10] = 'x'
	}
	c.Code = string(code)
	return c
}

// xattrDiff reports whether the ACL xattrs and the other xattrs differ.
func xattrDiff(a, b []tree.Xattr) (acl, other bool) {
	split := func(xs []tree.Xattr) (acls, rest []tree.Xattr) {
		for _, x := range xs {
			if x.Name == "system.posix_acl_access" || x.Name == "system.posix_acl_default" {
				acls = append(acls, x)
			} else {
				rest = append(rest, x)
			}
		}
		return
	}
	aa, ar := split(a)
	ba, br := split(b)
	return !tree.XattrsEqual(aa, ba), !tree.XattrsEqual(ar, br)
}
