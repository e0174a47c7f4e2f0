package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/redact"
)

// metadataTTL bounds how long kafka-go routes by stale metadata: it
// does not refresh on NOT_LEADER_FOR_PARTITION, so after a leader change
// attempts fail until the next refresh (kafka-go's default is 6s).
const metadataTTL = 2 * time.Second

// newTransport builds the connection pool shared by the sink's
// writers. With a fixed topic, metadata refreshes ask for that topic only
// rather than for every topic of the cluster.
// secrets learns the SASL password each time it is read from its file.
func newTransport(cfg *config.Kafka, fixedTopic string, secrets *redact.Secrets) (*kafkago.Transport, error) {
	t := &kafkago.Transport{
		Dial:        (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DialTimeout: min(cfg.Timeout, 10*time.Second),
		MetadataTTL: metadataTTL,
		ClientID:    cfg.ClientID,
	}
	if fixedTopic != "" {
		t.MetadataTopics = []string{fixedTopic}
	}
	if cfg.TLSEnabled() {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		t.TLS = tc
	}
	if cfg.SASLMechanism != "none" {
		m, err := saslMechanism(cfg)
		if err != nil {
			return nil, err
		}
		if fs, ok := m.(*fileSASL); ok {
			fs.secrets = secrets
		}
		t.SASL = m
	}
	return t, nil
}

func tlsConfig(cfg *config.Kafka) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         cfg.TLSServerName,
		InsecureSkipVerify: cfg.TLSInsecureSkipVerify, //nolint:gosec // opt-in, warned about in New
	}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("read tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca file %s: no PEM certificate in it", cfg.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.TLSCertFile != "" {
		// Load once now so that a bad pair fails at start, then again for
		// every handshake so that a renewed certificate (a rotated Secret)
		// is picked up without a restart.
		if _, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, fmt.Errorf("load tls client certificate: %w", err)
		}
		certFile, keyFile := cfg.TLSCertFile, cfg.TLSKeyFile
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("load tls client certificate: %w", err)
			}
			return &c, nil
		}
	}
	return tc, nil
}

func saslMechanism(cfg *config.Kafka) (sasl.Mechanism, error) {
	m := &fileSASL{mechanism: cfg.SASLMechanism, user: cfg.SASLUsername, password: cfg.SASLPassword, file: cfg.SASLPasswordFile}
	if _, err := m.current(); err != nil { // fail at start, not at the first connection
		return nil, err
	}
	return m, nil
}

// fileSASL is a SASL mechanism whose password is read again, from
// SASL_PASSWORD_FILE when set, for every new connection: a rotated
// Kubernetes Secret takes effect without a restart.
type fileSASL struct {
	mechanism, user, password, file string
	secrets                         *redact.Secrets // learns each password read; may be nil
}

func (m *fileSASL) Name() string {
	if m.mechanism == "plain" {
		return "PLAIN"
	}
	return strings.ToUpper(m.mechanism)
}

func (m *fileSASL) current() (sasl.Mechanism, error) {
	pw := m.password
	if m.file != "" {
		b, err := os.ReadFile(m.file)
		if err != nil {
			return nil, fmt.Errorf("read sasl password file: %w", err)
		}
		// Secrets written by hand often end in a newline.
		pw = strings.TrimRight(string(b), "\r\n")
		m.secrets.Add(pw)
	}
	switch m.mechanism {
	case "plain":
		return plain.Mechanism{Username: m.user, Password: pw}, nil
	case "scram-sha-256":
		return scram.Mechanism(scram.SHA256, m.user, pw)
	case "scram-sha-512":
		return scram.Mechanism(scram.SHA512, m.user, pw)
	}
	return nil, fmt.Errorf("sasl mechanism %q is not supported", m.mechanism)
}

func (m *fileSASL) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	mech, err := m.current()
	if err != nil {
		return nil, nil, err
	}
	return mech.Start(ctx)
}

// meteredTransport counts produce requests, their latency and the errors
// and throttling the brokers answer with. It also remembers, for
// partitionCountTTL, the answer to the one-topic metadata lookup that kafka-go's
// Writer makes for every single message: kafka-go serves it from its own
// cache (refreshed every few seconds), but reaching that cache costs a
// string join and two allocations per message, a quarter of the sink's
// CPU at high rates. The Writer uses the answer only for the partition
// count; requests are routed by kafka-go's own, fresher, metadata.
type meteredTransport struct {
	next kafkago.RoundTripper
	m    *metrics

	now func() time.Time // nil: time.Now

	mu   sync.RWMutex
	meta map[string]metaEntry // by topic; guarded by mu
}

type metaEntry struct {
	resp    kafkago.Response
	expires time.Time
}

const (
	partitionCountTTL   = time.Second
	maxCachedTopics     = 1000
	transportErrorLabel = "transport"
)

func (t *meteredTransport) RoundTrip(ctx context.Context, addr net.Addr, req kafkago.Request) (kafkago.Response, error) {
	switch r := req.(type) {
	case *metadataAPI.Request:
		if len(r.TopicNames) == 1 && !r.AllowAutoTopicCreation {
			return t.metadata(ctx, addr, r)
		}
	case *produceAPI.Request:
		return t.produce(ctx, addr, r)
	}
	return t.next.RoundTrip(ctx, addr, req)
}

func (t *meteredTransport) metadata(ctx context.Context, addr net.Addr, req *metadataAPI.Request) (kafkago.Response, error) {
	clock := t.now
	if clock == nil {
		clock = time.Now
	}
	topic, now := req.TopicNames[0], clock()
	t.mu.RLock()
	e, ok := t.meta[topic]
	t.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.resp, nil
	}
	resp, err := t.next.RoundTrip(ctx, addr, req)
	if err != nil {
		return resp, err
	}
	t.mu.Lock()
	if t.meta == nil || len(t.meta) >= maxCachedTopics {
		t.meta = map[string]metaEntry{} // a templated topic with endless values
	}
	t.meta[topic] = metaEntry{resp: resp, expires: now.Add(partitionCountTTL)}
	t.mu.Unlock()
	return resp, nil
}

func (t *meteredTransport) produce(ctx context.Context, addr net.Addr, req *produceAPI.Request) (kafkago.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(ctx, addr, req)
	t.m.requests.Inc()
	t.m.requestSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		t.m.errors.WithLabelValues(transportErrorLabel).Inc()
		return resp, err
	}
	if r, ok := resp.(*produceAPI.Response); ok {
		if r.ThrottleTimeMs > 0 {
			t.m.throttleSeconds.Add(float64(r.ThrottleTimeMs) / 1000)
		}
		for _, tp := range r.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode != 0 {
					t.m.errors.WithLabelValues(errorLabel(kafkago.Error(p.ErrorCode))).Inc()
				}
			}
		}
	}
	return resp, err
}

// errorLabel names a broker error code for the `error` label, e.g.
// message_size_too_large; the set is bounded by the protocol.
func errorLabel(e kafkago.Error) string {
	title := e.Title()
	if title == "" {
		return fmt.Sprintf("code_%d", int16(e))
	}
	return strings.ToLower(strings.NewReplacer(" ", "_", "-", "_").Replace(title))
}
