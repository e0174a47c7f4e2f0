package tailer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

const (
	// maxBatchBytes and maxBatchRecords bound one AppendBatch call.
	maxBatchBytes   = 256 << 10
	maxBatchRecords = 8192
	// readBudget is how much of one file a pass may consume (emit as
	// lines) before the others get their turn.
	readBudget = 8 << 20
	// minReadBuf is the shared read buffer's size until a line longer
	// than it shows up.
	minReadBuf = 256 << 10
)

// batch collects encoded records for one AppendBatch call: those of a
// read pass over every file that changed, so that the pass costs one
// append (and the sinks one wake-up), not one per file. Its memory is
// reused from call to call. The records are encoded straight into the
// buffer's frame layout, so that appending them copies nothing.
type batch struct {
	frames buffer.Batch
	owner  *follower // file of the last line covered
	end    int64     // offset after the last line's bytes in owner's file
	inLong bool      // owner.inLong as of end
	bytes  int64     // file bytes the lines cover
	lines  int       // records in frames plus lines a filter dropped
	// earlier are the files with lines before owner's, each with where
	// its lines end, in order (a file may appear more than once).
	earlier []batchEnd
}

// batchEnd is where one file's lines in a batch end.
type batchEnd struct {
	f      *follower
	end    int64
	inLong bool
}

func (b *batch) reset() {
	b.frames.Reset()
	b.owner = nil
	b.bytes = 0
	b.lines = 0
	clear(b.earlier)
	b.earlier = b.earlier[:0]
}

// cover moves the batch's end past one line of f, [off, end).
func (b *batch) cover(f *follower, off, end int64, more bool) {
	if b.owner != f {
		if b.owner != nil {
			b.earlier = append(b.earlier, batchEnd{b.owner, b.end, b.inLong})
		}
		b.owner = f
		b.bytes += end - off
	} else {
		b.bytes += end - b.end
	}
	b.lines++
	b.end = end
	b.inLong = more
}

// holds reports whether the batch covers lines of f.
func (b *batch) holds(f *follower) bool {
	if b.owner == f {
		return true
	}
	for _, e := range b.earlier {
		if e.f == f {
			return true
		}
	}
	return false
}

// record encodes one record into the batch, flushing it when it is full.
// more says the line continues after end (a piece of a long line), which
// the checkpoint must remember to mark the rest partial after a restart.
func (t *Tailer) record(ctx context.Context, f *follower, off int64, msg []byte, flags uint8, end int64, more bool) error {
	b := &t.batch
	r := record.Record{
		Collected: t.now,
		Source:    f.sourceFor(),
		Offset:    off,
		End:       end,
		Path:      f.pathB,
		Message:   msg,
		Flags:     flags,
	}
	if more {
		r.Flags |= record.FlagMore
	}
	var obj []byte
	isObj := false
	if t.o.ParseJSON && flags&record.FlagPartial == 0 { // a piece of a line is not an object
		obj, isObj = jsonObject(msg)
	}
	if t.o.Filter != nil {
		out, redacted, drop := t.filter(f, msg, obj, isObj, flags, more)
		if drop {
			b.cover(f, off, end, more)
			return t.flushIfFull(ctx)
		}
		if redacted {
			r.Message = out
			r.Flags |= record.FlagRedacted
			if isObj {
				obj, isObj = jsonObject(out)
			}
		}
	}
	if isObj {
		r.Message = obj
		r.Flags |= record.FlagJSON
		if t.o.TimeField != "" {
			r.EventTime = eventTime(obj, t.o.TimeField)
		}
	}
	b.frames.End(r.AppendBinary(b.frames.Begin()))
	b.cover(f, off, end, more)
	return t.flushIfFull(ctx)
}

func (t *Tailer) flushIfFull(ctx context.Context) error {
	b := &t.batch
	if b.frames.Size() >= maxBatchBytes || b.lines >= maxBatchRecords {
		return t.flush(ctx)
	}
	return nil
}

// flush appends the batch. Only when AppendBatch succeeds do the files'
// committed offsets move past the batch's records (and past the lines a
// filter dropped among them: with nothing to append, at once).
func (t *Tailer) flush(ctx context.Context) error {
	b := &t.batch
	if b.lines == 0 {
		b.owner = nil
		return nil
	}
	records := b.frames.Len() // AppendBatch may leave the batch empty, its memory kept
	if records > 0 {
		t.setBusy(true) // WaitQuiet must not see quiet while records wait to be appended
		if !b.idsSaved() {
			// A new content generation: its Source goes into a checkpoint
			// before its first record into the buffer, so that after a crash
			// the file is matched to the records it has there, not read again
			// under another identity. If the checkpoint fails, the records go
			// in all the same (a crash would then repeat them, under new IDs).
			t.ckDirty = true
			t.checkpoint()
			for _, e := range b.earlier {
				e.f.idSaved = true
			}
			b.owner.idSaved = true
		}
		t.appendSince.Store(time.Now().UnixNano())
		err := t.app.AppendBatch(ctx, &b.frames)
		t.appendSince.Store(0)
		if err != nil {
			return &appendError{err: err}
		}
	}
	for _, e := range b.earlier {
		e.f.committed, e.f.committedInLong = e.end, e.inLong
	}
	b.owner.committed, b.owner.committedInLong = b.end, b.inLong
	t.ckDirty = true
	t.m.linesRead.Add(float64(records))
	t.m.bytesRead.Add(float64(b.bytes))
	b.reset()
	return nil
}

// idsSaved reports whether every file in the batch has its identity in a
// checkpoint.
func (b *batch) idsSaved() bool {
	for _, e := range b.earlier {
		if !e.f.idSaved {
			return false
		}
	}
	return b.owner.idSaved
}

// maxReadBuf is the largest the read buffer grows: a whole line of
// maxLine bytes with its terminator, and room to read on.
func maxReadBuf(maxLine int) int { return maxLine + 64<<10 }

// growBuf makes the read buffer hold at least n bytes (at most
// maxReadBuf), keeping its contents, and returns it. It starts small:
// most lines are short, and a buffer sized for the longest line allowed
// would be most of an idle skiff's heap.
func (t *Tailer) growBuf(n int) []byte {
	if n <= len(t.buf) {
		return t.buf
	}
	size := min(max(n, 2*len(t.buf)), maxReadBuf(t.o.MaxLineBytes))
	b := make([]byte, size)
	copy(b, t.buf)
	t.buf = b
	return b
}

// appendError is a failed Append: it stops Run, unlike a problem with
// one file.
type appendError struct{ err error }

func (e *appendError) Error() string { return "append: " + e.err.Error() }
func (e *appendError) Unwrap() error { return e.err }

// errRewritten is returned by readFile when the bytes just before the
// read position are no longer those read there: the file was truncated
// and rewritten, and its new contents must be read from the start.
var errRewritten = errors.New("file rewritten")

// readFile reads f from f.off until EOF (or its budget is spent), emitting
// complete lines. An incomplete last line is left unread, to be read
// again when the file grows: only complete lines are emitted, so a line is
// never split by timing. It reports whether it reached EOF.
//
// Its first read starts at the guard (the bytes before f.off, as read
// before), which must be unchanged: so a rewrite is caught before any new
// byte is taken for a continuation of the old contents, without another
// read.
//
// size, when not negative, is the file's size from an fstat just before:
// reading stops there, as at EOF (what is written after it is read by a
// later pass, which the write's event or a poll starts). That saves the
// read that would only find EOF, one per file and pass.
func (t *Tailer) readFile(ctx context.Context, f *follower, size int64) (bool, error) {
	buf := t.buf
	have := 0
	start := f.off
	budget := readBudget
	g := 0 // guard bytes at the head of buf, before start
	if len(f.guard) > 0 && f.guardAt == start {
		g = len(f.guard)
	}
	for {
		if have == len(buf) {
			// Full of one line not yet longer than MaxLineBytes: room for
			// more of it.
			buf = t.growBuf(have + 1)
		}
		at := start - int64(g) + int64(have) // file offset of buf[have]
		want := buf[have:]
		if size >= 0 {
			left := size - at
			if left <= int64(g) {
				return true, nil // nothing past the guard: EOF as of the fstat
			}
			want = want[:min(int64(len(want)), left)]
		}
		n, rerr := f.readAt(want, at)
		if g > 0 {
			if have+n < g || !bytes.Equal(buf[:g], f.guard) {
				if rerr == nil || errors.Is(rerr, io.EOF) {
					return false, errRewritten
				}
				return false, rerr
			}
			n -= g
			copy(buf, buf[g:g+n])
			g = 0
		}
		if n > 0 {
			t.now = time.Now()
			have += n
			if hi := start + int64(have); hi > f.seen {
				f.seen = hi
				t.progress()
			}
		}
		pos, err := t.splitLines(ctx, f, buf[:have], start)
		// The budget counts what the pass consumed: counting what it read,
		// a pass would stop inside a line longer than the budget, and the
		// next pass would read that same part of the line again, forever.
		budget -= pos
		if pos > 0 {
			f.advanceGuard(buf[:pos], start+int64(pos))
			copy(buf, buf[pos:have])
			have -= pos
			start += int64(pos)
			f.setOff(start)
		}
		if err != nil {
			return false, err
		}
		switch {
		case errors.Is(rerr, io.EOF):
			return true, nil
		case errors.Is(rerr, errReleased) && have > 0:
			// The janitor counted what was never read; the incomplete
			// line still in the buffer is lost as well.
			t.m.dropped.WithLabelValues("deleted_unread").Add(float64(have))
			return false, rerr
		case rerr != nil:
			return false, rerr
		case n == 0:
			return true, nil
		case budget <= 0:
			return false, nil
		}
	}
}

// splitLines emits the complete lines in data (which starts at file offset
// base) and the pieces of lines longer than MaxLineBytes, and returns how
// many bytes it consumed.
func (t *Tailer) splitLines(ctx context.Context, f *follower, data []byte, base int64) (int, error) {
	pos := 0
	for {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			break
		}
		le := pos + i
		ce := le
		if ce > pos && data[ce-1] == '\r' {
			ce--
		}
		if err := t.emitLine(ctx, f, base+int64(pos), data[pos:ce], base+int64(le)+1); err != nil {
			return pos, err
		}
		pos = le + 1
	}
	// An unterminated run longer than a line may be is shipped in pieces
	// now, so a huge line never sits whole in memory. A piece is cut only
	// once the line is known to be longer than max (a trailing "\r" may be
	// half of the terminator), so the pieces are the same however the
	// writes were timed.
	max := t.o.MaxLineBytes
	for n := len(data) - pos; n > max+1 || (n == max+1 && data[len(data)-1] != '\r'); n = len(data) - pos {
		off := base + int64(pos)
		if err := t.emit(ctx, f, off, data[pos:pos+max], record.FlagPartial, off+int64(max), true); err != nil {
			return pos, err
		}
		f.inLong = true
		pos += max
	}
	return pos, nil
}

// emitLine emits one terminated line; end is the offset after its
// terminator. A line longer than MaxLineBytes, or the end of one whose
// first pieces were already shipped, goes out in pieces marked partial.
func (t *Tailer) emitLine(ctx context.Context, f *follower, off int64, msg []byte, end int64) error {
	max := t.o.MaxLineBytes
	for len(msg) > max {
		if err := t.emit(ctx, f, off, msg[:max], record.FlagPartial, off+int64(max), true); err != nil {
			return err
		}
		f.inLong = true
		off += int64(max)
		msg = msg[max:]
	}
	var flags uint8
	if f.inLong {
		flags = record.FlagPartial
	}
	if err := t.emit(ctx, f, off, msg, flags, end, false); err != nil {
		return err
	}
	f.inLong = false
	return nil
}

// emitRest ships the unterminated bytes after f.off (at most MaxLineBytes:
// longer runs were already shipped in pieces) as a final line: the file was
// rotated away or deleted. partial marks a line the writer may still
// complete (skiff is stopping, or the file has been quiet for
// PartialFlush); its continuation is then marked partial too, and a last
// "\r", which may be half of a CRLF, is left for it.
func (t *Tailer) emitRest(ctx context.Context, f *follower, size int64, partial bool) error {
	if size <= f.off {
		return nil
	}
	n := min(size-f.off, int64(maxReadBuf(t.o.MaxLineBytes)))
	buf := t.growBuf(int(n))
	m, err := f.readAt(buf[:n], f.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", f.path, err)
	}
	if m == 0 {
		return nil
	}
	t.now = time.Now()
	msg := buf[:m]
	if bytes.IndexByte(msg, '\n') >= 0 {
		// The file grew under us; the caller reads again first.
		return nil
	}
	if msg[len(msg)-1] == '\r' {
		msg = msg[:len(msg)-1]
		if partial {
			if m--; m == 0 {
				return nil
			}
		}
	}
	var flags uint8
	if f.inLong || partial {
		flags = record.FlagPartial
	}
	end := f.off + int64(m)
	if err := t.emit(ctx, f, f.off, msg, flags, end, partial); err != nil {
		return err
	}
	f.advanceGuard(buf[:m], end)
	f.inLong = partial
	f.setOff(end)
	return nil
}
