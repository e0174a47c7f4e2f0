package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	nethttp "net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/httpclient"
)

// bulkBodyLimit bounds the response read on success when it is an
// Elasticsearch bulk response (one item per record); other formats read
// none of a 2xx body.
const bulkBodyLimit = 64 << 20

// Sink is a sink that POSTs batches to an HTTP endpoint as NDJSON, a JSON
// array, a Loki push request or an Elasticsearch bulk request (see
// docs/HTTP.md). Send is one delivery attempt; what it does with each
// answer:
//
//   - 2xx: delivered. For Elasticsearch, per-item failures in the bulk
//     response: retryable ones (429, 5xx, RETRYABLE_STATUS) are left in
//     the batch and retried, the others dead-lettered; 409 on create means
//     the record was indexed by an earlier attempt.
//   - RETRYABLE_STATUS or any 5xx: retryable (KindServer; KindThrottled
//     for 429, and for 503 with Retry-After; KindTimeout for 408), with
//     Retry-After (seconds or HTTP date) honoured on 429 and 503.
//   - 401, 403, 404 and redirects: KindAuth. The configuration is wrong,
//     not the data: the batch is kept and retried.
//   - 413: the batch is split in halves, each sent on its own; a single
//     record still too large is dead-lettered.
//   - other 4xx: two records sent alone tell data from configuration. If
//     one is accepted, the batch is split in halves down to the rejected
//     records, which are dead-lettered; the rest is delivered. If both are
//     refused for the same reason, everything is: a configuration error
//     (KindConfig), the records are kept and retried. A bulk response
//     refusing every item for one reason is one too.
//   - timeouts and connection errors: KindTimeout, KindNetwork.
//
// On error Send shrinks b.Records to the records still undelivered.
// Sink is safe for concurrent use.
type Sink struct {
	name     string
	cfg      config.HTTP
	url      string
	client   *httpclient.Client
	format   bodyFormat
	gzip     bool
	dl       sinks.DeadLetters
	log      *slog.Logger
	rejected prometheus.Counter // records dropped for want of dead letters

	bufs   sync.Pool // *[]byte request bodies
	gzips  sync.Pool // *gzip.Writer
	chunks sync.Pool // *[]byte chunks of streamed bodies
	bufios sync.Pool // *bufio.Writer gathering gzip output of streamed bodies

	cfgMu sync.Mutex
	cerr  configError // guarded by cfgMu
}

// configHold is how long a configuration error keeps a record that the
// destination refuses on its own: after that, such a record is taken for
// bad data and dead-lettered, so that a genuinely bad record alone at the
// head of a quiet stream cannot block the sink for ever.
const configHold = 5 * time.Minute

// configError is the sink's belief that the destination refuses
// everything for one reason (a configuration error), from the first
// request that showed it until a record is accepted.
type configError struct {
	reason string
	since  time.Time
}

var _ sinks.Sink = (*Sink)(nil)

// New returns an HTTP sink named name (the sink label and the name in
// dead letters). It reads the secret files and the TLS material once,
// failing if they cannot be read, and starts nothing. d.DeadLetters may be
// nil: rejected records are then dropped and counted.
func New(name string, cfg config.HTTP, d sinks.Deps) (*Sink, error) {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Encoder == nil {
		d.Encoder = record.NewEncoder("", record.Kubernetes{}, nil)
	}
	h := &Sink{
		name: name,
		cfg:  cfg,
		gzip: cfg.Compression == "gzip",
		dl:   d.DeadLetters,
		log:  d.Logger, // cmd/skiff already labels it with the sink
	}
	u, err := endpoint(cfg.URL, cfg.Format)
	if err != nil {
		return nil, err
	}
	h.url = u
	if h.format, err = newBodyFormat(&cfg, d.Encoder); err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	co := httpclient.FromConfig(name, &cfg.HTTPClient, cfg.RetryableStatus, d.Registerer, h.log)
	co.Secrets = d.Secrets
	if h.client, err = httpclient.New(co); err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	h.rejected = sinks.NewDroppedCounter(name, "rejected")
	if d.Registerer != nil {
		if err := d.Registerer.Register(h.rejected); err != nil {
			return nil, fmt.Errorf("http sink %s: register metrics: %w", name, err)
		}
	}
	return h, nil
}

// LoopOptions sets the delivery-loop options that h's configuration
// decides (batch size, linger, concurrency, backoff, Retry-After cap,
// circuit breaker) and
// leaves the others (Name, StallTimeout, Registerer, Logger) alone.
func (h *Sink) LoopOptions(o *sinks.LoopOptions) {
	httpclient.LoopOptions(&h.cfg.HTTPClient, o)
}

// endpoint completes a Loki or Elasticsearch base URL with the API path.
func endpoint(raw, format string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse URL: %w", err)
	}
	switch format {
	case config.FormatLoki:
		if u.Path == "" || u.Path == "/" {
			u.Path = "/loki/api/v1/push"
		}
	case config.FormatElasticsearch:
		if !strings.HasSuffix(u.Path, "/_bulk") {
			u.Path = strings.TrimSuffix(u.Path, "/") + "/_bulk"
		}
	}
	return u.String(), nil
}

// Send makes one delivery attempt of b (see Sink). Safe for concurrent use.
func (h *Sink) Send(ctx context.Context, b *sinks.Batch) error {
	rem, err := h.send(ctx, b.Records)
	if err != nil {
		b.Records = rem
	}
	return err
}

// Close releases idle connections.
func (h *Sink) Close() error {
	h.client.CloseIdleConnections()
	return nil
}

// send delivers recs and returns, on error, the records not delivered, in
// a slice that does not alias recs' backing array beyond recs itself.
func (h *Sink) send(ctx context.Context, recs []record.Record) ([]record.Record, error) {
	resp, err := h.post(ctx, recs)
	if err != nil {
		return recs, err
	}
	switch se, rejected := h.client.Classify(resp); {
	case rejected:
		return h.refused(ctx, recs, resp.Err().Error(), resp.Reason())
	case se != nil:
		return recs, se
	}
	if _, ok := h.format.(esFormat); ok {
		return h.bulkItems(resp.Body, recs)
	}
	h.accepted()
	return nil, nil
}

// refused handles a request holding recs that the destination refused
// as a whole for reason. Is it the data, or the configuration (an empty
// Loki label set, a bad index name)? Two records sent alone tell: if one
// of them is accepted, some records are bad, and halving the batch finds
// them; if both are refused for the same reason, everything is, and the
// records are kept and retried (KindConfig). A single record refused
// while the sink is not in such a configuration error is bad data.
func (h *Sink) refused(ctx context.Context, recs []record.Record, summary, reason string) ([]record.Record, error) {
	if len(recs) == 1 {
		if h.configFailing(reason) {
			return recs, h.configErr(summary, reason)
		}
		return h.split(ctx, recs, reason)
	}
	// The first record and one other, chosen at random so that two bad
	// records at fixed places cannot pass for a configuration error every
	// time.
	j := 1 + rand.N(len(recs)-1)
	for _, i := range []int{0, j} {
		one := recs[i : i+1 : i+1]
		resp, err := h.post(ctx, one)
		if err != nil {
			return recs, err
		}
		switch se, rejected := h.client.Classify(resp); {
		case rejected && resp.Reason() == reason:
		case rejected, se == nil:
			// Accepted (sent again below: create and IDs deduplicate), or
			// refused for a reason of its own: the data differ.
			return h.split(ctx, recs, reason)
		default:
			return recs, se
		}
	}
	h.noteConfig(reason)
	return recs, h.configErr(summary, reason)
}

// configErr is the error of a configuration error: summary (the status,
// no log content) in its message, the destination's reason in Detail.
func (h *Sink) configErr(summary, reason string) error {
	return &sinks.SendError{Kind: sinks.KindConfig, Detail: reason,
		Err: fmt.Errorf("every record refused for the same reason (%s): check the sink's settings (index, labels, URL); the records are kept", summary)}
}

// noteConfig records that the destination refuses everything for reason.
func (h *Sink) noteConfig(reason string) {
	h.cfgMu.Lock()
	defer h.cfgMu.Unlock()
	if h.cerr.reason != reason {
		h.cerr = configError{reason: reason, since: time.Now()}
	}
}

// configFailing reports whether a record refused alone for reason is
// kept as part of a configuration error.
func (h *Sink) configFailing(reason string) bool {
	h.cfgMu.Lock()
	defer h.cfgMu.Unlock()
	return h.cerr.reason == reason && time.Since(h.cerr.since) < configHold
}

// accepted ends a configuration error.
func (h *Sink) accepted() {
	h.cfgMu.Lock()
	h.cerr = configError{}
	h.cfgMu.Unlock()
}

// split sends recs in two halves, down to single records, which are
// dead-lettered with reason.
func (h *Sink) split(ctx context.Context, recs []record.Record, reason string) ([]record.Record, error) {
	if len(recs) == 1 {
		if err := h.deadLetter(reason, recs); err != nil {
			return recs, err
		}
		return nil, nil
	}
	mid := len(recs) / 2
	rem, err := h.send(ctx, recs[:mid])
	if err != nil {
		out := make([]record.Record, 0, len(rem)+len(recs)-mid)
		return append(append(out, rem...), recs[mid:]...), err
	}
	return h.send(ctx, recs[mid:])
}

// bulkItems handles an Elasticsearch bulk response to recs.
func (h *Sink) bulkItems(body []byte, recs []record.Record) ([]record.Record, error) {
	var r esBulkResponse
	if err := json.Unmarshal(body, &r); err != nil {
		// The request was accepted but we cannot tell which items were
		// indexed: resend all; create deduplicates.
		return recs, &sinks.SendError{Kind: sinks.KindServer, Err: fmt.Errorf("parse bulk response: %w", err)}
	}
	if !r.Errors {
		h.accepted()
		return nil, nil
	}
	if len(r.Items) != len(recs) {
		return recs, &sinks.SendError{Kind: sinks.KindServer, Err: fmt.Errorf("bulk response has %d items for %d records", len(r.Items), len(recs))}
	}
	var retry []record.Record
	var retryErr, retryDetail string
	throttled := true
	rejected := map[string][]record.Record{}
	summaries := map[string]string{} // reason -> its status and type, without the text
	var reasons []string
	for i, item := range r.Items {
		var it esBulkItem
		for _, v := range item { // one key: the action
			it = v
		}
		switch st := it.Status; {
		case st >= 200 && st < 300, st == 409: // 409: created by an earlier attempt
		case st < 100 || st > 599 || h.client.Retryable(st): // no (valid) status: outcome unknown
			retry = append(retry, recs[i])
			throttled = throttled && st == 429
			if retryErr == "" {
				// The type only: the reason may quote the document.
				retryErr = fmt.Sprintf("%d %s", st, it.Error.Type)
				retryDetail = it.Error.Reason
			}
		default:
			reason := fmt.Sprintf("elasticsearch %d %s: %s", st, it.Error.Type, it.Error.Reason)
			if _, ok := rejected[reason]; !ok {
				reasons = append(reasons, reason)
				summaries[reason] = fmt.Sprintf("elasticsearch %d %s", st, it.Error.Type)
			}
			rejected[reason] = append(rejected[reason], recs[i])
		}
	}
	if len(reasons) == 1 && len(rejected[reasons[0]]) == len(recs) {
		// Every item refused for one reason: the index or its mapping is
		// wrong, not the data (for a single item, see refused).
		reason := reasons[0]
		if len(recs) > 1 {
			h.noteConfig(reason)
		}
		if len(recs) > 1 || h.configFailing(reason) {
			return recs, h.configErr(summaries[reason], reason)
		}
	}
	refused := 0
	for _, rs := range rejected {
		refused += len(rs)
	}
	if refused+len(retry) < len(recs) {
		h.accepted() // some items were indexed
	}
	// Every reason gets its own write: a failed one keeps its records for
	// the retry and does not stop the others from being stored.
	var dlErr error
	for _, reason := range reasons {
		if err := h.deadLetter(reason, rejected[reason]); err != nil {
			retry = append(retry, rejected[reason]...)
			if dlErr == nil {
				dlErr = err
			}
		}
	}
	if len(retry) == 0 {
		return nil, nil
	}
	if dlErr != nil {
		return retry, dlErr
	}
	kind := sinks.KindServer
	if throttled {
		kind = sinks.KindThrottled
	}
	return retry, &sinks.SendError{Kind: kind, Err: fmt.Errorf("bulk: %d of %d items failed, e.g. %s", len(retry), len(recs), retryErr), Detail: retryDetail}
}

// deadLetter hands rejected records to the dead letters, or drops them
// (counted) when there are none.
func (h *Sink) deadLetter(reason string, recs []record.Record) error {
	if h.dl == nil {
		h.rejected.Add(float64(len(recs)))
		h.log.Error("records rejected by the destination dropped (no dead-letter store)", "records", len(recs))
		h.log.Debug("why the destination rejected them", "reason", reason) // may quote the records
		return nil
	}
	if err := h.dl.Write(h.name, reason, recs); err != nil {
		return &sinks.SendError{Kind: sinks.KindRejected, Err: fmt.Errorf("dead-letter %d rejected records: %w", len(recs), err), Detail: reason}
	}
	return nil
}

// post sends one request holding recs and reads its response.
func (h *Sink) post(ctx context.Context, recs []record.Record) (*httpclient.Response, error) {
	if f, ok := h.format.(streamable); ok {
		return h.postStream(ctx, f, recs)
	}
	bp := h.getBuf()
	*bp = h.format.encode((*bp)[:0], recs)
	body := bp
	if h.gzip {
		body = h.compress(*bp)
		h.putBuf(bp)
	}
	pb := httpclient.NewBody(*body, func() { h.bufs.Put(body) })
	defer pb.Release()
	return h.client.Post(ctx, h.url, pb, h.format.contentType(), h.gzip, h.okLimit())
}

// okLimit is how much of a 2xx answer's body the sink reads.
func (h *Sink) okLimit() int64 {
	if _, ok := h.format.(esFormat); ok {
		// A bulk response we cannot read whole leaves which items were
		// indexed unknown: Do fails and all are resent (create
		// deduplicates).
		return bulkBodyLimit
	}
	return 0
}

// postStream is post for a streamed body (stream.go).
func (h *Sink) postStream(ctx context.Context, f streamable, recs []record.Record) (*httpclient.Response, error) {
	sb := &streamBody{h: h, f: f, recs: recs, gz: h.gzip}
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, h.url, sb.reader())
	if err != nil {
		return nil, &sinks.SendError{Kind: sinks.KindNetwork, Err: fmt.Errorf("build request: %w", err)}
	}
	req.ContentLength = -1 // chunked
	req.GetBody = func() (io.ReadCloser, error) { return sb.reader(), nil }
	req.Header.Set("Content-Type", f.contentType())
	if h.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := h.client.Do(ctx, req, h.okLimit())
	h.client.CountSent(sb.finish())
	return resp, err
}

func (h *Sink) getBuf() *[]byte {
	if b, ok := h.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

func (h *Sink) putBuf(b *[]byte) { h.bufs.Put(b) }

// gzipLevel is the gzip level of request bodies. Level 3 doubles the
// throughput of the default (6) for about 3% more bytes on ndjson
// (BenchmarkHTTPNDJSON/gzip: 180-200 -> 360-415 MB/s of lines, 14.0 ->
// 14.4-14.6 wire bytes a line); level 1 adds little speed for 8% more.
const gzipLevel = 3

// compress gzips src into a pooled buffer.
func (h *Sink) compress(src []byte) *[]byte {
	out := h.getBuf()
	w := bytes.NewBuffer((*out)[:0])
	zw, ok := h.gzips.Get().(*gzip.Writer)
	if !ok {
		zw, _ = gzip.NewWriterLevel(w, gzipLevel) // a valid level cannot fail
	} else {
		zw.Reset(w)
	}
	// Writes to a bytes.Buffer cannot fail.
	_, _ = zw.Write(src)
	_ = zw.Close()
	h.gzips.Put(zw)
	*out = w.Bytes()
	return out
}
