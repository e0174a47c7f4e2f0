package tailer

import (
	"context"
	"time"
)

// multiline is a follower's pending joined record.
type multiline struct {
	pending bool
	buf     []byte
	off     int64     // offset of the first line
	end     int64     // offset after the last line's terminator
	lines   int       // lines joined so far
	last    time.Time // when the last line was added
}

// emit passes one line (or one piece of a long line) on: straight to the
// batch, or into the follower's pending multiline record. end is the offset
// after the line's terminator (or after the piece).
func (t *Tailer) emit(ctx context.Context, f *follower, off int64, msg []byte, flags uint8, end int64, more bool) error {
	re := t.o.MultilineStart
	if re == nil {
		return t.record(ctx, f, off, msg, flags, end, more)
	}
	ml := &f.ml
	if flags != 0 || more { // pieces of a long line are never joined
		if err := t.flushMultiline(ctx, f); err != nil {
			return err
		}
		return t.record(ctx, f, off, msg, flags, end, more)
	}
	if ml.pending && ml.lines < t.o.MultilineMaxLines && len(ml.buf)+1+len(msg) <= t.o.MaxLineBytes && !re.Match(msg) {
		ml.buf = append(ml.buf, '\n')
		ml.buf = append(ml.buf, msg...)
		ml.lines++
		ml.end = end
		ml.last = t.now
		return nil
	}
	if err := t.flushMultiline(ctx, f); err != nil {
		return err
	}
	ml.pending = true
	ml.buf = append(ml.buf[:0], msg...)
	ml.off, ml.end, ml.lines, ml.last = off, end, 1, t.now
	return nil
}

// flushMultiline ships f's pending joined record, if any.
func (t *Tailer) flushMultiline(ctx context.Context, f *follower) error {
	ml := &f.ml
	if !ml.pending {
		return nil
	}
	ml.pending = false
	if err := t.record(ctx, f, ml.off, ml.buf, 0, ml.end, false); err != nil {
		ml.pending = true
		return err
	}
	if cap(ml.buf) > 64<<10 {
		ml.buf = nil // do not pin a large buffer per idle file
	}
	return nil
}
