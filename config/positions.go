package config

import (
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps key paths to the line they are written on. Paths name
// array-of-tables elements by index: "image[1].root", "os[0]".
type positions struct {
	lines map[string]int
}

// indexPositions records the line of every table header and key of a
// document that go-toml has already accepted. A document the parser
// rejects yields what was read up to the error.
func indexPositions(data []byte) *positions {
	pos := &positions{lines: make(map[string]int)}
	var p unstable.Parser
	p.Reset(data)
	arrays := make(map[string]int) // array-of-tables path -> elements seen
	prefix := ""
	line := func(r unstable.Range) int {
		if r.Length == 0 && r.Offset == 0 {
			return 0
		}
		return p.Shape(r).Start.Line
	}
	// resolve turns header key parts into a path, descending into the last
	// element of any array of tables on the way.
	resolve := func(parts []string) string {
		path := ""
		for _, k := range parts {
			path = join(path, k)
			if n, ok := arrays[path]; ok {
				path += "[" + strconv.Itoa(n-1) + "]"
			}
		}
		return path
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			var parts []string
			first := 0
			it := e.Key()
			for it.Next() {
				k := it.Node()
				parts = append(parts, string(k.Data))
				if first == 0 {
					first = line(k.Raw)
				}
			}
			if e.Kind == unstable.ArrayTable {
				parent := resolve(parts[:len(parts)-1])
				arr := join(parent, parts[len(parts)-1])
				arrays[arr]++
				prefix = arr + "[" + strconv.Itoa(arrays[arr]-1) + "]"
			} else {
				prefix = resolve(parts)
			}
			pos.set(prefix, first)
		case unstable.KeyValue:
			pos.keyValue(&p, prefix, e, line)
		}
	}
	return pos
}

func (pos *positions) keyValue(p *unstable.Parser, prefix string, e *unstable.Node, line func(unstable.Range) int) {
	path := prefix
	l := 0
	it := e.Key()
	for it.Next() {
		k := it.Node()
		path = join(path, string(k.Data))
		if l == 0 {
			l = line(k.Raw)
		}
		pos.set(path, l)
	}
	pos.value(p, path, e.Value(), l, line)
}

// value records the keys of inline tables, and of inline tables in arrays,
// at the line of their own keys.
func (pos *positions) value(p *unstable.Parser, path string, v *unstable.Node, l int, line func(unstable.Range) int) {
	switch v.Kind {
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				pos.keyValue(p, path, c, line)
			}
		}
	case unstable.Array:
		i := 0
		it := v.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			elem := path + "[" + strconv.Itoa(i) + "]"
			i++
			if c.Kind == unstable.InlineTable {
				pos.set(elem, l)
				pos.value(p, elem, c, l, line)
			}
		}
	}
}

func (pos *positions) set(path string, line int) {
	if _, ok := pos.lines[path]; !ok && line > 0 {
		pos.lines[path] = line
	}
}

// line returns the line of path, or of its closest recorded ancestor, or 0.
func (pos *positions) line(path string) int {
	for path != "" {
		if l, ok := pos.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
