package tailer

import (
	"bytes"
	"context"

	"github.com/skiff-dev/skiff/internal/record"
)

// resumeAt is where the last record of a file that reached the buffer
// ends.
type resumeAt struct {
	off  int64 // the record's offset
	end  int64
	more bool // that record is a piece of a line that continues
	// head is the start of the record's message when it is the file's
	// bytes at off as they were (a plain line or a piece of one, up to its
	// first "\n"): the file must still hold them there to resume after the
	// record. Nil when the message was changed on the way (JSON trimmed).
	head []byte
}

// replayHeadLen bounds resumeAt.head.
const replayHeadLen = 32

// replay reads the records appended after the checkpoint's mark (all of
// them when there is no checkpoint yet: a run that crashed before its first
// one) and
// remembers, per file (Source), where the last of them ends; adopt resumes
// files there. This turns "a crash repeats up to a checkpoint interval of
// lines" into "a crash repeats at most the batch being appended".
func (t *Tailer) replay(ctx context.Context, mark []byte) error {
	t.replayed = map[uint64]resumeAt{}
	if t.o.Replayer == nil {
		return nil
	}
	var r record.Record
	n := 0
	err := t.o.Replayer.Replay(ctx, mark, func(b []byte) error {
		if r.Decode(b) != nil || r.End <= r.Offset || r.Origin != record.OriginFile {
			return nil // not a record of ours, or one without an end: no help
		}
		n++
		cur, ok := t.replayed[r.Source]
		if ok && r.End <= cur.end {
			return nil
		}
		cur.off, cur.end, cur.more = r.Offset, r.End, r.Flags&record.FlagMore != 0
		cur.head = cur.head[:0]
		if r.Flags&^(record.FlagPartial|record.FlagMore) == 0 {
			h := r.Message[:min(len(r.Message), replayHeadLen)]
			if i := bytes.IndexByte(h, '\n'); i >= 0 {
				h = h[:i] // a joined multiline record: the file may have "\r\n" there
			}
			cur.head = append(cur.head, h...)
		} else {
			cur.head = nil
		}
		t.replayed[r.Source] = cur
		return nil
	})
	if n > 0 {
		t.log.Info("found the records appended since the last checkpoint", "records", n, "files", len(t.replayed))
	}
	return err
}

// resumed moves f past the records the buffer already holds for its
// generation, when the checkpoint predates them. It reports false when the
// file no longer holds the last of those records where it was read (it was
// rewritten after the checkpoint, keeping the bytes the checkpoint checks):
// f is then another generation.
func (t *Tailer) resumed(f *follower, size int64) bool {
	at, ok := t.replayed[f.source]
	if !ok || at.end <= f.off {
		return true
	}
	if at.end > size {
		return false
	}
	if len(at.head) > 0 {
		b := make([]byte, len(at.head))
		if n, _ := f.readAt(b, at.off); n != len(b) || !bytes.Equal(b, at.head) {
			return false
		}
	}
	f.off, f.committed = at.end, at.end
	f.inLong, f.committedInLong = at.more, at.more
	return true
}
