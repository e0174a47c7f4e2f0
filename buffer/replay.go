package buffer

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// End returns the position just after the last readable record. Safe for
// concurrent use.
func (l *Log) End() Pos {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Pos{Segment: l.segs[len(l.segs)-1].id, Offset: l.pubEnd, Seq: l.pubSeq}
}

// Replay calls fn with the payload of every retained record from from up
// to the end of the log as it was when Replay began, in order. It is how
// the tailer learns, after a crash, which lines reached the buffer after
// its last checkpoint: so that it resumes after them instead of appending
// them again. Records in segments already deleted are skipped (every sink
// had them). data is valid only during fn. It persists nothing and may run
// concurrently with Append and cursors.
//
// Replay stops, returning nil, at the first record it cannot vouch for
// the continuity of: a corrupt or truncated region, or a segment that does
// not start where the one before it ended (by sequence number). After a
// power loss under FsyncInterval or FsyncNever more than the last segment
// may be torn, so records may survive after lost ones; had Replay gone on,
// the tailer would resume after lines that were lost. Stopping makes it
// read them again instead (duplicates, never loss).
func (l *Log) Replay(ctx context.Context, from Pos, fn func(data []byte) error) error {
	end := l.End()
	c := &Cursor{l: l, next: from} // detached: no name, no file, no drop accounting
	defer c.closeFile()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return ErrClosed
		}
		p, i := normalize(l.segs, l.pubEnd, l.pubSeq, c.next)
		limit := l.segs[i].size
		if i == len(l.segs)-1 {
			limit = l.pubEnd
		}
		// Leaving a segment, the next must start where it ended. Segments
		// before the oldest were deleted (GC, drop_oldest): not a gap, their
		// records reached the buffer and every sink had them.
		gap := p.Segment != c.next.Segment && p.Seq != c.next.Seq &&
			c.next.Offset >= segmentHeaderSize && c.next.Segment >= l.segs[0].id
		l.mu.Unlock()
		if gap {
			l.log.Warn("buffer replay stops at missing records", "segment", c.next.Segment,
				"offset", c.next.Offset, "seq", c.next.Seq, "next_segment", p.Segment, "next_seq", p.Seq)
			return nil
		}
		if p.Segment > end.Segment || (p.Segment == end.Segment && p.Offset >= end.Offset) {
			return nil
		}
		if p.Segment == end.Segment {
			limit = min(limit, end.Offset)
		}
		c.next = p
		if p.Offset >= limit {
			if p.Segment == end.Segment {
				return nil
			}
			continue // normalize moves to the next segment
		}
		recs, err := c.read(limit, 4096, 1<<20)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if c.skips > 0 {
			l.log.Warn("buffer replay stops at a corrupt region", "segment", p.Segment, "offset", p.Offset)
			return nil
		}
		for _, r := range recs {
			if err := fn(r.Data); err != nil {
				return err
			}
		}
	}
}

// MarshalText renders p as "segment:offset:seq", for state files of other
// packages (the tailer keeps the buffer's end in its checkpoint).
func (p Pos) MarshalText() ([]byte, error) {
	return fmt.Appendf(nil, "%d:%d:%d", p.Segment, p.Offset, p.Seq), nil
}

// UnmarshalText parses the output of MarshalText.
func (p *Pos) UnmarshalText(b []byte) error {
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 {
		return fmt.Errorf("position %q: want segment:offset:seq", b)
	}
	seg, err1 := strconv.ParseUint(parts[0], 10, 64)
	off, err2 := strconv.ParseInt(parts[1], 10, 64)
	seq, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || off < 0 {
		return fmt.Errorf("position %q: want segment:offset:seq", b)
	}
	*p = Pos{Segment: seg, Offset: off, Seq: seq}
	return nil
}
