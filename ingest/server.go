package ingest

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skiff-dev/skiff/internal/secret"
)

// Server timeouts. A request's body must arrive within readTimeout; the
// graceful stop waits for the requests in flight for up to MaxWait plus
// shutdownSlack (they wait for the buffer at most MaxWait).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	idleTimeout       = 2 * time.Minute
	shutdownSlack     = 5 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Server is the ingest HTTP server: it accepts records that applications
// POST (OTLP/HTTP logs, JSON, text lines) and acknowledges a request only
// once all of its records are in the buffer. Create it with Listen and run
// it with Run; Status, WaitQuiet and Addr are safe to call concurrently.
type Server struct {
	o     Options
	app   Appender
	ln    net.Listener
	srv   *http.Server
	m     *metrics
	log   *slog.Logger
	token *secret.File    // nil: no authentication
	cert  *secret.KeyPair // nil: plain HTTP
	slots chan struct{}   // one token per request allowed to read and append

	// nextSource numbers requests: Record.Source of their records. It
	// starts at a random point so that numbers from different runs (with
	// the same instance ID) do not meet.
	nextSource atomic.Uint64

	inFlight   atomic.Int64
	lastActive atomic.Int64 // Unix nanoseconds of the last request's start or end
	requests   atomic.Int64 // answered
	accepted   atomic.Int64 // answered 200
	records    atomic.Int64
	refused    atomic.Int64
}

// Listen binds o.Addr and loads the token and certificate files, so that a
// taken port or a missing file fails startup. It starts no goroutine; Run
// serves.
func Listen(o Options, app Appender) (*Server, error) {
	o = o.withDefaults()
	s := &Server{o: o, app: app, m: newMetrics(o.Registerer), log: o.Logger, slots: make(chan struct{}, o.Concurrency)}
	s.nextSource.Store(rand.Uint64())
	if o.TokenFile != "" {
		f, err := secret.Open(o.TokenFile, func(v string) { o.Secrets.Add(v) })
		if err != nil {
			return nil, fmt.Errorf("ingest token: %w", err)
		}
		if v, _ := f.Value(); v == "" {
			return nil, fmt.Errorf("ingest token: %s is empty", o.TokenFile)
		}
		s.token = f
	}
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		kp, err := secret.OpenKeyPair(o.TLSCertFile, o.TLSKeyFile, func(v string) { o.Secrets.Add(v) })
		if err != nil {
			return nil, fmt.Errorf("ingest TLS: %w", err)
		}
		s.cert = kp
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	if s.cert != nil {
		s.srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Certificate() },
		}
	}
	return s, nil
}

// Addr is the address bound (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is done, then stops gracefully: it stops accepting
// connections, lets the requests in flight finish (each is answered: its
// records are appended or it is refused), and returns. Requests still
// running after MaxWait plus a few seconds have their connections closed
// unanswered; their clients retry. Run must be called once.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if s.cert != nil {
			errc <- s.srv.ServeTLS(s.ln, "", "")
		} else {
			errc <- s.srv.Serve(s.ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve ingest: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.o.MaxWait+shutdownSlack)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		s.log.Warn("ingest requests still running at shutdown: connections closed", "err", err)
		_ = s.srv.Close() // the error said why already
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve ingest: %w", serr)
	}
	return nil
}

// WaitQuiet returns once no request has been in flight for quiet, or with
// ctx's error. cmd/skiff calls it at shutdown, so that an application that
// flushes its last logs as it stops is still heard.
func (s *Server) WaitQuiet(ctx context.Context, quiet time.Duration) error {
	for {
		idle := time.Since(time.Unix(0, s.lastActive.Load()))
		if s.inFlight.Load() == 0 && idle >= quiet {
			return nil
		}
		wait := 50 * time.Millisecond
		if s.inFlight.Load() == 0 {
			wait = min(wait, quiet-idle)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Status is what /status shows of the ingest source.
type Status struct {
	Addr        string    `json:"addr"`
	TLS         bool      `json:"tls"`
	Auth        string    `json:"auth"` // none or bearer
	Requests    int64     `json:"requests"`
	Accepted    int64     `json:"accepted"`
	Refused     int64     `json:"refused"`
	Records     int64     `json:"records"`
	InFlight    int64     `json:"in_flight"`
	LastRequest time.Time `json:"last_request,omitzero"`
}

// Status returns a snapshot of the server's counters.
func (s *Server) Status() Status {
	st := Status{Addr: s.Addr().String(), TLS: s.cert != nil, Auth: "none",
		Requests: s.requests.Load(), Accepted: s.accepted.Load(), Refused: s.refused.Load(), Records: s.records.Load(), InFlight: s.inFlight.Load()}
	if s.token != nil {
		st.Auth = "bearer"
	}
	if st.Requests > 0 {
		st.LastRequest = time.Unix(0, s.lastActive.Load()).UTC()
	}
	return st
}

// gzipReaders are reused: a gzip.Reader holds about 40 KiB.
var gzipReaders sync.Pool

func getGzip() *gzip.Reader {
	if zr, ok := gzipReaders.Get().(*gzip.Reader); ok {
		return zr
	}
	return nil
}
