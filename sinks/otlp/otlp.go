package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	gzip "github.com/klauspost/compress/gzip"
	"log/slog"
	nethttp "net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/internal/redact"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/httpclient"
	"github.com/skiff-dev/skiff/sinks/internal/loglimit"
)

const (
	// responseLimit bounds how much of a 2xx answer is read: an
	// ExportLogsServiceResponse is a count and a message.
	responseLimit = 64 << 10
	// gzipLevel is klauspost/compress's fastest gzip, the OpenTelemetry
	// Collector's default: on access-log lines 2.5 times the speed of the
	// standard library's level 3 for 5% more bytes (docs/OTLP.md,
	// "Encoder and cost").
	gzipLevel = 1
	// logsPath completes a bare base URL, as OTEL_EXPORTER_OTLP_ENDPOINT
	// does for the SDKs' exporters.
	logsPath = "/v1/logs"
)

// Sink is the OTLP/HTTP logs sink: it POSTs each batch as one
// ExportLogsServiceRequest (protobuf, or the OTLP JSON mapping), gzipped
// by default. What it does with each answer (docs/OTLP.md, "Answers"):
//
//   - 2xx: delivered. A partial_success with rejected_log_records is
//     counted (skiff_sink_otlp_rejected_records_total) and logged; which
//     records were rejected cannot be known and OTLP forbids a retry, so
//     the batch counts as delivered.
//   - RETRYABLE_STATUS (429, 502, 503, 504): retried with backoff,
//     honouring Retry-After on 429 and 503.
//   - 401, 403, 404 and redirects: KindAuth, retried: the configuration
//     is wrong, not the data.
//   - 400, 413 and other 4xx: the data is refused. The batch is halved
//     down to the refused records, which are dead-lettered.
//   - other 5xx: not retryable under OTLP/HTTP; the server failed, not a
//     record, so the whole batch is dead-lettered at once.
//   - timeouts and connection errors: KindTimeout, KindNetwork, retried.
//
// Answer bodies (google.rpc.Status, partial_success.error_message) may
// quote records: they go to SendError.Detail and dead-letter reasons, which
// are logged at debug level only, never into errors, /status or logs above
// debug. On error Send shrinks b.Records to the
// records still undelivered. Sink is safe for concurrent use.
type Sink struct {
	name   string
	cfg    config.OTLP
	url    string
	client *httpclient.Client
	m      *mapping
	json   bool
	gzip   bool
	dl     sinks.DeadLetters
	log    *slog.Logger

	dropped  prometheus.Counter // refused records dropped for want of dead letters
	partial  prometheus.Counter // skiff_sink_otlp_rejected_records_total
	batches  sync.Pool          // *batch
	bufs     sync.Pool          // *[]byte compressed bodies
	gzips    sync.Pool          // *gzip.Writer
	mu       sync.Mutex
	partLog  loglimit.Limiter // partial-success warnings; guarded by mu
	otherLog loglimit.Limiter // unreadable answers; guarded by mu
}

var _ sinks.Sink = (*Sink)(nil)

// New returns an OTLP sink named name (the sink label and the name in dead
// letters). It reads the secret files and the TLS material once, failing
// if they cannot be read, and starts nothing. d.DeadLetters may be nil:
// refused records are then dropped and counted. d.Encoder gives the
// record IDs, the pod identity and the static fields.
func New(name string, cfg config.OTLP, d sinks.Deps) (*Sink, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Encoder == nil {
		d.Encoder = record.NewEncoder("", record.Kubernetes{}, nil)
	}
	numbers, err := parseNumberScheme(cfg.SeverityNumbers)
	if err != nil {
		return nil, fmt.Errorf("otlp sink %s: %w", name, err)
	}
	s := &Sink{
		name:     name,
		cfg:      cfg,
		m:        newMapping(d.Encoder, cfg.SeverityField, numbers),
		json:     cfg.Encoding == config.EncodingJSON,
		gzip:     cfg.Compression != "none",
		dl:       d.DeadLetters,
		log:      d.Logger, // cmd/skiff gives each sink a logger with its sink attribute
		partLog:  loglimit.Limiter{Every: loglimit.Every},
		otherLog: loglimit.Limiter{Every: loglimit.Every},
	}
	if s.url, err = endpoint(cfg.URL); err != nil {
		return nil, fmt.Errorf("otlp sink %s: %w", name, err)
	}
	o := httpclient.FromConfig(name, &cfg.HTTPClient, cfg.RetryableStatus, d.Registerer, s.log)
	o.ListedOnly, o.Secrets = true, d.Secrets
	if s.client, err = httpclient.New(o); err != nil {
		return nil, fmt.Errorf("otlp sink %s: %w", name, err)
	}
	s.dropped = sinks.NewDroppedCounter(name, "rejected")
	s.partial = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skiff_sink_otlp_rejected_records_total", ConstLabels: prometheus.Labels{"sink": name},
		Help: "Records an OTLP endpoint accepted the request of but reported rejected (partial_success); which ones cannot be known, so they count as delivered.",
	})
	if d.Registerer != nil {
		for _, c := range []prometheus.Collector{s.dropped, s.partial} {
			if err := d.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("otlp sink %s: register metrics: %w", name, err)
			}
		}
	}
	return s, nil
}

// endpoint completes a bare base URL (no path) with /v1/logs.
func endpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("parse URL: " + redact.Text(err.Error()))
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = logsPath
	}
	return u.String(), nil
}

// LoopOptions sets the delivery-loop options that s's configuration
// decides (batch size, linger, concurrency, backoff, circuit breaker) and
// leaves the others (Name, StallTimeout, Registerer, Logger) alone.
func (s *Sink) LoopOptions(o *sinks.LoopOptions) {
	httpclient.LoopOptions(&s.cfg.HTTPClient, o)
}

// Send makes one delivery attempt of b (see Sink). Safe for concurrent use.
func (s *Sink) Send(ctx context.Context, b *sinks.Batch) error {
	rem, err := s.send(ctx, b.Records)
	if err != nil {
		b.Records = rem
	}
	return err
}

// Close releases idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// send delivers recs and returns, on error, the records not delivered.
func (s *Sink) send(ctx context.Context, recs []record.Record) ([]record.Record, error) {
	resp, err := s.post(ctx, recs)
	if err != nil {
		return recs, err
	}
	se, rejected := s.client.Classify(resp)
	switch {
	case rejected:
		if resp.Status >= 500 {
			if err := s.deadLetter(reason(resp, " (not retryable under OTLP/HTTP)"), recs); err != nil {
				return recs, err
			}
			return nil, nil
		}
		return s.split(ctx, recs, reason(resp, ""))
	case se != nil:
		// The status alone: the body may quote records, so it is Detail,
		// which the loop logs at debug level only.
		se.Err, se.Detail = answerErr(resp), statusMessage(resp.Body, resp.Header.Get("Content-Type"))
		return recs, se
	}
	ps, err := parseResponse(resp.Body, resp.Header.Get("Content-Type"), s.json)
	if err != nil {
		// Accepted all the same: a body skiff cannot read does not undo a
		// 2xx, and resending would duplicate every record.
		s.warn(&s.otherLog, "OTLP endpoint accepted a request with an answer skiff cannot read", "status", resp.Status, "err", err)
		return nil, nil
	}
	if ps.rejected > 0 {
		s.partial.Add(float64(ps.rejected))
		s.warn(&s.partLog, "OTLP endpoint rejected records of an accepted request (partial success); they cannot be identified, so none is retried or dead-lettered",
			"rejected", ps.rejected, "records", len(recs))
	}
	if ps.message != "" {
		s.log.Debug("OTLP partial success message", "rejected", ps.rejected, "message", ps.message)
	}
	return nil, nil
}

// split sends recs in two halves, down to single records, which are
// dead-lettered with reason.
func (s *Sink) split(ctx context.Context, recs []record.Record, reason string) ([]record.Record, error) {
	if len(recs) == 1 {
		if err := s.deadLetter(reason, recs); err != nil {
			return recs, err
		}
		return nil, nil
	}
	mid := len(recs) / 2
	rem, err := s.send(ctx, recs[:mid])
	if err != nil {
		out := make([]record.Record, 0, len(rem)+len(recs)-mid)
		return append(append(out, rem...), recs[mid:]...), err
	}
	return s.send(ctx, recs[mid:])
}

// deadLetter hands refused records to the dead letters, or drops them
// (counted) when there are none.
func (s *Sink) deadLetter(reason string, recs []record.Record) error {
	if s.dl == nil {
		s.dropped.Add(float64(len(recs)))
		s.log.Error("records refused by the destination dropped (no dead-letter store)", "reason", reason, "records", len(recs))
		return nil
	}
	if err := s.dl.Write(s.name, reason, recs); err != nil {
		return &sinks.SendError{Kind: sinks.KindRejected, Err: fmt.Errorf("dead-letter refused records (%s): %w", reason, err)}
	}
	return nil
}

// reason is the dead-letter reason of records r refused: its status,
// what its google.rpc.Status says (which may quote the records: dead-letter
// reasons are logged at debug level only), and note.
func reason(r *httpclient.Response, note string) string {
	out := fmt.Sprintf("otlp http %d %s", r.Status, nethttp.StatusText(r.Status)) + note
	if msg := statusMessage(r.Body, r.Header.Get("Content-Type")); msg != "" {
		out += ": " + msg
	}
	return out
}

// answerErr names an answer by its status alone.
func answerErr(r *httpclient.Response) error {
	if r.Status >= 300 && r.Status < 400 {
		return fmt.Errorf("http %d: redirected to %q; set the URL to the final endpoint", r.Status, redact.URL(r.Header.Get("Location")))
	}
	return fmt.Errorf("http %d %s", r.Status, nethttp.StatusText(r.Status))
}

func (s *Sink) warn(lim *loglimit.Limiter, msg string, args ...any) {
	s.mu.Lock()
	ok, n := lim.Allow(time.Now())
	s.mu.Unlock()
	if ok {
		s.log.Warn(msg, append(args, "suppressed", n)...)
	}
}

// post sends one request holding recs and reads its answer.
func (s *Sink) post(ctx context.Context, recs []record.Record) (*httpclient.Response, error) {
	bt := s.getBatch()
	var raw []byte
	if s.json {
		raw = bt.encodeJSON(recs)
	} else {
		raw = bt.encodeProto(recs)
	}
	var body *httpclient.Body
	if s.gzip {
		cb := s.compress(raw)
		s.batches.Put(bt)
		body = httpclient.NewBody(*cb, func() { s.bufs.Put(cb) })
	} else {
		body = httpclient.NewBody(raw, func() { s.batches.Put(bt) })
	}
	defer body.Release()
	contentType := "application/x-protobuf"
	if s.json {
		contentType = "application/json"
	}
	return s.client.Post(ctx, s.url, body, contentType, s.gzip, responseLimit)
}

func (s *Sink) getBatch() *batch {
	if b, ok := s.batches.Get().(*batch); ok {
		return b
	}
	return newBatch(s.m)
}

// compress gzips src into a pooled buffer.
func (s *Sink) compress(src []byte) *[]byte {
	out, ok := s.bufs.Get().(*[]byte)
	if !ok {
		b := make([]byte, 0, 64<<10)
		out = &b
	}
	w := bytes.NewBuffer((*out)[:0])
	zw, ok := s.gzips.Get().(*gzip.Writer)
	if !ok {
		zw, _ = gzip.NewWriterLevel(w, gzipLevel) // a valid level cannot fail
	} else {
		zw.Reset(w)
	}
	// Writes to a bytes.Buffer cannot fail.
	_, _ = zw.Write(src)
	_ = zw.Close()
	s.gzips.Put(zw)
	*out = w.Bytes()
	return out
}
