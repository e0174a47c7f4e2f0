package http

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/loglimit"
)

const (
	// errBodyLimit is how much of an error response is kept for the
	// error message and dead-letter reason.
	errBodyLimit = 512
	// okBodyLimit bounds the response read on success (an Elasticsearch
	// bulk response has one item per record).
	okBodyLimit = 64 << 20
	// drainLimit is how much of a response body is read (and discarded)
	// so that the connection can be reused.
	drainLimit = 256 << 10
)

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
//   - other 4xx: the data is rejected. The batch is split in halves down
//     to the rejected records, which are dead-lettered; the rest is
//     delivered.
//   - timeouts and connection errors: KindTimeout, KindNetwork.
//
// On error Send shrinks b.Records to the records still undelivered.
// Sink is safe for concurrent use.
type Sink struct {
	name      string
	cfg       config.HTTP
	url       string
	timeout   time.Duration
	client    *nethttp.Client
	format    bodyFormat
	gzip      bool
	retryable [600]bool
	headers   []header
	auth      func(*nethttp.Request) error
	dl        sinks.DeadLetters
	log       *slog.Logger
	m         metrics

	bufs  sync.Pool // *[]byte request bodies
	gzips sync.Pool // *gzip.Writer

	mu     sync.Mutex
	logLim loglimit.Limiter // secret re-read failures
}

var _ sinks.Sink = (*Sink)(nil)

type header struct {
	name, value string
	file        *secretFile // when the value comes from a file
}

type metrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
	sent     prometheus.Counter
	rejected prometheus.Counter
}

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
		name:    name,
		cfg:     cfg,
		timeout: cfg.Timeout,
		gzip:    cfg.Compression == "gzip",
		dl:      d.DeadLetters,
		log:     d.Logger.With("sink", name),
		logLim:  loglimit.Limiter{Every: loglimit.Every},
	}
	if h.timeout <= 0 {
		h.timeout = 10 * time.Second
	}
	u, err := endpoint(cfg.URL, cfg.Format)
	if err != nil {
		return nil, err
	}
	h.url = u
	if h.format, err = newBodyFormat(&cfg, d.Encoder); err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	for s := 500; s < 600; s++ {
		h.retryable[s] = true
	}
	for _, s := range cfg.RetryableStatus {
		if s >= 100 && s < 600 {
			h.retryable[s] = true
		}
	}
	for _, hd := range cfg.Headers {
		n, v, err := config.ParseHeader(hd)
		if err != nil {
			return nil, fmt.Errorf("http sink %s: header %q: %w", name, hd, err)
		}
		hh := header{name: n, value: v}
		if file, ok := strings.CutPrefix(v, "@"); ok {
			if hh.file, err = newSecretFile(file); err != nil {
				return nil, fmt.Errorf("http sink %s: header %s: %w", name, n, err)
			}
		}
		h.headers = append(h.headers, hh)
	}
	if h.auth, err = newAuth(&cfg, h); err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	tlsConf, err := newTLSConfig(&cfg)
	if err != nil {
		return nil, fmt.Errorf("http sink %s: %w", name, err)
	}
	if cfg.InsecureSkipVerify {
		h.log.Warn("TLS certificate verification is OFF (INSECURE_SKIP_VERIFY): anyone on the path can read and alter the logs; use CA_FILE instead")
	}
	conns := max(cfg.Concurrency, 1) * 2
	h.client = &nethttp.Client{
		Transport: &nethttp.Transport{
			Proxy:                 nethttp.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsConf,
			TLSHandshakeTimeout:   10 * time.Second,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          conns,
			MaxIdleConnsPerHost:   conns,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		// A redirect means the URL is wrong; say so rather than follow it
		// (a POST body would have to be replayed).
		CheckRedirect: func(*nethttp.Request, []*nethttp.Request) error { return nethttp.ErrUseLastResponse },
	}
	cl := prometheus.Labels{"sink": name}
	h.m = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skiff_sink_http_requests_total", ConstLabels: cl,
			Help: "Sink requests by status code (\"error\" when no response came)."}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skiff_sink_http_request_duration_seconds", ConstLabels: cl,
			Help: "Time from sending a request to reading its response.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_sink_http_request_bytes_total", ConstLabels: cl,
			Help: "Request body bytes sent, after compression."}),
		rejected: sinks.NewDroppedCounter(name, "rejected"),
	}
	if d.Registerer != nil {
		for _, c := range []prometheus.Collector{h.m.requests, h.m.duration, h.m.sent, h.m.rejected} {
			if err := d.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("http sink %s: register metrics: %w", name, err)
			}
		}
	}
	return h, nil
}

// LoopOptions sets the delivery-loop options that h's configuration
// decides (batch size, linger, concurrency, backoff, circuit breaker) and
// leaves the others (Name, StallTimeout, Registerer, Logger) alone.
func (h *Sink) LoopOptions(o *sinks.LoopOptions) {
	c := h.cfg
	o.MaxRecords, o.MaxBytes, o.Linger = c.BatchMaxRecords, int(c.BatchMaxBytes), c.Linger
	o.Concurrency, o.BackoffMin, o.BackoffMax = c.Concurrency, c.BackoffMin, c.BackoffMax
	o.BreakerFailures, o.BreakerCooldown = c.BreakerFailures, c.BreakerCooldown
	if c.BreakerFailures == 0 {
		o.BreakerFailures = -1 // 0 disables it in our configuration
	}
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

func newAuth(cfg *config.HTTP, h *Sink) (func(*nethttp.Request) error, error) {
	switch cfg.Auth {
	case "basic":
		pw := cfg.Password
		var file *secretFile
		if cfg.PasswordFile != "" {
			var err error
			if file, err = newSecretFile(cfg.PasswordFile); err != nil {
				return nil, err
			}
		}
		user := cfg.Username
		return func(r *nethttp.Request) error {
			p := pw
			if file != nil {
				p = h.secret(file)
			}
			r.SetBasicAuth(user, p)
			return nil
		}, nil
	case "bearer":
		tok := cfg.Token
		var file *secretFile
		if cfg.TokenFile != "" {
			var err error
			if file, err = newSecretFile(cfg.TokenFile); err != nil {
				return nil, err
			}
		}
		return func(r *nethttp.Request) error {
			t := tok
			if file != nil {
				t = h.secret(file)
			}
			r.Header.Set("Authorization", "Bearer "+t)
			return nil
		}, nil
	}
	return func(*nethttp.Request) error { return nil }, nil
}

// secret returns a secret file's value, logging (rate-limited) when it
// could not be re-read and the last value is used.
func (h *Sink) secret(f *secretFile) string {
	v, err := f.get()
	if err != nil {
		h.mu.Lock()
		ok, n := h.logLim.Allow(time.Now())
		h.mu.Unlock()
		if ok {
			h.log.Warn("re-read secret file", "err", err, "suppressed", n)
		}
	}
	return v
}

func newTLSConfig(cfg *config.HTTP) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, warned about
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		kp, err := newKeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return tc, nil
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
	st := resp.status
	switch {
	case st >= 200 && st < 300:
		if _, ok := h.format.(esFormat); ok {
			return h.bulkItems(resp.body, recs)
		}
		return nil, nil
	case h.isRetryable(st):
		se := &sinks.SendError{Kind: sinks.KindServer, Err: resp.err()}
		if st == 429 || st == 503 {
			se.RetryAfter = retryAfter(resp.header.Get("Retry-After"), time.Now())
		}
		switch {
		case st == 429 || (st == 503 && se.RetryAfter > 0):
			se.Kind = sinks.KindThrottled
		case st == 408:
			se.Kind = sinks.KindTimeout
		}
		return recs, se
	case st == 401 || st == 403 || st == 404:
		return recs, &sinks.SendError{Kind: sinks.KindAuth, Err: resp.err()}
	case st >= 300 && st < 400:
		return recs, &sinks.SendError{Kind: sinks.KindAuth, Err: fmt.Errorf("%w: redirected to %q; set the URL to the final endpoint", resp.err(), resp.header.Get("Location"))}
	case st == 413 || (st >= 400 && st < 500):
		return h.split(ctx, recs, resp.err().Error())
	}
	return recs, &sinks.SendError{Kind: sinks.KindServer, Err: resp.err()}
}

// isRetryable reports whether status is to be retried: any 5xx or a
// status in RETRYABLE_STATUS. Statuses outside 100-599 never are (an
// unknown 6xx-9xx answer falls through to a server error).
func (h *Sink) isRetryable(status int) bool {
	return status >= 0 && status < len(h.retryable) && h.retryable[status]
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
		return nil, nil
	}
	if len(r.Items) != len(recs) {
		return recs, &sinks.SendError{Kind: sinks.KindServer, Err: fmt.Errorf("bulk response has %d items for %d records", len(r.Items), len(recs))}
	}
	var retry []record.Record
	var retryErr string
	throttled := true
	rejected := map[string][]record.Record{}
	var reasons []string
	for i, item := range r.Items {
		var it esBulkItem
		for _, v := range item { // one key: the action
			it = v
		}
		switch st := it.Status; {
		case st >= 200 && st < 300, st == 409: // 409: created by an earlier attempt
		case st < 100 || st > 599 || h.isRetryable(st): // no (valid) status: outcome unknown
			retry = append(retry, recs[i])
			throttled = throttled && st == 429
			if retryErr == "" {
				retryErr = fmt.Sprintf("%d %s: %s", st, it.Error.Type, it.Error.Reason)
			}
		default:
			reason := fmt.Sprintf("elasticsearch %d %s: %s", st, it.Error.Type, it.Error.Reason)
			if _, ok := rejected[reason]; !ok {
				reasons = append(reasons, reason)
			}
			rejected[reason] = append(rejected[reason], recs[i])
		}
	}
	for _, reason := range reasons {
		if err := h.deadLetter(reason, rejected[reason]); err != nil {
			// Keep the rejected ones too: nothing may be lost silently.
			return append(retry, rejected[reason]...), err
		}
	}
	if len(retry) == 0 {
		return nil, nil
	}
	kind := sinks.KindServer
	if throttled {
		kind = sinks.KindThrottled
	}
	return retry, &sinks.SendError{Kind: kind, Err: fmt.Errorf("bulk: %d of %d items failed, e.g. %s", len(retry), len(recs), retryErr)}
}

// deadLetter hands rejected records to the dead letters, or drops them
// (counted) when there are none.
func (h *Sink) deadLetter(reason string, recs []record.Record) error {
	if h.dl == nil {
		h.m.rejected.Add(float64(len(recs)))
		h.log.Error("records rejected by the destination dropped (no dead-letter store)", "reason", reason, "records", len(recs))
		return nil
	}
	if err := h.dl.Write(h.name, reason, recs); err != nil {
		return &sinks.SendError{Kind: sinks.KindRejected, Err: fmt.Errorf("dead-letter rejected records (%s): %w", reason, err)}
	}
	return nil
}

// response is what send needs of a response.
type response struct {
	status int
	header nethttp.Header
	body   []byte // whole on success, the first errBodyLimit bytes otherwise
}

func (r *response) err() error {
	msg := strings.TrimSpace(string(r.body))
	if msg == "" {
		return fmt.Errorf("http %d %s", r.status, nethttp.StatusText(r.status))
	}
	return fmt.Errorf("http %d: %s", r.status, msg)
}

// post sends one request holding recs and reads its response.
func (h *Sink) post(ctx context.Context, recs []record.Record) (*response, error) {
	bp := h.getBuf()
	*bp = h.format.encode((*bp)[:0], recs)
	body := bp
	if h.gzip {
		body = h.compress(*bp)
		h.putBuf(bp)
	}
	pb := &pooledBody{buf: body, pool: &h.bufs}
	defer pb.release()

	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, h.url, pb.reader())
	if err != nil {
		return nil, &sinks.SendError{Kind: sinks.KindNetwork, Err: fmt.Errorf("build request: %w", err)}
	}
	req.ContentLength = int64(len(*body))
	req.GetBody = func() (io.ReadCloser, error) { return pb.reader(), nil }
	req.Header.Set("Content-Type", h.format.contentType())
	req.Header.Set("User-Agent", "skiff")
	if h.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for _, hd := range h.headers {
		v := hd.value
		if hd.file != nil {
			v = h.secret(hd.file)
		}
		req.Header.Set(hd.name, v)
	}
	if err := h.auth(req); err != nil {
		return nil, &sinks.SendError{Kind: sinks.KindAuth, Err: err}
	}

	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		h.m.requests.WithLabelValues("error").Inc()
		return nil, classifyError(ctx, err)
	}
	defer resp.Body.Close()
	h.m.sent.Add(float64(len(*body)))
	h.m.requests.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	r := &response{status: resp.StatusCode, header: resp.Header}
	limit := int64(errBodyLimit)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if _, ok := h.format.(esFormat); ok {
			limit = okBodyLimit
		} else {
			limit = 0
		}
	}
	r.body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit)) // for connection reuse only
	h.m.duration.Observe(time.Since(start).Seconds())
	if err != nil && limit == okBodyLimit {
		// A bulk response we could not read: which items were indexed is
		// unknown, so resend them all (create deduplicates).
		return nil, classifyError(ctx, fmt.Errorf("read bulk response: %w", err))
	}
	return r, nil
}

func classifyError(ctx context.Context, err error) error {
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &sinks.SendError{Kind: sinks.KindTimeout, Err: err}
	}
	return &sinks.SendError{Kind: sinks.KindNetwork, Err: err}
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(sinks.MaxRetryAfter/time.Second))) * time.Second
	}
	if t, err := nethttp.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
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

// pooledBody shares one pooled request buffer between the readers the
// transport asks for (the request body, and GetBody on a retried
// connection) and returns it to the pool only once Send is done with it
// and every reader was closed: the transport may still be writing the body
// after Do returns.
type pooledBody struct {
	buf  *[]byte
	pool *sync.Pool

	mu       sync.Mutex
	open     int
	released bool
}

func (p *pooledBody) reader() io.ReadCloser {
	p.mu.Lock()
	p.open++
	p.mu.Unlock()
	return &bodyReader{Reader: bytes.NewReader(*p.buf), p: p}
}

func (p *pooledBody) release() {
	p.mu.Lock()
	p.released = true
	p.maybePut()
	p.mu.Unlock()
}

// maybePut returns the buffer once nothing uses it. Callers hold mu.
func (p *pooledBody) maybePut() {
	if p.released && p.open == 0 && p.buf != nil {
		p.pool.Put(p.buf)
		p.buf = nil
	}
}

type bodyReader struct {
	*bytes.Reader
	p    *pooledBody
	once sync.Once
}

func (b *bodyReader) Close() error {
	b.once.Do(func() {
		b.p.mu.Lock()
		b.p.open--
		b.p.maybePut()
		b.p.mu.Unlock()
	})
	return nil
}
