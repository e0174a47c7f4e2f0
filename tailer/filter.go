package tailer

import (
	"github.com/skiff-dev/skiff/internal/filter"
	"github.com/skiff-dev/skiff/internal/record"
)

// Filter is what the tailer needs of a line filter (in skiff,
// *filter.Filter): it runs where a record is built, before it is
// appended, so that what it drops or redacts never reaches the buffer.
//
// Keep reports whether a line is shipped; obj is the line as a JSON object
// with ParseJSON, else nil. Redact returns the line with its secrets
// replaced (appended to dst, or the line itself when it has none) and
// whether it replaced any; st is the follower's own, carried from record
// to record of one file. Both must be cheap and must not retain their
// arguments.
type Filter interface {
	Keep(msg, obj []byte) bool
	Redact(st *filter.Stream, dst, msg []byte) ([]byte, bool)
}

// filter applies Options.Filter to one record's message. A line shipped in
// pieces is judged by its first piece: the others follow it (after a
// restart in the middle of such a line, the rest of it is shipped). A
// dropped line still moves the batch's end, so the checkpoint passes it
// and a restart does not read it again; each piece is redacted on its own.
func (t *Tailer) filter(f *follower, msg, obj []byte, isObj bool, flags uint8, more bool) (out []byte, redacted, drop bool) {
	if flags&record.FlagPartial != 0 && f.inLong { // a later piece of a line already judged
		if f.dropLine {
			return nil, false, true
		}
	} else {
		if !isObj {
			obj = nil
		}
		if !t.o.Filter.Keep(msg, obj) {
			f.dropLine = more
			return nil, false, true
		}
		f.dropLine = false
	}
	out, redacted = t.o.Filter.Redact(&f.redact, t.redactBuf[:0], msg)
	if redacted {
		t.redactBuf = out // reused: the record is encoded before the next line
	}
	return out, redacted, false
}
