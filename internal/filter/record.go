package filter

import (
	"encoding/json"
	"sync"

	"github.com/skiff-dev/skiff/internal/record"
)

var streams = sync.Pool{New: func() any { return new(Stream) }}

// Apply is Keep and Redact for one whole record, for sources that build
// records themselves (the ingest endpoints: it satisfies ingest.Filter).
// A record flagged record.FlagJSON is its own JSON object for field rules.
// It reports whether r is kept; a redacted message is new memory, flagged
// record.FlagRedacted (and no longer FlagJSON if it stopped being valid
// JSON). Each record is redacted on its own: no PEM block spans two. It is
// safe for concurrent use.
func (f *Filter) Apply(r *record.Record) bool {
	var obj []byte
	if r.Flags&record.FlagJSON != 0 {
		obj = r.Message
	}
	if !f.Keep(r.Message, obj) {
		return false
	}
	if !f.redacting {
		return true
	}
	st := streams.Get().(*Stream)
	st.inPEM = false
	out, redacted := f.Redact(st, nil, r.Message)
	streams.Put(st)
	if redacted {
		r.Message = out
		r.Flags |= record.FlagRedacted
		if r.Flags&record.FlagJSON != 0 && !json.Valid(out) {
			r.Flags &^= record.FlagJSON
		}
	}
	return true
}
