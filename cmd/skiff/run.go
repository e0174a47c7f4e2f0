package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/ingest"
	"github.com/skiff-dev/skiff/internal/admin"
	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/filter"
	"github.com/skiff-dev/skiff/internal/fsutil"
	"github.com/skiff-dev/skiff/internal/logging"
	"github.com/skiff-dev/skiff/internal/procs"
	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/internal/redact"
	"github.com/skiff-dev/skiff/sinks"
	httpsink "github.com/skiff-dev/skiff/sinks/http"
	kafkasink "github.com/skiff-dev/skiff/sinks/kafka"
	otlpsink "github.com/skiff-dev/skiff/sinks/otlp"
	stdoutsink "github.com/skiff-dev/skiff/sinks/stdout"
	"github.com/skiff-dev/skiff/tailer"
)

// runAgent wires the parts together and runs them until a signal.
//
// Shutdown order (docs/ARCHITECTURE.md): on the first SIGTERM/SIGINT the
// sources keep taking records until every file and the ingest endpoints
// have been quiet for SKIFF_SHUTDOWN_QUIET; then the ingest server stops
// accepting connections and finishes the requests in flight, and the
// tailer stops (it syncs the buffer and writes its checkpoints on the way
// out); the sinks drain what is buffered until they catch up or
// SKIFF_SHUTDOWN_TIMEOUT runs out, committing their cursors as they go;
// then the buffer closes. A second signal cuts this short: every part stops
// at once, still persisting what it has.
func runAgent(stdout, stderr io.Writer) int {
	cfg, ok := loadConfig(stderr)
	if !ok {
		return exitConfig
	}
	// Every line skiff logs, whoever logs it, has the configuration's
	// secrets and the secrets in any URL masked (an error from net/http
	// carries the request's URL, query token included).
	secrets := config.Secrets(cfg)
	logger := logging.New(stderr, cfg.LogLevel, 30*time.Second)
	logger = slog.New(redact.Handler(logger.Handler(), secrets))
	procsCtx, stopProcs := context.WithCancel(context.Background())
	procsDone := governProcs(procsCtx, logger)
	defer func() { stopProcs(); <-procsDone }()
	a, err := newAgent(cfg, stdout, logger, secrets)
	if err != nil {
		logger.Error("start", "err", err)
		var ve *buffer.VersionError
		if errors.As(err, &ve) {
			return exitConfig
		}
		return exitFail
	}
	if err := a.run(); err != nil {
		logger.Error("run", "err", err)
		return exitFail
	}
	return exitOK
}

// governProcs runs Go code on one thread at a time (GOMAXPROCS=1) and
// on the runtime's default number (at most procs.MaxBusy) while skiff
// keeps a core busy (internal/procs), unless the environment sets GOMAXPROCS. The returned
// channel is closed once the governor has stopped, after ctx is done.
func governProcs(ctx context.Context, logger *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		close(done)
		return done
	}
	busy := min(runtime.GOMAXPROCS(1), procs.MaxBusy)
	logger.Debug("GOMAXPROCS set to 1 until skiff keeps a core busy (the environment does not set it)", "busy", busy)
	g := procs.New(procs.Options{Max: busy}, logger)
	go func() {
		defer close(done)
		g.Run(ctx)
	}()
	return done
}

type agent struct {
	cfg     *config.Config
	logger  *slog.Logger
	secrets *redact.Secrets // masked in /status (the logger masks them itself)
	reg     *prometheus.Registry
	log     *buffer.Log
	filter  *filter.Filter // nil without SKIFF_DROP, SKIFF_KEEP, SKIFF_REDACT or SKIFF_REDACT_CUSTOM
	tail    *tailer.Tailer // nil without SKIFF_PATHS
	ingest  *ingest.Server // nil without SKIFF_INGEST_ADDR
	loops   []*sinks.Loop[buffer.Pos]
	outs    []sinks.Sink
	admin   *admin.Server
}

func newAgent(cfg *config.Config, stdout io.Writer, logger *slog.Logger, secrets *redact.Secrets) (a *agent, err error) {
	a = &agent{cfg: cfg, logger: logger, secrets: secrets, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// A sidecar's memory limit is its container's: let the GC aim below it
	// instead of growing until the OOM killer decides.
	if limit, err := memlimit.Set(memlimit.WithRatio(0.9), memlimit.WithProvider(memlimit.FromCgroup), memlimit.WithLogger(logger)); err == nil && limit > 0 {
		logger.Debug("memory limit from cgroup", "bytes", limit)
	}

	// Earlier versions created the data dir 0755 and its files 0644; in an
	// emptyDir (0777) any UID in the pod could read the buffered lines.
	if n, err := fsutil.Tighten(cfg.DataDir); err != nil {
		logger.Warn("cannot make every file of the data dir private to skiff's user", "dir", cfg.DataDir, "changed", n, "err", err)
	} else if n > 0 {
		logger.Info("made the data dir private to skiff's user (0700 directories, 0600 files)", "dir", cfg.DataDir, "changed", n)
	}

	instance, err := instanceKey(cfg.PodUID, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	enc := record.NewEncoder(instance, record.Kubernetes{Pod: cfg.Pod, Namespace: cfg.Namespace, PodUID: cfg.PodUID, Node: cfg.Node}, cfg.Fields)

	names := make([]string, len(cfg.SinkList))
	for i, s := range cfg.SinkList {
		names[i] = s.Name
	}
	a.log, err = buffer.Open(buffer.Options{
		Dir:           filepath.Join(cfg.DataDir, "buffer"),
		MaxBytes:      int64(cfg.BufferMaxBytes),
		SegmentBytes:  int64(cfg.BufferSegmentBytes),
		Fsync:         cfg.BufferFsync,
		FsyncInterval: cfg.BufferFsyncInterval,
		WhenFull:      cfg.BufferWhenFull,
		Cursors:       names,
		Registerer:    a.reg,
		Logger:        logger.With("part", "buffer"),
	})
	if err != nil {
		return nil, fmt.Errorf("open buffer: %w", err)
	}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()

	dl := sinks.NewDeadLetter(sinks.DeadLetterOptions{
		Dir:        filepath.Join(cfg.DataDir, "deadletter"),
		MaxBytes:   int64(cfg.DeadLetterMaxBytes),
		Encoder:    enc,
		Registerer: a.reg,
		Logger:     logger.With("part", "deadletter"),
	})
	for _, s := range cfg.SinkList {
		d := sinks.Deps{Encoder: enc, DeadLetters: dl, Registerer: a.reg, Logger: logger.With("sink", s.Name), Secrets: secrets}
		var out sinks.Sink
		// The loop adds the sink label to its own log lines.
		lo := sinks.LoopOptions{Name: s.Name, StallTimeout: cfg.StallTimeout, Registerer: a.reg, Logger: logger}
		switch {
		case s.Stdout != nil:
			out = stdoutsink.New(stdout, *s.Stdout, d)
		case s.Kafka != nil:
			k, kerr := kafkasink.New(s.Name, *s.Kafka, d)
			if kerr != nil {
				return nil, fmt.Errorf("sink %s: %w", s.Name, kerr)
			}
			out = k
			klo := kafkasink.LoopOptions(s.Name, *s.Kafka)
			klo.StallTimeout, klo.Registerer, klo.Logger = lo.StallTimeout, lo.Registerer, lo.Logger
			lo = klo
		case s.HTTP != nil:
			h, herr := httpsink.New(s.Name, *s.HTTP, d)
			if herr != nil {
				return nil, fmt.Errorf("sink %s: %w", s.Name, herr)
			}
			out = h
			h.LoopOptions(&lo)
		case s.OTLP != nil:
			o, oerr := otlpsink.New(s.Name, *s.OTLP, d)
			if oerr != nil {
				return nil, fmt.Errorf("sink %s: %w", s.Name, oerr)
			}
			out = o
			o.LoopOptions(&lo)
		}
		a.outs = append(a.outs, out)
		cur, cerr := a.log.Cursor(s.Name)
		if cerr != nil {
			return nil, fmt.Errorf("cursor %s: %w", s.Name, cerr)
		}
		a.loops = append(a.loops, sinks.NewLoop[buffer.Pos](out, &cursorSource{c: cur}, lo))
	}

	if cfg.Filters() {
		if err := a.newFilter(); err != nil {
			return nil, err
		}
	}
	if cfg.Ingest != nil {
		if err := a.listenIngest(); err != nil {
			return nil, err
		}
	}
	if len(cfg.Paths) > 0 {
		if err := a.newTailer(); err != nil {
			return nil, err
		}
	}

	if cfg.MetricsAddr != "off" {
		a.admin, err = admin.Listen(cfg.MetricsAddr, a.reg, admin.Checks{Live: a.wedged, Ready: a.ready, Status: a.status, StatusPublic: cfg.StatusPublic}, logger.With("part", "admin"))
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

// newFilter builds the drop, keep and redact rules both sources apply
// before a record is appended.
func (a *agent) newFilter() error {
	o := a.cfg.FilterOptions()
	o.Registerer = a.reg
	var err error
	a.filter, err = filter.New(o) // validated by config
	if err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	a.logger.Info("filtering before the buffer", "drop_rules", len(o.Drop), "keep_rules", len(o.Keep), "detectors", strings.Join(a.filter.Detectors(), ","))
	for _, r := range a.filter.Unindexed() {
		a.logger.Warn("a filter rule names no literal every match contains: it runs the regular expression engine on every line", "rule", r)
	}
	return nil
}

// listenIngest binds the ingest endpoints.
func (a *agent) listenIngest() error {
	cfg, logger := a.cfg, a.logger
	var flt ingest.Filter
	if a.filter != nil {
		flt = a.filter
	}
	var err error
	a.ingest, err = ingest.Listen(ingest.Options{
		Filter:       flt,
		Addr:         cfg.Ingest.Addr,
		MaxBodyBytes: cfg.Ingest.MaxBodyBytes,
		MaxWait:      cfg.IngestMaxWait,
		Concurrency:  cfg.IngestConcurrency,
		MaxLineBytes: int(cfg.MaxLineBytes),
		TokenFile:    cfg.IngestTokenFile,
		TLSCertFile:  cfg.IngestTLSCertFile,
		TLSKeyFile:   cfg.IngestTLSKeyFile,
		Secrets:      a.secrets,
		Registerer:   a.reg,
		Logger:       logger.With("part", "ingest"),
	}, a.log)
	if err != nil {
		return fmt.Errorf("start ingest: %w", err)
	}
	if !cfg.Ingest.Loopback {
		if cfg.IngestTokenFile == "" {
			logger.Warn("ingest endpoints listen beyond loopback without a token: anyone who can reach them can write records (set SKIFF_INGEST_TOKEN_FILE)", "addr", a.ingest.Addr().String())
		} else {
			logger.Warn("ingest endpoints listen beyond loopback", "addr", a.ingest.Addr().String())
		}
	}
	return nil
}

// newTailer creates the tailer of SKIFF_PATHS.
func (a *agent) newTailer() error {
	cfg, logger := a.cfg, a.logger
	var multiline *regexp.Regexp
	if cfg.MultilineStart != "" {
		multiline = regexp.MustCompile(cfg.MultilineStart) // validated by config
	}
	var flt tailer.Filter
	if a.filter != nil {
		flt = a.filter
	}
	var err error
	a.tail, err = tailer.New(tailer.Options{
		Filter:            flt,
		Paths:             cfg.Paths,
		Exclude:           cfg.Exclude,
		FollowSymlinks:    cfg.FollowSymlinks,
		DataDir:           cfg.DataDir,
		ReadFrom:          cfg.ReadFrom,
		MaxLineBytes:      int(cfg.MaxLineBytes),
		PartialFlush:      cfg.PartialFlush,
		ScanInterval:      cfg.ScanInterval,
		ReadDelay:         cfg.ReadDelay,
		CloseInactive:     cfg.CloseInactive,
		DeletedHoldTime:   cfg.DeletedHoldTime,
		DeletedHoldBytes:  int64(cfg.DeletedHoldBytes),
		ParseJSON:         cfg.Parse == "json",
		TimeField:         cfg.TimeField,
		MultilineStart:    multiline,
		MultilineMaxLines: cfg.MultilineMaxLines,
		MultilineTimeout:  cfg.MultilineTimeout,
		Replayer:          bufferReplayer{a.log},
		Registerer:        a.reg,
		Logger:            logger.With("part", "tailer"),
	}, a.log)
	if err != nil {
		return fmt.Errorf("start tailer: %w", err)
	}
	return nil
}

func (a *agent) wedged() error {
	if a.tail == nil {
		return nil
	}
	return a.tail.Wedged()
}

// bufferReplayer lets the tailer resume after the records that reached the
// buffer since its last checkpoint (see tailer.Replayer).
type bufferReplayer struct{ l *buffer.Log }

func (r bufferReplayer) Mark() ([]byte, error) { return r.l.End().MarshalText() }

func (r bufferReplayer) Replay(ctx context.Context, mark []byte, fn func([]byte) error) error {
	var p buffer.Pos // empty mark: from the oldest retained record
	if len(mark) > 0 {
		if err := p.UnmarshalText(mark); err != nil {
			return err
		}
	}
	return r.l.Replay(ctx, p, fn)
}

// cursorSource adapts a buffer cursor to the delivery loop's Source. It
// is also a sinks.Releaser: a delivered batch's entries are reused for a
// later Next, and the cursor's records behind them go back to the cursor
// (buffer.Cursor.Release), so that reading makes no garbage.
type cursorSource struct {
	c *buffer.Cursor

	mu   sync.Mutex
	lent []lentBatch                 // handed out by Next, oldest first
	free [][]sinks.Entry[buffer.Pos] // released entries, for reuse
}

// lentBatch pairs the entries Next returned with the cursor's records
// they were made from.
type lentBatch struct {
	es   []sinks.Entry[buffer.Pos]
	recs []buffer.Record
}

// Bounds of what a cursorSource tracks. The loop releases every batch it
// delivers, at most CONCURRENCY at a time; a batch it never releases
// (one abandoned at shutdown) is forgotten after maxLentBatches others.
const (
	maxLentBatches = 64
	maxFreeEntries = 4
)

func (s *cursorSource) Next(ctx context.Context, maxRecords, maxBytes int) ([]sinks.Entry[buffer.Pos], error) {
	recs, err := s.c.Next(ctx, maxRecords, maxBytes)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sinks.Entry[buffer.Pos]
	if k := len(s.free); k > 0 && cap(s.free[k-1]) >= len(recs) {
		out, s.free = s.free[k-1][:len(recs)], s.free[:k-1]
	} else {
		out = make([]sinks.Entry[buffer.Pos], len(recs))
	}
	for i, r := range recs {
		out[i] = sinks.Entry[buffer.Pos]{Pos: r.Pos, Data: r.Data}
	}
	if len(s.lent) == maxLentBatches {
		s.lent = slices.Delete(s.lent, 0, 1)
	}
	s.lent = append(s.lent, lentBatch{es: out, recs: recs})
	return out, nil
}

// Release implements sinks.Releaser.
func (s *cursorSource) Release(es []sinks.Entry[buffer.Pos]) {
	if len(es) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.lent {
		if &b.es[0] != &es[0] {
			continue
		}
		s.lent = slices.Delete(s.lent, i, i+1)
		s.c.Release(b.recs)
		clear(b.es) // the Data now belongs to the cursor again
		if len(s.free) < maxFreeEntries {
			s.free = append(s.free, b.es[:0])
		}
		return
	}
}

func (s *cursorSource) Commit(p buffer.Pos) error { return s.c.Commit(p) }

func (s *cursorSource) Lag() int64 {
	n, _ := s.c.Lag()
	return n
}

func (a *agent) ready() error {
	if err := a.log.Err(); err != nil {
		return fmt.Errorf("buffer: %w", err)
	}
	return nil
}

func (a *agent) status() any {
	type sinkStatus struct {
		Name   string `json:"name"`
		Status any    `json:"status"`
	}
	type sources struct {
		Files  []string       `json:"files,omitempty"` // SKIFF_PATHS
		Ingest *ingest.Status `json:"ingest,omitempty"`
	}
	out := struct {
		Version string       `json:"version"`
		Sources sources      `json:"sources"`
		Buffer  any          `json:"buffer"`
		Sinks   []sinkStatus `json:"sinks"`
	}{Version: version, Buffer: a.log.Stats()}
	if a.tail != nil {
		out.Sources.Files = a.cfg.Paths
	}
	if a.ingest != nil {
		st := a.ingest.Status()
		out.Sources.Ingest = &st
	}
	for i, l := range a.loops {
		st := l.Status()
		st.LastError = a.secrets.String(st.LastError)
		out.Sinks = append(out.Sinks, sinkStatus{Name: a.cfg.SinkList[i].Name, Status: st})
	}
	return out
}

func (a *agent) run() error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	// Each part gets its own context so that they stop in order.
	bufCtx, stopBuf := context.WithCancel(context.Background())
	tailCtx, stopTail := context.WithCancel(context.Background())
	ingestCtx, stopIngest := context.WithCancel(context.Background())
	sinkCtx, stopSinks := context.WithCancel(context.Background())
	defer stopBuf()
	defer stopTail()
	defer stopIngest()
	defer stopSinks()

	var wg sync.WaitGroup
	errc := make(chan error, 3+len(a.loops))
	start := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start("buffer", func() error { return a.log.Run(bufCtx) })
	// A source that is not configured has a nil channel: it never ends.
	var tailDone, ingestDone chan error
	if a.tail != nil {
		tailDone = make(chan error, 1)
		go func() { tailDone <- a.tail.Run(tailCtx) }()
	}
	if a.ingest != nil {
		ingestDone = make(chan error, 1)
		go func() { ingestDone <- a.ingest.Run(ingestCtx) }()
	}
	loopsDone := make(chan struct{})
	var loopWG sync.WaitGroup
	for i, l := range a.loops {
		loopWG.Add(1)
		go func() {
			defer loopWG.Done()
			if err := l.Run(sinkCtx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("sink %s: %w", a.cfg.SinkList[i].Name, err)
			}
		}()
	}
	go func() { loopWG.Wait(); close(loopsDone) }()
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	if a.admin != nil {
		start("admin", func() error { return a.admin.Run(adminCtx) })
	}
	ingestAddr := ""
	if a.ingest != nil {
		ingestAddr = a.ingest.Addr().String()
	}
	a.logger.Info("skiff started", "version", version, "paths", a.cfg.Paths, "ingest", ingestAddr, "sinks", len(a.loops))

	var runErr error
	select {
	case sig := <-sigs:
		a.logger.Info("shutting down", "signal", sig.String(), "timeout", a.cfg.ShutdownTimeout.String())
	case err := <-tailDone:
		tailDone <- err
		runErr = fmt.Errorf("tailer stopped: %w", err)
	case err := <-ingestDone:
		ingestDone <- err
		runErr = fmt.Errorf("ingest stopped: %w", err)
	case runErr = <-errc:
	}

	deadline, cancelDeadline := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancelDeadline()
	// A second signal turns the graceful stop into an immediate one.
	go func() {
		select {
		case <-sigs:
			a.logger.Warn("second signal: stopping now")
			cancelDeadline()
		case <-deadline.Done():
		}
	}()

	// 1. Take the application's last records (lines it writes and requests
	// it sends as it stops), then stop the sources: the ingest server stops
	// accepting and finishes the requests in flight; the tailer's Run syncs
	// the buffer and writes checkpoints before returning.
	if runErr == nil {
		var qwg sync.WaitGroup
		if a.tail != nil {
			qwg.Add(1)
			go func() {
				defer qwg.Done()
				if err := a.tail.WaitQuiet(deadline, a.cfg.ShutdownQuiet); err != nil {
					a.logger.Warn("files still active at shutdown", "err", err)
				}
			}()
		}
		if a.ingest != nil {
			qwg.Add(1)
			go func() {
				defer qwg.Done()
				if err := a.ingest.WaitQuiet(deadline, a.cfg.ShutdownQuiet); err != nil {
					a.logger.Warn("ingest requests still arriving at shutdown", "err", err)
				}
			}()
		}
		qwg.Wait()
	}
	stopIngest()
	if ingestDone != nil {
		if err := <-ingestDone; err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
			runErr = fmt.Errorf("ingest: %w", err)
		}
	}
	stopTail()
	if tailDone != nil {
		if err := <-tailDone; err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
			runErr = fmt.Errorf("tailer: %w", err)
		}
	}
	// 2. Drain the buffer to every sink within what is left of the grace.
	if runErr == nil {
		var dwg sync.WaitGroup
		for _, l := range a.loops {
			dwg.Add(1)
			go func() { defer dwg.Done(); l.Drain(deadline) }()
		}
		dwg.Wait()
	}
	stopSinks()
	<-loopsDone
	stopAdmin()
	stopBuf()
	wg.Wait()
	if err := a.closeAll(); err != nil && runErr == nil {
		runErr = err
	}
	close(errc)
	for err := range errc {
		if runErr == nil {
			runErr = err
		}
	}
	a.logger.Info("skiff stopped")
	return runErr
}

// closeAll closes the sinks, then the buffer, which persists cursors.
func (a *agent) closeAll() error {
	var errs []error
	for _, o := range a.outs {
		errs = append(errs, o.Close())
	}
	if a.log != nil {
		errs = append(errs, a.log.Close())
	}
	return errors.Join(errs...)
}
