package ingest

import (
	"fmt"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

// Reasons a request is refused, the reason label of
// skiff_ingest_rejected_requests_total.
const (
	reasonMalformed    = "malformed"
	reasonMediaType    = "unsupported_media_type"
	reasonTooLarge     = "too_large"
	reasonUnauthorized = "unauthorized"
	reasonMethod       = "method_not_allowed"
	reasonNotFound     = "not_found"
	reasonBusy         = "busy"        // no free slot within MaxWait: 429
	reasonFull         = "buffer_full" // no room within MaxWait: 503
	reasonWriteError   = "write_error" // the buffer cannot write: 503
	reasonShutdown     = "shutting_down"
	reasonClientGone   = "client_gone" // the client hung up or timed out first
	reasonTimeout      = "timeout"     // the body did not arrive within the read timeout
)

// reject is a request refused with an HTTP status.
type reject struct {
	status int
	reason string
	msg    string
}

func (r *reject) Error() string { return r.msg }

// request is the state of one request being decoded: its records, laid out
// in the buffer's frame layout, and scratch memory. It is pooled.
type request struct {
	o      *Options
	now    time.Time
	source uint64 // the request's number: Record.Source of its records
	maxOut int    // bound on batch bytes

	batch    buffer.Batch
	records  int64 // appended to batch
	filtered int64 // dropped by the filter
	rejected int64 // refused alone (OTLP partial success)
	whyRej   string

	rec                                       record.Record // the record being built (one allocation per request, not per record)
	body                                      []byte        // the request body
	res, scope, log, msg, parts, body2, other []byte        // scratch
	pb                                        []byte        // OTLP/JSON transcoded to protobuf
}

var requests = sync.Pool{New: func() any { return new(request) }}

// largeScratch is the capacity above which a request's memory is dropped
// rather than pooled, so that one huge request does not pin it.
const largeScratch = 8 << 20

func getRequest(o *Options, now time.Time, source uint64) *request {
	q := requests.Get().(*request)
	q.o, q.now, q.source = o, now, source
	q.maxOut = int(min(batchFactor*o.MaxBodyBytes, int64(^uint(0)>>1)))
	return q
}

func (q *request) release() {
	big := q.batch.Size() > largeScratch || cap(q.body) > largeScratch || cap(q.pb) > largeScratch || cap(q.other) > largeScratch
	q.batch.Reset()
	q.records, q.filtered, q.rejected, q.whyRej = 0, 0, 0, ""
	q.o = nil
	if big {
		return
	}
	q.body, q.pb, q.other = q.body[:0], q.pb[:0], q.other[:0]
	requests.Put(q)
}

// emit adds r to the batch: the filter first, then the request's identity.
func (q *request) emit(r *record.Record) error {
	r.Collected = q.now
	if f := q.o.Filter; f != nil {
		before := r.Message
		if !f.Apply(r) {
			q.filtered++
			return nil
		}
		if r.Origin == record.OriginOTLP && !sameBytes(before, r.Message) {
			q.redacted(r)
		}
	}
	// Offset is the record's index in the request; End == Offset marks it
	// as no file position (the tailer's replay skips it).
	r.Source, r.Offset, r.End = q.source, q.records+q.filtered+q.rejected, q.records+q.filtered+q.rejected
	q.batch.End(r.AppendBinary(q.batch.Begin()))
	q.records++
	if q.batch.Size() > q.maxOut {
		return &reject{status: 413, reason: reasonTooLarge, msg: fmt.Sprintf(
			"request too large: its records take more than %d bytes in the buffer (%d times the body limit)", q.maxOut, batchFactor)}
	}
	return nil
}

// redacted keeps a filter's change of an OTLP record's message: a body
// that was not a string becomes the changed text, so that the original
// value (kept apart for the OTLP sink) cannot leave skiff.
func (q *request) redacted(r *record.Record) {
	var p record.OTLPParts
	if p.Decode(r.OTLP) != nil || p.BodyKind != record.BodyValue {
		return
	}
	p.BodyKind, p.Body = record.BodyString, nil
	r.Flags &^= record.FlagJSON
	q.other = p.AppendBinary(q.other[:0])
	r.OTLP = q.other
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0] || string(a) == string(b))
}

// rejectRecord counts a record refused alone, remembering the first reason.
func (q *request) rejectRecord(why string) {
	if q.rejected == 0 {
		q.whyRej = why
	}
	q.rejected++
}
