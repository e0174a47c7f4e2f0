package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/redact"
)

// Kafka configures a Kafka sink (SKIFF_<NAME>_*, name defaults to "kafka").
// docs/KAFKA.md explains each setting and the delivery guarantees.
type Kafka struct {
	Brokers     []string `envconfig:"BROKERS" required:"true" redact:"url" desc:"comma-separated host:port of seed brokers"`
	Topic       string   `envconfig:"TOPIC" required:"true" desc:"topic to produce to, or a template taking record fields, e.g. logs-{fields.app} or {kubernetes.namespace|default}"`
	Key         string   `envconfig:"KEY" default:"none" desc:"message key, which picks the partition: none (spread evenly), path (the source file), or a record field such as fields.app or json.user"`
	Compression string   `envconfig:"COMPRESSION" default:"none" desc:"none, gzip, snappy, lz4 or zstd"`
	Acks        string   `envconfig:"ACKS" default:"all" desc:"acknowledgement a write waits for: all (every in-sync replica), one (the leader) or none (none at all; records can be lost)"`

	BatchMaxRecords int           `envconfig:"BATCH_MAX_RECORDS" default:"1000" desc:"most records in one batch read from the buffer"`
	BatchMaxBytes   Size          `envconfig:"BATCH_MAX_BYTES" default:"1MiB" desc:"most buffered bytes in one batch; the sink splits it into requests under MESSAGE_MAX_BYTES"`
	Linger          time.Duration `envconfig:"LINGER" default:"0s" desc:"longest wait for a batch to fill before it is sent; 0 sends at once (the tailer already gathers SKIFF_READ_DELAY of lines per read, and batches fill while earlier ones are in flight)"`
	Concurrency     int           `envconfig:"CONCURRENCY" default:"4" desc:"batches in flight; the cursor still advances in order"`
	MessageMaxBytes Size          `envconfig:"MESSAGE_MAX_BYTES" default:"1000000" desc:"the broker's message.max.bytes (or the topic's max.message.bytes): requests stay under it and a larger record is dead-lettered"`

	Timeout               time.Duration `envconfig:"TIMEOUT" default:"10s" desc:"deadline of one delivery attempt of a batch"`
	UnknownTopicTimeout   time.Duration `envconfig:"UNKNOWN_TOPIC_TIMEOUT" default:"1m" desc:"with a templated TOPIC, how long records for a topic that does not exist are retried before they are dead-lettered"`
	ClientID              string        `envconfig:"CLIENT_ID" default:"skiff" desc:"client.id sent to the brokers"`
	BackoffMin            time.Duration `envconfig:"BACKOFF_MIN" default:"100ms" desc:"first wait after a failed attempt; doubles with each failed round, jittered; retries never stop"`
	BackoffFirstMinuteMax time.Duration `envconfig:"BACKOFF_FIRST_MINUTE_MAX" default:"1500ms" desc:"longest wait between attempts during the first minute of an outage: delivery resumes at most this long after a short outage (a broker restart, a leader election) ends; the default stays within BACKOFF_MIN and BACKOFF_MAX"`
	BackoffMax            time.Duration `envconfig:"BACKOFF_MAX" default:"4s" desc:"longest wait between attempts (probes) once the brokers have failed for a minute: the most skiff adds to a long outage; more means fewer probes; the default is at least BACKOFF_MIN and BACKOFF_FIRST_MINUTE_MAX"`
	BreakerFailures       int           `envconfig:"BREAKER_FAILURES" default:"5" desc:"consecutive failed attempts (or one timeout) after which one probe attempt at a time goes out until one succeeds; 0 disables the breaker"`

	TLS                   bool   `envconfig:"TLS" default:"false" desc:"connect with TLS; implied by any other TLS_ setting"`
	TLSCAFile             string `envconfig:"TLS_CA_FILE" desc:"PEM file of the CAs that sign the brokers' certificates; default: the system pool"`
	TLSCertFile           string `envconfig:"TLS_CERT_FILE" desc:"PEM client certificate, for brokers that require one (with TLS_KEY_FILE); re-read for every new connection"`
	TLSKeyFile            string `envconfig:"TLS_KEY_FILE" redact:"file" desc:"PEM private key of TLS_CERT_FILE"`
	TLSServerName         string `envconfig:"TLS_SERVER_NAME" desc:"name to verify the brokers' certificates against; default: the host dialled"`
	TLSInsecureSkipVerify bool   `envconfig:"TLS_INSECURE_SKIP_VERIFY" default:"false" desc:"accept any broker certificate (tests only: anyone on the path can read and change the traffic)"`

	SASLMechanism    string `envconfig:"SASL_MECHANISM" default:"none" desc:"none, plain, scram-sha-256 or scram-sha-512"`
	SASLUsername     string `envconfig:"SASL_USERNAME" desc:"SASL user name"`
	SASLPassword     string `envconfig:"SASL_PASSWORD" secret:"true" desc:"SASL password; prefer SASL_PASSWORD_FILE"`
	SASLPasswordFile string `envconfig:"SASL_PASSWORD_FILE" redact:"file" desc:"file holding the SASL password (a mounted Secret), read again for every new connection"`
}

// TLSEnabled reports whether connections use TLS: TLS is set, or any other
// TLS_ setting is.
func (k *Kafka) TLSEnabled() bool {
	return k.TLS || k.TLSCAFile != "" || k.TLSCertFile != "" || k.TLSKeyFile != "" ||
		k.TLSServerName != "" || k.TLSInsecureSkipVerify
}

// maxTopicLen is Kafka's limit on a topic name.
const maxTopicLen = 249

// Validate reports every problem with k.
func (k *Kafka) Validate(prefix string) []error {
	var ps []error
	if len(k.Brokers) == 0 {
		ps = append(ps, fmt.Errorf("%sBROKERS is empty (accepted: comma-separated host:port, e.g. kafka-0.kafka:9092,kafka-1.kafka:9092)", prefix))
	}
	for _, b := range k.Brokers {
		host, port, err := net.SplitHostPort(strings.TrimSpace(b))
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			ps = append(ps, fmt.Errorf("%sBROKERS: %q is not host:port (accepted: comma-separated host:port, e.g. kafka-0.kafka:9092)", prefix, redact.URL(b)))
		}
	}
	if parts, err := ParseTopic(k.Topic); err != nil {
		ps = append(ps, fmt.Errorf("%sTOPIC: %q %v", prefix, k.Topic, err))
	} else if len(parts) == 1 && parts[0].Field == nil && len(k.Topic) > maxTopicLen {
		ps = append(ps, fmt.Errorf("%sTOPIC: %q is longer than %d characters", prefix, k.Topic, maxTopicLen))
	}
	if k.Key != "none" {
		if _, err := ParseField(k.Key); err != nil {
			ps = append(ps, fmt.Errorf("%sKEY: %q is not accepted: %v (accepted: none, path, or a record field such as fields.app)", prefix, k.Key, err))
		}
	}
	ps = oneOf(ps, prefix+"COMPRESSION", k.Compression, "none", "gzip", "snappy", "lz4", "zstd")
	ps = oneOf(ps, prefix+"ACKS", k.Acks, "all", "one", "none")
	if k.BatchMaxRecords < 1 || k.BatchMaxRecords > 1<<20 {
		ps = append(ps, fmt.Errorf("%sBATCH_MAX_RECORDS: %d is out of range (accepted: 1 to 1048576)", prefix, k.BatchMaxRecords))
	}
	if k.BatchMaxBytes < 1<<10 || k.BatchMaxBytes > 1<<30 {
		ps = append(ps, fmt.Errorf("%sBATCH_MAX_BYTES: %s is out of range (accepted: 1KiB to 1GiB)", prefix, k.BatchMaxBytes))
	}
	if k.Linger < 0 {
		ps = append(ps, fmt.Errorf("%sLINGER: %s is negative (accepted: 0 or a positive duration)", prefix, k.Linger))
	}
	if k.MessageMaxBytes < 1<<10 || k.MessageMaxBytes > 1<<30 {
		ps = append(ps, fmt.Errorf("%sMESSAGE_MAX_BYTES: %s is out of range (accepted: 1KiB to 1GiB; the broker's message.max.bytes)", prefix, k.MessageMaxBytes))
	}
	for name, d := range map[string]time.Duration{
		"TIMEOUT": k.Timeout, "UNKNOWN_TOPIC_TIMEOUT": k.UnknownTopicTimeout,
		"BACKOFF_MIN": k.BackoffMin,
	} {
		if d <= 0 {
			ps = append(ps, fmt.Errorf("%s%s: %s must be positive", prefix, name, d))
		}
	}
	if k.BackoffMax < k.BackoffMin {
		ps = append(ps, fmt.Errorf("%sBACKOFF_MAX: %s is not accepted (accepted: at least BACKOFF_MIN, %s)", prefix, k.BackoffMax, k.BackoffMin))
	} else if k.BackoffFirstMinuteMax < k.BackoffMin || k.BackoffFirstMinuteMax > k.BackoffMax {
		ps = append(ps, fmt.Errorf("%sBACKOFF_FIRST_MINUTE_MAX: %s is not accepted (accepted: from BACKOFF_MIN, %s, to BACKOFF_MAX, %s)", prefix, k.BackoffFirstMinuteMax, k.BackoffMin, k.BackoffMax))
	}
	if k.Concurrency < 1 || k.Concurrency > 64 {
		ps = append(ps, fmt.Errorf("%sCONCURRENCY: %d is out of range (accepted: 1 to 64)", prefix, k.Concurrency))
	}
	if k.BreakerFailures < 0 {
		ps = append(ps, fmt.Errorf("%sBREAKER_FAILURES: %d is not accepted (accepted: 0 to disable, or a positive count)", prefix, k.BreakerFailures))
	}
	ps = append(ps, k.validateTLS(prefix)...)
	ps = append(ps, k.validateSASL(prefix)...)
	return ps
}

func (k *Kafka) validateTLS(prefix string) []error {
	var ps []error
	for name, path := range map[string]string{"TLS_CA_FILE": k.TLSCAFile, "TLS_CERT_FILE": k.TLSCertFile, "TLS_KEY_FILE": k.TLSKeyFile} {
		if path == "" {
			continue
		}
		if err := readable(path); err != nil {
			ps = append(ps, fmt.Errorf("%s%s: %q is not readable: %v (accepted: a PEM file)", prefix, name, path, err))
		}
	}
	if (k.TLSCertFile == "") != (k.TLSKeyFile == "") {
		ps = append(ps, fmt.Errorf("%sTLS_CERT_FILE=%q and %sTLS_KEY_FILE=%q: set both or neither", prefix, k.TLSCertFile, prefix, k.TLSKeyFile))
	}
	return ps
}

func (k *Kafka) validateSASL(prefix string) []error {
	ps := oneOf(nil, prefix+"SASL_MECHANISM", k.SASLMechanism, "none", "plain", "scram-sha-256", "scram-sha-512")
	if k.SASLMechanism == "none" {
		if k.SASLUsername != "" || k.SASLPassword != "" || k.SASLPasswordFile != "" {
			ps = append(ps, fmt.Errorf("%sSASL_USERNAME, SASL_PASSWORD or SASL_PASSWORD_FILE is set but %sSASL_MECHANISM is none (accepted: plain, scram-sha-256 or scram-sha-512)", prefix, prefix))
		}
		return ps
	}
	if k.SASLUsername == "" {
		ps = append(ps, fmt.Errorf("%sSASL_USERNAME is required with %sSASL_MECHANISM=%s", prefix, prefix, k.SASLMechanism))
	}
	switch {
	case k.SASLPassword == "" && k.SASLPasswordFile == "":
		ps = append(ps, fmt.Errorf("%sSASL_PASSWORD_FILE (or SASL_PASSWORD) is required with %sSASL_MECHANISM=%s", prefix, prefix, k.SASLMechanism))
	case k.SASLPassword != "" && k.SASLPasswordFile != "":
		ps = append(ps, fmt.Errorf("%sSASL_PASSWORD and %sSASL_PASSWORD_FILE=%q are both set (accepted: one of them)", prefix, prefix, k.SASLPasswordFile))
	case k.SASLPasswordFile != "":
		if err := readable(k.SASLPasswordFile); err != nil {
			ps = append(ps, fmt.Errorf("%sSASL_PASSWORD_FILE: %q is not readable: %v (accepted: a file holding the password)", prefix, k.SASLPasswordFile, err))
		}
	}
	return ps
}

// TopicPart is one piece of a parsed TOPIC template: literal text, or a
// record field (Field non-nil) with an optional fallback.
type TopicPart struct {
	Literal string
	// Field is the field's path in the record's JSON form, e.g.
	// ["fields", "app"]; nil for literal text.
	Field []string
	// Fallback replaces a missing field when HasFallback is set.
	Fallback    string
	HasFallback bool
}

// ParseTopic parses a TOPIC value: literal topic characters (letters,
// digits, '.', '_', '-') and fields in braces, each {a.b} or {a.b|fallback}.
// A plain topic name is one literal part.
func ParseTopic(s string) ([]TopicPart, error) {
	if s == "" {
		return nil, errors.New("is empty (accepted: a topic name, or a template such as logs-{fields.app})")
	}
	var parts []TopicPart
	for rest := s; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open != 0 {
			lit := rest
			if open > 0 {
				lit = rest[:open]
			}
			if i := strings.IndexFunc(lit, func(r rune) bool { return !TopicChar(r) }); i >= 0 {
				return nil, fmt.Errorf("has %q, which is not allowed in a topic name (accepted: letters, digits, '.', '_', '-', and {field} or {field|fallback})", lit[i:i+1])
			}
			parts = append(parts, TopicPart{Literal: lit})
			rest = rest[len(lit):]
			continue
		}
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return nil, errors.New("has a '{' without its '}' (accepted: {field} or {field|fallback})")
		}
		ref, fallback, hasFallback := strings.Cut(rest[1:end], "|")
		field, err := ParseField(ref)
		if err != nil {
			return nil, fmt.Errorf("has field {%s}: %v", rest[1:end], err)
		}
		if i := strings.IndexFunc(fallback, func(r rune) bool { return !TopicChar(r) }); i >= 0 || (hasFallback && fallback == "") {
			return nil, fmt.Errorf("has fallback %q in {%s}, which is not a topic name part (accepted: letters, digits, '.', '_', '-')", fallback, rest[1:end])
		}
		parts = append(parts, TopicPart{Field: field, Fallback: fallback, HasFallback: hasFallback})
		rest = rest[end+1:]
	}
	return parts, nil
}

// TopicChar reports whether r may appear in a Kafka topic name.
func TopicChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

// fieldRoots are the top-level keys of a record's JSON form that a KEY or
// TOPIC may name; "json" is the parsed line with SKIFF_PARSE=json.
var fieldRoots = map[string]bool{
	"id": true, "time": true, "path": true, "offset": true, "message": true,
	"json": true, "kubernetes": true, "fields": true,
}

// ParseField parses a record field reference such as "fields.app",
// "kubernetes.namespace", "json.user.id" or "path" into its path.
func ParseField(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty field name")
	}
	path := strings.Split(s, ".")
	for _, p := range path {
		if p == "" {
			return nil, fmt.Errorf("%q has an empty path element", s)
		}
	}
	if !fieldRoots[path[0]] {
		return nil, fmt.Errorf("%q does not start with a record field (accepted: path, id, time, offset, message, fields.<name>, kubernetes.<name>, json.<name>)", s)
	}
	if (path[0] == "fields" || path[0] == "kubernetes" || path[0] == "json") && len(path) < 2 {
		return nil, fmt.Errorf("%q names an object (accepted: %s.<name>)", s, path[0])
	}
	if path[0] != "fields" && path[0] != "kubernetes" && path[0] != "json" && len(path) > 1 {
		return nil, fmt.Errorf("%q: %s has no sub-fields", s, path[0])
	}
	return path, nil
}
