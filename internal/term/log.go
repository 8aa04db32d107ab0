package term

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/goldsync/goldsync/imaging/wire"
)

// Handler prints the libraries' log records in the CLI's own format,
// one line each:
//
//	goldsync: warning: MESSAGE (key=value, ...)
//
// instead of slog's time=... level=... lines. --log-format=json keeps
// slog's JSON for machines.
type Handler struct {
	mu     *sync.Mutex
	w      io.Writer
	level  slog.Leveler
	prefix string
	attrs  []slog.Attr
	group  string
}

// NewHandler returns a Handler writing to w, each line starting with
// prefix ("goldsync"), for records of level and above.
func NewHandler(w io.Writer, prefix string, level slog.Leveler) *Handler {
	return &Handler{mu: &sync.Mutex{}, w: w, level: level, prefix: prefix}
}

// Enabled reports whether l is at the handler's level or above.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle writes r as one line, made inert: what it carries may come
// from a peer.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(h.prefix)
	b.WriteString(": ")
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("error: ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("warning: ")
	case r.Level < slog.LevelInfo:
		b.WriteString("debug: ")
	}
	b.WriteString(r.Message)
	var kv []string
	add := func(a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			return
		}
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		v := a.Value.String()
		if strings.ContainsAny(v, " =,()\n\t\"") || v == "" {
			v = fmt.Sprintf("%q", v)
		}
		kv = append(kv, key+"="+v)
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	if len(kv) > 0 {
		b.WriteString(" (" + strings.Join(kv, ", ") + ")")
	}
	// What a log line carries may come from a peer: make it inert.
	line := wire.InertLines(b.String()) + "\n"
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line)
	return err
}

// WithAttrs returns a handler adding as to every line.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

// WithGroup returns a handler prefixing keys with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// Logger is the logger a command gives the libraries: records at warning
// and above (error only when quiet, info with verbose 1, debug from 2) on
// w, in the CLI's format (Handler, each line starting with prefix) or,
// with json, as slog's JSON lines.
func Logger(w io.Writer, prefix string, verbose int, quiet, json bool) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case quiet:
		level = slog.LevelError
	case verbose == 1:
		level = slog.LevelInfo
	case verbose >= 2:
		level = slog.LevelDebug
	}
	if json {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(NewHandler(w, prefix, level))
}
