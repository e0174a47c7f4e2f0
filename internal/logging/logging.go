// Package logging builds skiff's own logger: JSON lines on stderr (so they
// never mix with records shipped to stdout), with repeated warnings and
// errors rate-limited so that a dead sink does not write a line per retry
// forever.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// New returns a JSON logger writing to w at level ("debug", "info", "warn"
// or "error"); warnings and errors with the same message (and the same
// "path" attribute, when they have one: a warning about another file is
// another warning) are logged at most once per window, the next one
// carrying how many were suppressed.
func New(w io.Writer, level string, window time.Duration) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(&limiter{next: h, window: window, state: &limitState{seen: map[string]*entry{}}, now: time.Now})
}

type entry struct {
	last       time.Time
	suppressed int
}

type limitState struct {
	mu   sync.Mutex
	seen map[string]*entry // keyed by message and path; pruned past maxSeen
}

// maxSeen bounds the limiter's memory: past it, entries whose window has
// passed are forgotten (rotated file names come and go).
const maxSeen = 4096

type limiter struct {
	next   slog.Handler
	window time.Duration
	state  *limitState
	scope  string // the logger's own attributes, so that two sinks' identical messages are limited apart
	now    func() time.Time
}

func (h *limiter) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *limiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || h.window <= 0 {
		return h.next.Handle(ctx, r)
	}
	now := h.now()
	h.state.mu.Lock()
	key := h.scope + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "path" {
			key += "\x00" + a.Value.String()
			return false
		}
		return true
	})
	if len(h.state.seen) >= maxSeen {
		for k, e := range h.state.seen {
			if now.Sub(e.last) >= h.window {
				delete(h.state.seen, k)
			}
		}
	}
	e := h.state.seen[key]
	if e == nil {
		e = &entry{}
		h.state.seen[key] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < h.window {
		e.suppressed++
		h.state.mu.Unlock()
		return nil
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	h.state.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n), slog.String("suppressed_window", fmt.Sprint(h.window)))
	}
	return h.next.Handle(ctx, r)
}

func (h *limiter) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.scope = h.scope + fmt.Sprint(as) + "|"
	return &c
}

func (h *limiter) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
