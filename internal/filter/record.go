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
	defer streams.Put(st)
	st.inPEM = false
	out, redacted := f.Redact(st, nil, r.Message)
	if redacted {
		r.Message = out
		r.Flags |= record.FlagRedacted
		if r.Flags&record.FlagJSON != 0 && !json.Valid(out) {
			r.Flags &^= record.FlagJSON
		}
	}
	if len(r.OTLP) > 0 && f.redactOTLP(st, r) {
		r.Flags |= record.FlagRedacted
	}
	return true
}

// redactOTLP redacts the string values of an ingested OTLP record's
// attributes (log record, resource, scope) and of a non-string body, which
// travel beside Message in r.OTLP, and reports whether it changed any.
func (f *Filter) redactOTLP(st *Stream, r *record.Record) bool {
	var p record.OTLPParts
	if p.Decode(r.OTLP) != nil {
		return false // ingest built it; nothing to redact in what cannot be read
	}
	if !p.RewriteStrings(func(s []byte) ([]byte, bool) {
		st.inPEM = false
		return f.Redact(st, nil, s)
	}) {
		return false
	}
	r.OTLP = p.AppendBinary(nil)
	return true
}
