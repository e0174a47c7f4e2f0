package httpclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/skiff-dev/skiff/internal/secret"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/redact"
	"github.com/skiff-dev/skiff/sinks"
	"github.com/skiff-dev/skiff/sinks/internal/loglimit"
)

const (
	// ErrBodyLimit is how much of a non-2xx response body Do keeps, for
	// the error message and the dead-letter reason.
	ErrBodyLimit = 512
	// drainLimit is how much more of a response body is read (and
	// discarded) so that the connection can be reused.
	drainLimit = 256 << 10
	// defaultTimeout applies when Options.Timeout is not positive.
	defaultTimeout = 10 * time.Second
)

// Options configure a Client. They mirror an HTTP-based sink's
// SKIFF_<SINK>_* variables (see config.HTTP and docs/HTTP.md).
type Options struct {
	// Name is the sink's name: the sink label of the metrics.
	Name string

	// Auth is "none" (or empty), "basic" (Username with Password, or
	// PasswordFile) or "bearer" (Token, or TokenFile). A file is read when
	// the Client is built and re-read whenever it changes.
	Auth                             string
	Username, Password, PasswordFile string
	Token, TokenFile                 string

	// Headers are "Name=value" pairs (config.ParseHeader). A value
	// "@/path" is read from that file, and re-read whenever it changes.
	Headers []string

	// CAFile replaces the system's CAs; CertFile and KeyFile are a client
	// certificate, reloaded when the files change (until the new pair
	// matches, the old one stays in use). InsecureSkipVerify turns
	// verification off and is logged as a warning.
	CAFile, CertFile, KeyFile string
	InsecureSkipVerify        bool

	// Timeout bounds one request, reading its response included; 0 means
	// 10s.
	Timeout time.Duration
	// Concurrency is the number of requests the sink has in flight; the
	// client keeps twice as many idle connections.
	Concurrency int
	// RetryableStatus are the statuses Classify retries besides every 5xx.
	RetryableStatus []int
	// ListedOnly makes RetryableStatus the only statuses retried: a 5xx
	// not in it is refused like a 4xx. OTLP/HTTP retries exactly 429, 502,
	// 503 and 504 and forbids retrying any other 4xx or 5xx.
	ListedOnly bool

	// Registerer receives the request metrics (nil: none); Logger gets the
	// TLS warning and the failures to re-read a secret file (nil: none).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Secrets learns each value read from a secret file, so that a rotated
	// token is masked in what skiff prints (nil: none).
	Secrets *redact.Secrets
}

// FromConfig returns the Options of a sink named name from its shared
// client settings and its RETRYABLE_STATUS.
func FromConfig(name string, c *config.HTTPClient, retryable []int, reg prometheus.Registerer, log *slog.Logger) Options {
	return Options{
		Name: name,
		Auth: c.Auth, Username: c.Username, Password: c.Password, PasswordFile: c.PasswordFile,
		Token: c.Token, TokenFile: c.TokenFile,
		Headers: c.Headers,
		CAFile:  c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, InsecureSkipVerify: c.InsecureSkipVerify,
		Timeout: c.Timeout, Concurrency: c.Concurrency, RetryableStatus: retryable,
		Registerer: reg, Logger: log,
	}
}

// LoopOptions sets the delivery-loop options that the shared settings c
// decide (batch size, linger, concurrency, backoff, circuit breaker) and
// leaves the others (Name, StallTimeout, Registerer, Logger) alone.
func LoopOptions(c *config.HTTPClient, o *sinks.LoopOptions) {
	o.MaxRecords, o.MaxBytes, o.Linger = c.BatchMaxRecords, int(c.BatchMaxBytes), c.Linger
	o.Concurrency, o.BackoffMin, o.BackoffMax, o.BackoffFirstMinuteMax = c.Concurrency, c.BackoffMin, c.BackoffMax, c.BackoffFirstMinuteMax
	o.RetryAfterMax, o.BreakerFailures = c.RetryAfterMax, c.BreakerFailures
	if c.BreakerFailures == 0 {
		o.BreakerFailures = -1 // 0 disables it in our configuration
	}
}

// Client sends the requests of one HTTP-based sink: it adds the configured
// headers and credentials, applies the timeout, the TLS settings and the
// proxy from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), does not
// follow redirects, counts the requests, and reads the response. Classify
// then says what an answer means for delivery. It is safe for concurrent
// use.
type Client struct {
	timeout    time.Duration
	listedOnly bool
	client     *nethttp.Client
	retryable  [600]bool
	headers    []header
	auth       func(*nethttp.Request)
	log        *slog.Logger
	m          metrics

	mu     sync.Mutex
	logLim loglimit.Limiter // secret re-read failures; guarded by mu
}

type header struct {
	name, value string
	file        *secret.File // when the value comes from a file
}

type metrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
	sent     prometheus.Counter
}

// New returns a Client configured by o. It reads the secret files and the
// TLS material once, failing if they cannot be read, registers the
// metrics, and starts nothing: connections open with the first request.
// Errors do not name the sink; the caller adds it.
func New(o Options) (*Client, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		timeout:    o.Timeout,
		listedOnly: o.ListedOnly,
		log:        log,
		logLim:     loglimit.Limiter{Every: loglimit.Every},
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	for s := 500; s < 600 && !o.ListedOnly; s++ {
		c.retryable[s] = true
	}
	for _, s := range o.RetryableStatus {
		if s >= 100 && s < 600 {
			c.retryable[s] = true
		}
	}
	for _, hd := range o.Headers {
		n, v, err := config.ParseHeader(hd)
		if err != nil {
			name, _, _ := strings.Cut(hd, "=") // the value may be a secret
			return nil, fmt.Errorf("header %s: %w", strings.TrimSpace(name), err)
		}
		hh := header{name: n, value: v}
		if file, ok := strings.CutPrefix(v, "@"); ok {
			if hh.file, err = secret.Open(file, func(v string) { o.Secrets.Add(v) }); err != nil {
				return nil, fmt.Errorf("header %s: %w", n, err)
			}
		}
		c.headers = append(c.headers, hh)
	}
	var err error
	if c.auth, err = c.newAuth(&o); err != nil {
		return nil, err
	}
	tlsConf, err := newTLSConfig(&o)
	if err != nil {
		return nil, err
	}
	if o.InsecureSkipVerify {
		c.log.Warn("TLS certificate verification is OFF (INSECURE_SKIP_VERIFY): anyone on the path can read and alter the logs; use CA_FILE instead")
	}
	conns := max(o.Concurrency, 1) * 2
	c.client = &nethttp.Client{
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
	cl := prometheus.Labels{"sink": o.Name}
	c.m = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skiff_sink_http_requests_total", ConstLabels: cl,
			Help: "HTTP requests by status code (\"error\" when no response came)."}, []string{"code"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skiff_sink_http_request_duration_seconds", ConstLabels: cl,
			Help: "Time from sending a request to reading its response.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_sink_http_request_bytes_total", ConstLabels: cl,
			Help: "Request body bytes sent, after compression."}),
	}
	if o.Registerer != nil {
		for _, m := range []prometheus.Collector{c.m.requests, c.m.duration, c.m.sent} {
			if err := o.Registerer.Register(m); err != nil {
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return c, nil
}

func (c *Client) newAuth(o *Options) (func(*nethttp.Request), error) {
	switch o.Auth {
	case "basic":
		pw := o.Password
		user := o.Username
		var file *secret.File
		if o.PasswordFile != "" {
			var err error
			if file, err = secret.Open(o.PasswordFile, func(v string) { o.Secrets.AddBasicAuth(user, v) }); err != nil {
				return nil, err
			}
		}
		return func(r *nethttp.Request) {
			p := pw
			if file != nil {
				p = c.secret(file)
			}
			r.SetBasicAuth(user, p)
		}, nil
	case "bearer":
		tok := o.Token
		var file *secret.File
		if o.TokenFile != "" {
			var err error
			if file, err = secret.Open(o.TokenFile, func(v string) { o.Secrets.Add(v) }); err != nil {
				return nil, err
			}
		}
		return func(r *nethttp.Request) {
			t := tok
			if file != nil {
				t = c.secret(file)
			}
			r.Header.Set("Authorization", "Bearer "+t)
		}, nil
	}
	return func(*nethttp.Request) {}, nil
}

// secret returns a secret file's value, logging (rate-limited) when it
// could not be re-read and the last value is used.
func (c *Client) secret(f *secret.File) string {
	v, err := f.Value()
	if err != nil {
		c.mu.Lock()
		ok, n := c.logLim.Allow(time.Now())
		c.mu.Unlock()
		if ok {
			c.log.Warn("re-read secret file", "err", err, "suppressed", n)
		}
	}
	return v
}

func newTLSConfig(o *Options) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // opt-in, warned about
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.CertFile != "" {
		kp, err := secret.OpenKeyPair(o.CertFile, o.KeyFile, func(v string) { o.Secrets.Add(v) })
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.Certificate() }
	}
	return tc, nil
}

// Response is what Do read of an answer.
type Response struct {
	Status int
	Header nethttp.Header
	// Body is the whole body of a 2xx answer up to Do's okLimit, or the
	// first ErrBodyLimit bytes of any other answer.
	Body []byte
}

// Err describes a non-2xx answer by its status alone: "http 400 Bad
// Request". What the body says is Detail: destinations echo documents in
// their error answers, and an error travels to /status and info logs.
func (r *Response) Err() error {
	return fmt.Errorf("http %d %s", r.Status, nethttp.StatusText(r.Status))
}

// Detail is the start of a non-2xx answer's body, trimmed ("" when there is
// none): log content, for a SendError's Detail and a dead-letter reason.
func (r *Response) Detail() string {
	if r.Status >= 200 && r.Status < 300 {
		return ""
	}
	return strings.TrimSpace(string(r.Body))
}

// Reason is the dead-letter reason of records r refused: its status and
// what its body says.
func (r *Response) Reason() string {
	if d := r.Detail(); d != "" {
		return r.Err().Error() + ": " + d
	}
	return r.Err().Error()
}

// Do sends req and reads its answer, all within the timeout. It sets
// User-Agent, then the configured headers (so that they override the
// caller's, Content-Type included), then the credentials; the caller sets
// the method, URL, body (with ContentLength and GetBody, so that the
// transport can replay it on a fresh connection) and Content-Type.
//
// Of a 2xx answer's body Do reads up to okLimit bytes (0 when the sink
// needs none of it); of any other answer, ErrBodyLimit bytes. When no
// answer came, or a 2xx body that was asked for could not be read whole,
// the error is a *sinks.SendError of kind KindTimeout or KindNetwork:
// which records arrived is unknown, so the caller keeps them all.
//
// Do counts the request in skiff_sink_http_requests_total by status
// ("error" without one), its ContentLength in
// skiff_sink_http_request_bytes_total, and its time in
// skiff_sink_http_request_duration_seconds.
func (c *Client) Do(ctx context.Context, req *nethttp.Request, okLimit int64) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Header.Set("User-Agent", "skiff")
	for _, hd := range c.headers {
		v := hd.value
		if hd.file != nil {
			v = c.secret(hd.file)
		}
		req.Header.Set(hd.name, v)
	}
	c.auth(req)

	start := time.Now()
	resp, err := c.client.Do(req)
	if err != nil {
		c.m.requests.WithLabelValues("error").Inc()
		return nil, classifyError(ctx, err)
	}
	defer resp.Body.Close()
	c.m.sent.Add(float64(max(req.ContentLength, 0))) // a streamed body: CountSent
	c.m.requests.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	r := &Response{Status: resp.StatusCode, Header: resp.Header}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	limit := int64(ErrBodyLimit)
	if ok {
		limit = okLimit
	}
	r.Body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit)) // for connection reuse only
	c.m.duration.Observe(time.Since(start).Seconds())
	if err != nil && ok && okLimit > 0 {
		return nil, classifyError(ctx, fmt.Errorf("read response: %w", err))
	}
	return r, nil
}

// CountSent adds n to skiff_sink_http_request_bytes_total: the bytes of a
// request whose length was not known when Do sent it (ContentLength -1,
// a streamed body), counted by the body itself.
func (c *Client) CountSent(n int64) { c.m.sent.Add(float64(n)) }

func classifyError(ctx context.Context, err error) error {
	var ne net.Error
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &sinks.SendError{Kind: sinks.KindTimeout, Err: err}
	}
	return &sinks.SendError{Kind: sinks.KindNetwork, Err: err}
}

// Classify says what answer r means for the records it answered:
//
//   - 2xx: delivered (nil, false). The caller may still look into the body
//     (an Elasticsearch bulk response, an OTLP partial success).
//   - a retryable status (Retryable): a SendError of KindServer, or
//     KindThrottled for 429 and for 503 with Retry-After, or KindTimeout
//     for 408; on 429 and 503 its RetryAfter is the header's wait.
//   - 401, 403, 404: KindAuth. The configuration is wrong, not the data:
//     the records are kept and retried, and the loop raises auth_failing.
//   - 3xx (redirects are not followed): KindAuth, naming the Location so
//     that the user can set the URL to it.
//   - 413 and any other 4xx: (nil, true). The data itself was refused;
//     the caller isolates the refused records (by halving the batch) and
//     dead-letters them, with r.Err() as the reason.
//   - with Options.ListedOnly, a 5xx not in RetryableStatus: (nil, true),
//     refused as well; the caller decides whether to isolate records.
//   - anything else (1xx, 6xx-9xx): KindServer, retried.
//
// The checks run in that order, so RETRYABLE_STATUS can make a 4xx (or a
// 3xx) retryable.
func (c *Client) Classify(r *Response) (retry *sinks.SendError, rejected bool) {
	st := r.Status
	switch {
	case st >= 200 && st < 300:
		return nil, false
	case c.Retryable(st):
		se := &sinks.SendError{Kind: sinks.KindServer, Err: r.Err(), Detail: r.Detail()}
		if st == 429 || st == 503 {
			se.RetryAfter = RetryAfter(r.Header.Get("Retry-After"), time.Now())
		}
		switch {
		case st == 429 || (st == 503 && se.RetryAfter > 0):
			se.Kind = sinks.KindThrottled
		case st == 408:
			se.Kind = sinks.KindTimeout
		}
		return se, false
	case st == 401 || st == 403 || st == 404:
		return &sinks.SendError{Kind: sinks.KindAuth, Err: r.Err(), Detail: r.Detail()}, false
	case st >= 300 && st < 400:
		return &sinks.SendError{Kind: sinks.KindAuth, Err: fmt.Errorf("%w: redirected to %q; set the URL to the final endpoint", r.Err(), redact.URL(r.Header.Get("Location"))), Detail: r.Detail()}, false
	case st >= 400 && st < 500, st >= 500 && st < 600 && c.listedOnly:
		return nil, true
	}
	return &sinks.SendError{Kind: sinks.KindServer, Err: r.Err(), Detail: r.Detail()}, false
}

// Retryable reports whether status is to be retried: any 5xx (unless
// Options.ListedOnly) or a status in RetryableStatus. Statuses outside 100-599 never are (Classify treats
// an unknown answer as a server error, and a sink can decide what an odd
// status inside a body, such as a bulk item's, means).
func (c *Client) Retryable(status int) bool {
	return status >= 0 && status < len(c.retryable) && c.retryable[status]
}

// RetryAfter parses a Retry-After value, seconds or an HTTP date, into the
// wait it asks for at now: 0 when there is none, capped at
// sinks.MaxRetryAfter.
func RetryAfter(v string, now time.Time) time.Duration {
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

// CloseIdleConnections closes the connections not in use; the sink's
// Close calls it.
func (c *Client) CloseIdleConnections() {
	c.client.CloseIdleConnections()
}
