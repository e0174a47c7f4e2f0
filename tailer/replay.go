package tailer

import (
	"context"

	"github.com/skiff-dev/skiff/internal/record"
)

// resumeAt is where the last record of a file that reached the buffer
// ends.
type resumeAt struct {
	end  int64
	more bool // that record is a piece of a line that continues
}

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
		if r.Decode(b) != nil || r.End <= r.Offset {
			return nil // not a record of ours, or one without an end: no help
		}
		n++
		if cur, ok := t.replayed[r.Source]; !ok || r.End > cur.end {
			t.replayed[r.Source] = resumeAt{end: r.End, more: r.Flags&record.FlagMore != 0}
		}
		return nil
	})
	for key, e := range t.saved {
		if at, ok := t.replayed[e.Source]; ok && e.Source != 0 && at.end > e.Offset {
			e.Offset, e.InLong = at.end, at.more
			t.saved[key] = e
		}
	}
	if n > 0 {
		t.log.Info("resuming after the records appended since the last checkpoint", "records", n, "files", len(t.replayed))
	}
	return err
}

// resumed moves f past the records the buffer already holds for it, for a
// file whose checkpoint predates them (or that has none).
func (t *Tailer) resumed(f *follower, head []byte, size int64) {
	src := f.source
	if !f.haveSource {
		src = sourceID(f.key, head)
	}
	at, ok := t.replayed[src]
	if !ok || at.end <= f.off || at.end > size {
		return
	}
	f.off, f.committed = at.end, at.end
	f.inLong, f.committedInLong = at.more, at.more
	f.source, f.haveSource = src, true
}
