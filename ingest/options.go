package ingest

import (
	"context"
	"github.com/skiff-dev/skiff/internal/redact"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

// Appender is where the server puts the records of a request: in skiff,
// the on-disk buffer (*buffer.Log satisfies it).
//
// AppendAll appends every record of b or none of them, and returns only
// once they are accepted under the buffer's fsync policy (in the page
// cache; after the fsync under "batch"): the server answers a request only
// after it returns nil. While the buffer has no room it waits, honouring
// ctx; the server bounds that wait (Options.MaxWait) and refuses the
// request when it ends. An error wrapping buffer.ErrFull means no room,
// buffer.ErrRecordTooLarge a request too large to ever fit, and
// buffer.ErrClosed a buffer shutting down; anything else is a write error.
// It may keep the memory b held if it leaves b other memory (the buffer
// does, for the cursors that read the records from memory), and must not
// touch b after it returns.
//
// Like the tailer, the server imports package buffer for the Batch type
// alone: plain memory in the buffer's frame layout, so that the records are
// encoded once, straight into what the buffer writes.
type Appender interface {
	AppendAll(ctx context.Context, b *buffer.Batch) error
}

// Filter decides, before a record is appended, whether it is kept, and may
// change it (redact its message). Apply is called for every record of a
// request, from the request's goroutine: it must be safe for concurrent
// use. Changes must not make the message alias memory Apply keeps.
type Filter interface {
	Apply(r *record.Record) (keep bool)
}

// Options configures a Server. Zero values mean the documented defaults.
type Options struct {
	// Addr is the address to listen on (host:port; port 0 picks one).
	// Required. cmd/skiff resolves SKIFF_INGEST_ADDR, which makes a bare
	// ":port" loopback.
	Addr string
	// MaxBodyBytes bounds a request body, as sent and after decompression
	// (default 4 MiB). A request's records may take at most four times
	// that in the buffer.
	MaxBodyBytes int64
	// MaxWait bounds how long a request waits for a free slot (then 429)
	// and for room in a full buffer (then 503); default 2s.
	MaxWait time.Duration
	// Concurrency is how many requests are read, decoded and appended at
	// once (default 4); the others wait for a slot.
	Concurrency int
	// MaxLineBytes splits longer lines of /v1/text into pieces marked
	// record.FlagPartial, as the tailer does (default 1 MiB).
	MaxLineBytes int
	// TokenFile, if set, holds the bearer token every request must carry;
	// it is re-read when it changes.
	TokenFile string
	// TLSCertFile and TLSKeyFile, if set, serve HTTPS; they are re-read
	// when they change.
	TLSCertFile, TLSKeyFile string
	// Filter, if set, is applied to every record before it is appended.
	Filter Filter
	// Secrets learns every value read from TokenFile and TLSKeyFile, so
	// that skiff's own output masks them; nil means none.
	Secrets *redact.Secrets
	// Registerer receives the server's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger receives the server's events; nil means discard.
	Logger *slog.Logger
}

// Defaults of zero Options fields.
const (
	DefaultMaxBodyBytes = 4 << 20
	DefaultMaxWait      = 2 * time.Second
	DefaultConcurrency  = 4
	defaultMaxLineBytes = 1 << 20
	// batchFactor bounds a request's records in the buffer, relative to
	// MaxBodyBytes: a resource repeated in every record, or many tiny
	// lines, make the records larger than the body.
	batchFactor = 4
)

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = defaultMaxLineBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
