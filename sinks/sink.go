package sinks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/internal/redact"
)

// Sink delivers batches of records to one destination.
//
// Send makes one delivery attempt of b.Records. It returns nil when every
// record of the batch was acknowledged by the destination or written to the
// dead-letter file. Before returning an error it may shrink b.Records to the
// records still undelivered (for example the failed items of an
// Elasticsearch bulk response); the delivery loop retries exactly what
// remains, with backoff, forever. Errors should be *SendError so that the
// loop can count them by kind and honour Retry-After.
//
// A cancelled ctx means the attempt failed: records may still have been
// written, so the loop treats the batch as undelivered (at-least-once).
// Send is called from one goroutine per in-flight batch (up to the sink's
// concurrency), so implementations must be safe for concurrent use.
type Sink interface {
	Send(ctx context.Context, b *Batch) error
	Close() error
}

// Batch is a group of records sent together. Records (and the bytes they
// alias) stay valid until Send returns.
type Batch struct {
	Records []record.Record
}

// Error kinds, the values of SendError.Kind and of the `kind` label.
const (
	KindNetwork   = "network"   // connection refused/reset, DNS
	KindTimeout   = "timeout"   // deadline exceeded
	KindServer    = "server"    // 5xx, broker errors that are retriable
	KindThrottled = "throttled" // 429, or 503 with Retry-After
	KindAuth      = "auth"      // 401, 403, 404: configuration, not data; alerting
	// KindConfig: the destination refuses every record of a request for
	// one reason (an empty label set, a bad index name): configuration,
	// not data; kept, retried and alerted on like KindAuth.
	KindConfig   = "config"
	KindRejected = "rejected" // the data was refused and could not be dead-lettered
)

// MaxRetryAfter caps a destination's Retry-After so that a bogus value (a
// date years ahead) cannot park the sink for good.
const MaxRetryAfter = time.Hour

// SendError is a failed delivery attempt.
type SendError struct {
	Kind string
	// RetryAfter, when positive, is the wait the destination asked for; the
	// loop pauses the whole sink that long, up to MaxRetryAfter.
	RetryAfter time.Duration
	Err        error
	// Detail is what the destination said beyond its status (the start of
	// a response body, an Elasticsearch item's reason). Destinations echo
	// documents there, so it is log content: the loop logs it at debug
	// level only, and it is never part of Error (nor of /status).
	Detail string
}

func (e *SendError) Error() string { return fmt.Sprintf("%s: %v", e.Kind, e.Err) }

// Unwrap returns the underlying error.
func (e *SendError) Unwrap() error { return e.Err }

// kindOf classifies err for metrics.
func kindOf(err error) string {
	var se *SendError
	if errors.As(err, &se) {
		return se.Kind
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return KindTimeout
	}
	return KindNetwork
}

// DeadLetters keeps records that a destination rejected for good (invalid,
// too large), so that they stop blocking delivery without being lost
// silently. Write must be safe for concurrent use.
type DeadLetters interface {
	Write(sink, reason string, recs []record.Record) error
}

// Deps are what every sink constructor takes besides its own settings.
// Nil Registerer or Logger means no metrics or no logs.
type Deps struct {
	Encoder     *record.Encoder
	DeadLetters DeadLetters
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	// Secrets, when set, learns every secret a sink reads from a file
	// later on (a rotated token), so that it is masked wherever skiff
	// prints text, as the configuration's own are.
	Secrets *redact.Secrets
}
