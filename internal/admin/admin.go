// Package admin serves skiff's operational endpoints: /metrics
// (Prometheus), /healthz (liveness), /readyz (readiness of skiff itself) and
// /status (sink health as JSON, for humans and dashboards, used by no probe).
//
// Readiness deliberately ignores the sinks: a sidecar's readiness counts
// toward its pod's, and a log backend outage must not take the application
// out of its Service. Sink trouble shows in metrics and /status instead.
//
// The server binds all interfaces by default, so that Prometheus can scrape
// it from outside the pod, and so serves nothing that shows log content,
// secrets or configuration to the network: /metrics carries counts, and
// the probes answer "ok" or "not ok" to anyone. What explains a failure
// (the probes' errors, and /status, which holds the paths, the sinks' last
// errors and the ingest address) goes only to connections made to a
// loopback address, that is from inside the pod (`skiff status`), unless
// Checks.StatusPublic says otherwise.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Checks are the functions the endpoints call, and who may see what they
// say. A nil function always passes.
type Checks struct {
	// Live reports whether the process is wedged (a loop that should tick
	// has not).
	Live func() error
	// Ready reports whether skiff itself can do its job: configuration
	// loaded, data dir writable, buffer open, tailer running.
	Ready func() error
	// Status returns a JSON-encodable snapshot of sink health.
	Status func() any
	// StatusPublic serves /status and the probes' errors to every client,
	// not only to connections made to a loopback address.
	StatusPublic bool
}

// Limits of the server: a scraper or a probe needs a few hundred bytes of
// headers and answers within seconds; a client that holds a connection
// open longer only holds a goroutine and a file descriptor.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second // a large /metrics on a slow link
	idleTimeout       = time.Minute
	maxHeaderBytes    = 16 << 10
)

// Server is the admin HTTP server. It serves nothing that could leak log
// data: only metrics, health and status.
type Server struct {
	ln     net.Listener
	srv    *http.Server
	logger *slog.Logger
}

// Listen binds addr so that a taken port fails startup, before any file is
// read. It starts no goroutine; Run serves.
func Listen(addr string, gatherer prometheus.Gatherer, c Checks, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", probe(c.Live, c.StatusPublic))
	mux.HandleFunc("GET /readyz", probe(c.Ready, c.StatusPublic))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !c.StatusPublic && !Loopback(r) {
			http.Error(w, "/status is served only to connections to a loopback address: run `skiff status` inside the pod, or set SKIFF_STATUS_PUBLIC=true", http.StatusForbidden)
			return
		}
		var v any = struct{}{}
		if c.Status != nil {
			v = c.Status()
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v) // the client went away; nothing to do
	})
	return &Server{
		ln:     ln,
		logger: logger,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		},
	}, nil
}

// Loopback reports whether r came over a connection made to a loopback
// address (127.0.0.0/8, ::1): from inside the pod's network namespace. It
// looks at the address the client connected to, not the client's, so that
// a proxy in the pod that forwards outside traffic to the pod's IP (as
// Istio does since 1.10) does not pass for local; a listener bound to
// 127.0.0.1 would be reached the same way.
func Loopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the address actually bound (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is done, then shuts down within a second.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve admin: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shut down admin: %w", err)
	}
	return nil
}

// probe answers ok or not ok; why not only to whom may see /status.
func probe(check func() error, public bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if check != nil {
			if err := check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				if public || Loopback(r) {
					fmt.Fprintf(w, "not ok: %v\n", err)
				} else {
					fmt.Fprintln(w, "not ok (details: skiff status)")
				}
				return
			}
		}
		fmt.Fprintln(w, "ok")
	}
}
