package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/redact"
)

// HTTP configures an HTTP sink (SKIFF_<NAME>_*, name defaults to "http").
// docs/HTTP.md describes the formats, retries and the circuit breaker.
type HTTP struct {
	URL         string `envconfig:"URL" required:"true" redact:"url" desc:"endpoint records are POSTed to; for loki a bare base URL gets /loki/api/v1/push, for elasticsearch a URL not ending in /_bulk gets /_bulk"`
	Format      string `envconfig:"FORMAT" default:"ndjson" desc:"ndjson (one JSON record per line), json (one array per request), loki (push API) or elasticsearch (_bulk API)"`
	Compression string `envconfig:"COMPRESSION" default:"none" desc:"request body compression: none or gzip (level 3)"`

	HTTPClient

	RetryableStatus []int `envconfig:"RETRYABLE_STATUS" default:"408,429,500,502,503,504" desc:"HTTP statuses retried with backoff (every 5xx is retried anyway)"`

	ESIndex    string   `envconfig:"ES_INDEX" default:"skiff" desc:"elasticsearch: index or data stream written with create actions"`
	LokiLabels []string `envconfig:"LOKI_LABELS" default:"job=static:skiff,namespace=kubernetes.namespace,pod=kubernetes.pod" desc:"loki: comma-separated label=source; source is path, filename, kubernetes.pod|namespace|pod_uid|node, fields.<key> or static:<value>"`
	LokiLine   string   `envconfig:"LOKI_LINE" default:"message" desc:"loki: the log line is the message as read (message) or skiff's JSON record (json)"`
}

// HTTPClient is what every HTTP-based sink (http, otlp) shares: headers,
// credentials, TLS, the request timeout, batching, concurrency, backoff
// and the circuit breaker. It is embedded in each sink's settings, so its
// variables are the sink's own (SKIFF_<NAME>_HEADERS, SKIFF_<NAME>_AUTH, …).
type HTTPClient struct {
	Headers []string `envconfig:"HEADERS" redact:"headers" desc:"comma-separated Name=value request headers; a value @/path is read from that file and re-read when it changes"`

	Auth         string `envconfig:"AUTH" default:"none" desc:"none, basic (USERNAME with PASSWORD or PASSWORD_FILE) or bearer (TOKEN or TOKEN_FILE)"`
	Username     string `envconfig:"USERNAME" desc:"basic auth user name"`
	Password     string `envconfig:"PASSWORD" secret:"true" desc:"basic auth password"`
	PasswordFile string `envconfig:"PASSWORD_FILE" redact:"file" desc:"file holding the basic auth password; re-read when it changes"`
	Token        string `envconfig:"TOKEN" secret:"true" desc:"bearer token"`
	TokenFile    string `envconfig:"TOKEN_FILE" redact:"file" desc:"file holding the bearer token (e.g. a projected service account token); re-read when it changes"`

	CAFile             string `envconfig:"CA_FILE" desc:"PEM file of the CA certificates to trust instead of the system's"`
	CertFile           string `envconfig:"CERT_FILE" desc:"PEM client certificate (with KEY_FILE); re-read when it changes"`
	KeyFile            string `envconfig:"KEY_FILE" redact:"file" desc:"PEM key of CERT_FILE"`
	InsecureSkipVerify bool   `envconfig:"INSECURE_SKIP_VERIFY" default:"false" desc:"do not verify the server's certificate (testing only; logged as a warning)"`

	Timeout         time.Duration `envconfig:"TIMEOUT" default:"10s" desc:"deadline of one request, including reading the response"`
	BatchMaxBytes   Size          `envconfig:"BATCH_MAX_BYTES" default:"1MiB" desc:"most buffered bytes in one request (before encoding); a larger single record is sent alone"`
	BatchMaxRecords int           `envconfig:"BATCH_MAX_RECORDS" default:"2000" desc:"most records in one request"`
	Linger          time.Duration `envconfig:"LINGER" default:"0s" desc:"how long a request that is not full waits for more records; 0 sends at once (batches still fill while earlier requests are in flight)"`
	Concurrency     int           `envconfig:"CONCURRENCY" default:"2" desc:"requests in flight; the cursor still advances in order"`

	BackoffMin            time.Duration `envconfig:"BACKOFF_MIN" default:"100ms" desc:"first wait after a failed request; doubles with each failed round, jittered; retries never stop"`
	BackoffFirstMinuteMax time.Duration `envconfig:"BACKOFF_FIRST_MINUTE_MAX" default:"1500ms" desc:"longest wait between requests during the first minute of an outage: delivery resumes at most this long after a short outage ends; the default stays within BACKOFF_MIN and BACKOFF_MAX"`
	BackoffMax            time.Duration `envconfig:"BACKOFF_MAX" default:"4s" desc:"longest wait between requests (probes) once the endpoint has failed for a minute: the most skiff adds to a long outage; more means fewer probes; the default is at least BACKOFF_MIN and BACKOFF_FIRST_MINUTE_MAX"`
	RetryAfterMax         time.Duration `envconfig:"RETRY_AFTER_MAX" default:"1m" desc:"longest pause a Retry-After answer imposes; a longer one is cut to this"`
	BreakerFailures       int           `envconfig:"BREAKER_FAILURES" default:"5" desc:"consecutive failed requests (or one timeout) after which one probe request at a time goes out until one succeeds; 0 disables the breaker"`
}

// client gives the shared settings of a sink's settings struct that
// embeds them.
func (h *HTTPClient) client() *HTTPClient { return h }

// HTTP formats.
const (
	FormatNDJSON        = "ndjson"
	FormatJSON          = "json"
	FormatLoki          = "loki"
	FormatElasticsearch = "elasticsearch"
)

// Validate reports every problem with h.
func (h *HTTP) Validate(prefix string) []error {
	var ps []error
	bad := func(name, format string, args ...any) {
		ps = append(ps, fmt.Errorf(prefix+name+": "+format, args...))
	}
	ps = append(ps, checkHTTPURL(prefix, h.URL)...)
	ps = oneOf(ps, prefix+"FORMAT", h.Format, FormatNDJSON, FormatJSON, FormatLoki, FormatElasticsearch)
	ps = oneOf(ps, prefix+"COMPRESSION", h.Compression, "none", "gzip")
	ps = oneOf(ps, prefix+"LOKI_LINE", h.LokiLine, "message", "json")
	ps = append(ps, h.HTTPClient.validate(prefix)...)
	ps = append(ps, checkStatuses(prefix, h.RetryableStatus)...)

	if h.Format == FormatElasticsearch {
		if err := checkESIndex(h.ESIndex); err != nil {
			bad("ES_INDEX", "%q is not accepted: %v", h.ESIndex, err)
		}
	}
	if h.Format == FormatLoki {
		if len(h.LokiLabels) == 0 {
			bad("LOKI_LABELS", "is empty (accepted: at least one label=source; Loki needs a label)")
		}
		seen := map[string]bool{}
		for _, l := range h.LokiLabels {
			name, _, err := ParseLokiLabel(l)
			switch {
			case err != nil:
				bad("LOKI_LABELS", "%q: %v", l, err)
			case seen[name]:
				bad("LOKI_LABELS", "label %s is given twice (accepted: each label once)", name)
			}
			seen[name] = true
		}
	}
	return ps
}

// checkHTTPURL checks the URL of an HTTP-based sink.
func checkHTTPURL(prefix, raw string) []error {
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []error{fmt.Errorf("%sURL: %q is not accepted (accepted: an http:// or https:// URL with a host)", prefix, redact.URL(raw))}
	}
	return nil
}

// checkStatuses checks a RETRYABLE_STATUS list.
func checkStatuses(prefix string, statuses []int) []error {
	var ps []error
	for _, s := range statuses {
		if s < 100 || s > 599 {
			ps = append(ps, fmt.Errorf("%sRETRYABLE_STATUS: %d is not accepted (accepted: HTTP status codes 100 to 599)", prefix, s))
		}
	}
	return ps
}

// validate reports every problem with the shared client settings.
func (h *HTTPClient) validate(prefix string) []error {
	var ps []error
	bad := func(name, format string, args ...any) {
		ps = append(ps, fmt.Errorf(prefix+name+": "+format, args...))
	}
	ps = oneOf(ps, prefix+"AUTH", h.Auth, "none", "basic", "bearer")

	for _, hd := range h.Headers {
		name, value, err := ParseHeader(hd)
		if err != nil {
			// The name only: the value may be a secret.
			name, _, _ := strings.Cut(hd, "=")
			bad("HEADERS", "%q: %v", strings.TrimSpace(name)+"=…", err)
			continue
		}
		if strings.EqualFold(name, "Authorization") && h.Auth != "none" {
			bad("HEADERS", "an Authorization header conflicts with %sAUTH=%s (accepted: one of them, e.g. Authorization=@/path for an Elasticsearch ApiKey)", prefix, h.Auth)
		}
		if file, ok := strings.CutPrefix(value, "@"); ok {
			if err := readable(file); err != nil {
				bad("HEADERS", "header %s: %v", name, err)
			}
		}
	}

	switch h.Auth {
	case "basic":
		if h.Username == "" {
			bad("USERNAME", "is required with %sAUTH=basic", prefix)
		}
		if (h.Password == "") == (h.PasswordFile == "") {
			bad("PASSWORD", "set exactly one of %sPASSWORD and %sPASSWORD_FILE with %sAUTH=basic", prefix, prefix, prefix)
		}
	case "bearer":
		if (h.Token == "") == (h.TokenFile == "") {
			bad("TOKEN", "set exactly one of %sTOKEN and %sTOKEN_FILE with %sAUTH=bearer", prefix, prefix, prefix)
		}
	}
	if h.Auth != "basic" && (h.Username != "" || h.Password != "" || h.PasswordFile != "") {
		bad("AUTH", "%q ignores the USERNAME/PASSWORD settings (accepted: basic to use them)", h.Auth)
	}
	if h.Auth != "bearer" && (h.Token != "" || h.TokenFile != "") {
		bad("AUTH", "%q ignores the TOKEN settings (accepted: bearer to use them)", h.Auth)
	}
	for name, f := range map[string]string{"PASSWORD_FILE": h.PasswordFile, "TOKEN_FILE": h.TokenFile} {
		if f != "" {
			if err := readable(f); err != nil {
				bad(name, "%v", err)
			}
		}
	}

	if h.CAFile != "" {
		if pem, err := os.ReadFile(h.CAFile); err != nil {
			bad("CA_FILE", "%v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			bad("CA_FILE", "%q holds no PEM certificate", h.CAFile)
		}
	}
	switch {
	case (h.CertFile == "") != (h.KeyFile == ""):
		bad("CERT_FILE", "set both %sCERT_FILE and %sKEY_FILE, or neither", prefix, prefix)
	case h.CertFile != "":
		if _, err := tls.LoadX509KeyPair(h.CertFile, h.KeyFile); err != nil {
			bad("CERT_FILE", "load client certificate: %v", err)
		}
	}

	positive := func(name string, d time.Duration) {
		if d <= 0 {
			bad(name, "%s is not accepted (accepted: a positive duration)", d)
		}
	}
	positive("TIMEOUT", h.Timeout)
	positive("BACKOFF_MIN", h.BackoffMin)
	positive("RETRY_AFTER_MAX", h.RetryAfterMax)
	if h.BackoffMax < h.BackoffMin {
		bad("BACKOFF_MAX", "%s is not accepted (accepted: at least BACKOFF_MIN, %s)", h.BackoffMax, h.BackoffMin)
	} else if h.BackoffFirstMinuteMax < h.BackoffMin || h.BackoffFirstMinuteMax > h.BackoffMax {
		bad("BACKOFF_FIRST_MINUTE_MAX", "%s is not accepted (accepted: from BACKOFF_MIN, %s, to BACKOFF_MAX, %s)", h.BackoffFirstMinuteMax, h.BackoffMin, h.BackoffMax)
	}
	if h.Linger < 0 {
		bad("LINGER", "%s is not accepted (accepted: 0 or a positive duration)", h.Linger)
	}
	if h.BatchMaxBytes < 1<<10 || h.BatchMaxBytes > 256<<20 {
		bad("BATCH_MAX_BYTES", "%s is not accepted (accepted: 1KiB to 256MiB)", h.BatchMaxBytes)
	}
	if h.BatchMaxRecords < 1 || h.BatchMaxRecords > 1_000_000 {
		bad("BATCH_MAX_RECORDS", "%d is not accepted (accepted: 1 to 1000000)", h.BatchMaxRecords)
	}
	if h.Concurrency < 1 || h.Concurrency > 64 {
		bad("CONCURRENCY", "%d is not accepted (accepted: 1 to 64)", h.Concurrency)
	}
	if h.BreakerFailures < 0 {
		bad("BREAKER_FAILURES", "%d is not accepted (accepted: 0 to disable, or a positive count)", h.BreakerFailures)
	}
	return ps
}

var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// ParseHeader splits one SKIFF_<NAME>_HEADERS entry, "Name=value".
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || !headerName.MatchString(name) {
		return "", "", errors.New("not a header (accepted: Name=value or Name=@/path/to/file)")
	}
	switch strings.ToLower(name) {
	case "content-length", "content-encoding", "transfer-encoding", "host":
		return "", "", fmt.Errorf("header %s is set by skiff", name)
	}
	return name, strings.TrimSpace(value), nil
}

var lokiLabelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ParseLokiLabel splits one SKIFF_<NAME>_LOKI_LABELS entry,
// "label=source", and checks both parts.
func ParseLokiLabel(s string) (label, source string, err error) {
	label, source, ok := strings.Cut(s, "=")
	label, source = strings.TrimSpace(label), strings.TrimSpace(source)
	if !ok || !lokiLabelName.MatchString(label) || strings.HasPrefix(label, "__") {
		return "", "", errors.New("not a label (accepted: name=source, name matching [a-zA-Z_][a-zA-Z0-9_]* and not starting with __)")
	}
	switch {
	case source == "path", source == "filename",
		source == "kubernetes.pod", source == "kubernetes.namespace", source == "kubernetes.pod_uid", source == "kubernetes.node":
	case strings.HasPrefix(source, "fields.") && len(source) > len("fields."):
	case strings.HasPrefix(source, "static:") && len(source) > len("static:"):
	default:
		return "", "", fmt.Errorf("unknown source %q (accepted: path, filename, kubernetes.pod, kubernetes.namespace, kubernetes.pod_uid, kubernetes.node, fields.<key>, static:<value>)", source)
	}
	return label, source, nil
}

func checkESIndex(s string) error {
	switch {
	case s == "", s == ".", s == "..":
		return errors.New("empty")
	case len(s) > 255:
		return errors.New("longer than 255 bytes")
	case strings.ToLower(s) != s:
		return errors.New("not lowercase")
	case strings.ContainsAny(s, "\\/*?\"<>| ,#:"):
		return errors.New(`contains one of \ / * ? " < > | , # : or a space`)
	case strings.IndexAny(s[:1], "-_+") == 0:
		return errors.New("starts with -, _ or +")
	}
	return nil
}

// readable checks that a file can be read, without keeping its content.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// RetryableSet returns the statuses h retries: RetryableStatus and every 5xx.
func (h *HTTP) RetryableSet() map[int]bool {
	m := map[int]bool{}
	for s := 500; s <= 599; s++ {
		m[s] = true
	}
	for _, s := range h.RetryableStatus {
		m[s] = true
	}
	return m
}
