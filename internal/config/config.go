package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/kelseyhightower/envconfig"
)

// Prefix starts every variable skiff reads.
const Prefix = "SKIFF"

// Config is skiff's whole configuration. Fields are read from SKIFF_<tag>.
type Config struct {
	Paths   []string `envconfig:"PATHS" desc:"comma-separated globs of files to tail; ** matches any depth; required unless INGEST_ADDR is set"`
	Exclude []string `envconfig:"EXCLUDE" desc:"comma-separated globs never to read; without / a pattern matches the base name (e.g. *.gz)"`
	DataDir string   `envconfig:"DATA_DIR" default:"/var/lib/skiff" desc:"directory for the buffer, checkpoints, cursors and dead letters (kept 0700/0600, tightened at start)"`
	Sinks   []string `envconfig:"SINKS" default:"stdout" desc:"comma-separated sinks, each type or name:type; type is stdout, kafka, http or otlp"`

	BufferMaxBytes      Size          `envconfig:"BUFFER_MAX_BYTES" default:"256MiB" desc:"bound on the buffer's bytes on disk"`
	BufferWhenFull      string        `envconfig:"BUFFER_WHEN_FULL" default:"block" desc:"block (the files are the backlog), drop_oldest or drop_newest"`
	BufferFsync         string        `envconfig:"BUFFER_FSYNC" default:"interval" desc:"interval, batch (fsync before a batch is acknowledged) or never"`
	BufferFsyncInterval time.Duration `envconfig:"BUFFER_FSYNC_INTERVAL" default:"1s" desc:"longest time between fsyncs with BUFFER_FSYNC=interval"`
	BufferSegmentBytes  Size          `envconfig:"BUFFER_SEGMENT_BYTES" default:"0" desc:"segment file size, at most half of BUFFER_MAX_BYTES; 0 means min(64MiB, BUFFER_MAX_BYTES/8)"`
	DeadLetterMaxBytes  Size          `envconfig:"DEAD_LETTER_MAX_BYTES" default:"64MiB" desc:"bound on dead-letter files; the oldest are dropped first; the default grows to 8 × MAX_LINE_BYTES so that a rejected line fits"`

	Fields      KeyValues `envconfig:"FIELDS" desc:"comma-separated key=value pairs added to every record"`
	MetricsAddr string    `envconfig:"METRICS_ADDR" default:":9477" desc:"listen address of /metrics, /healthz, /readyz and /status; off disables"`
	LogLevel    string    `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`

	StatusPublic bool `envconfig:"STATUS_PUBLIC" default:"false" desc:"serve /status (paths, sink errors) and the probes' failure reasons to any client; by default only to connections to a loopback address, as skiff status makes inside the pod"`

	ReadFrom          string        `envconfig:"READ_FROM" default:"head" desc:"where to start a file seen for the first time: head or tail"`
	ScanInterval      time.Duration `envconfig:"SCAN_INTERVAL" default:"5s" desc:"period of the rescan that backs up (or replaces) inotify"`
	ReadDelay         time.Duration `envconfig:"READ_DELAY" default:"15ms" desc:"after a quiet file changes, wait this long before reading, so one read and one request carry everything written meanwhile: latency traded for CPU; 0 reads at once (at most 1s)"`
	MaxLineBytes      Size          `envconfig:"MAX_LINE_BYTES" default:"1MiB" desc:"longer lines are split into pieces marked partial; at most a quarter of BUFFER_MAX_BYTES, and the default is capped there"`
	PartialFlush      time.Duration `envconfig:"PARTIAL_FLUSH" default:"1s" desc:"ship a file's unterminated last line, marked partial, once the file has been quiet this long; the rest of the line follows as its continuation"`
	FollowSymlinks    bool          `envconfig:"FOLLOW_SYMLINKS" default:"false" desc:"read files through symbolic links whose target lies inside a PATHS base directory (the part before the first glob); false skips links (counted, logged once)"`
	CloseInactive     time.Duration `envconfig:"CLOSE_INACTIVE" default:"5m" desc:"close files idle this long; reopened on change"`
	DeletedHoldBytes  Size          `envconfig:"DELETED_HOLD_BYTES" default:"64MiB" desc:"while the buffer is blocked (full, or its disk failing), release a deleted file once this much of it is unread"`
	DeletedHoldTime   time.Duration `envconfig:"DELETED_HOLD_TIME" default:"5m" desc:"while the buffer is blocked (full, or its disk failing), release a deleted file after this long"`
	Parse             string        `envconfig:"PARSE" default:"none" desc:"none, or json: a line that is a JSON object is shipped as an object"`
	TimeField         string        `envconfig:"TIME_FIELD" desc:"with PARSE=json, the field holding the event time (RFC 3339 or epoch s/ms)"`
	MultilineStart    string        `envconfig:"MULTILINE_START" desc:"regex that begins a new record; other lines join the previous one"`
	MultilineMaxLines int           `envconfig:"MULTILINE_MAX_LINES" default:"500" desc:"most lines joined into one record"`
	MultilineTimeout  time.Duration `envconfig:"MULTILINE_TIMEOUT" default:"1s" desc:"flush a pending multiline record after this long"`

	Drop         string   `envconfig:"DROP" desc:"comma-separated regular expressions (\\, is a comma inside one): a line matching any is not shipped (counted); $.field=regex matches a field of a JSON line instead (docs/REDACTION.md)"`
	Keep         string   `envconfig:"KEEP" desc:"like DROP: when set, only lines matching at least one of these are shipped (the others counted)"`
	Redact       []string `envconfig:"REDACT" desc:"secret detectors whose matches become [REDACTED:name] before the buffer: all, or names such as jwt,bearer,secret_kv,credit_card (-name removes one); docs/REDACTION.md lists them"`
	RedactCustom string   `envconfig:"REDACT_CUSTOM" desc:"extra detectors as name=regex, comma-separated (\\, is a comma inside one); a match, or its first capturing group, becomes [REDACTED:name]"`

	IngestAddr         string        `envconfig:"INGEST_ADDR" desc:"listen address of the ingest endpoints (/v1/logs OTLP, /v1/json, /v1/text); empty: off. A bare :port is loopback (127.0.0.1:port); any other interface needs its IP, e.g. 0.0.0.0:4318"`
	IngestMaxBodyBytes Size          `envconfig:"INGEST_MAX_BODY_BYTES" default:"0" desc:"largest request body, as sent and after decompression (larger: 413); 0 means min(4MiB, BUFFER_MAX_BYTES/16)"`
	IngestMaxWait      time.Duration `envconfig:"INGEST_MAX_WAIT" default:"2s" desc:"longest a request waits for a free slot (then 429) or for room in a full buffer (then 503), both with Retry-After"`
	IngestConcurrency  int           `envconfig:"INGEST_CONCURRENCY" default:"4" desc:"requests read, decoded and appended at once; each holds up to 5 times INGEST_MAX_BODY_BYTES of memory"`
	IngestTokenFile    string        `envconfig:"INGEST_TOKEN_FILE" redact:"file" desc:"file holding the bearer token clients must send (Authorization: Bearer …); re-read when it changes; empty: no authentication"`
	IngestTLSCertFile  string        `envconfig:"INGEST_TLS_CERT_FILE" desc:"PEM certificate (chain) to serve the ingest endpoints over HTTPS, with INGEST_TLS_KEY_FILE; re-read when it changes"`
	IngestTLSKeyFile   string        `envconfig:"INGEST_TLS_KEY_FILE" redact:"file" desc:"PEM private key of INGEST_TLS_CERT_FILE"`

	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"25s" desc:"after SIGTERM, time to read the last lines and drain the sinks"`
	ShutdownQuiet   time.Duration `envconfig:"SHUTDOWN_QUIET" default:"1s" desc:"after SIGTERM, keep reading until every file has been quiet this long; less than SHUTDOWN_TIMEOUT, and the default at most a quarter of it"`
	StallTimeout    time.Duration `envconfig:"STALL_TIMEOUT" default:"5m" desc:"a sink with a backlog that delivers nothing this long is reported stalled"`

	// Pod identity from the Kubernetes Downward API (unprefixed by design).
	Pod       string `ignored:"true"`
	Namespace string `ignored:"true"`
	PodUID    string `ignored:"true"`
	Node      string `ignored:"true"`

	// SinkList is SINKS parsed, with each sink's own variables.
	SinkList []Sink `ignored:"true"`
	// Ingest is INGEST_ADDR resolved; nil when the endpoints are off.
	Ingest *Ingest `ignored:"true"`

	failed map[string]bool // fields whose value did not parse: no derived checks on them
	set    setter          // whether a field's variable was given (derived defaults)
}

// Sink is one configured sink with its own variables, read from
// SKIFF_<NAME>_*. Exactly one of Stdout, Kafka, HTTP and OTLP is set.
type Sink struct {
	Name   string
	Type   string
	Stdout *Stdout
	Kafka  *Kafka
	HTTP   *HTTP
	OTLP   *OTLP
}

// Prefix is the variable prefix of the sink's own settings, e.g. "SKIFF_LOKI_".
func (s Sink) Prefix() string { return Prefix + "_" + strings.ToUpper(s.Name) + "_" }

// sinkTypes maps a sink type to a constructor of its settings struct.
var sinkTypes = map[string]func() any{
	"stdout": func() any { return new(Stdout) },
	"kafka":  func() any { return new(Kafka) },
	"http":   func() any { return new(HTTP) },
	"otlp":   func() any { return new(OTLP) },
}

// SinkTypes lists the sink types, sorted.
func SinkTypes() []string {
	t := make([]string, 0, len(sinkTypes))
	for k := range sinkTypes {
		t = append(t, k)
	}
	sort.Strings(t)
	return t
}

var sinkName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// kubeServiceVar matches what Kubernetes injects for a Service named skiff…
// (docker-link style variables), after SKIFF_ or SKIFF_<NAME>_.
var kubeServiceVar = regexp.MustCompile(`^SKIFF_([A-Z0-9_]+_)?(SERVICE_HOST|SERVICE_PORT|SERVICE_PORT_[A-Z0-9_]+|PORT|PORT_[A-Z0-9_]+)$`)

// Load reads the configuration from the process environment and validates
// it. The error, if any, is a Problems listing everything wrong.
func Load() (*Config, error) {
	var ps Problems
	c := &Config{}
	c.failed = map[string]bool{}
	c.set = envSetter(Prefix, c)
	ps = append(ps, process(Prefix, c, c.failed)...)
	c.derive(c.set)
	c.Pod, c.Namespace = os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	c.PodUID, c.Node = os.Getenv("POD_UID"), os.Getenv("NODE_NAME")

	known := map[string]bool{}
	for _, v := range Vars(Prefix+"_", c) {
		known[v.Name] = true
	}
	seen := map[string]bool{}
	for _, spec := range c.Sinks {
		s, err := parseSinkSpec(spec)
		if err != nil {
			ps = append(ps, err)
			continue
		}
		if seen[s.Name] {
			ps = append(ps, fmt.Errorf("SKIFF_SINKS: sink name %q is used twice; give each sink a unique name (name:type)", s.Name))
			continue
		}
		seen[s.Name] = true
		settings := sinkTypes[s.Type]()
		prefix := strings.TrimSuffix(s.Prefix(), "_")
		ps = append(ps, process(prefix, settings, nil)...)
		if d, ok := settings.(interface{ derive(setter) }); ok {
			d.derive(envSetter(prefix, settings))
		}
		for _, v := range Vars(s.Prefix(), settings) {
			known[v.Name] = true
		}
		ps = append(ps, retiredVars(s, known)...)
		switch st := settings.(type) {
		case *Stdout:
			s.Stdout = st
			ps = append(ps, st.Validate(s.Prefix())...)
		case *Kafka:
			s.Kafka = st
			ps = append(ps, st.Validate(s.Prefix())...)
		case *HTTP:
			s.HTTP = st
			ps = append(ps, st.Validate(s.Prefix())...)
		case *OTLP:
			s.OTLP = st
			ps = append(ps, st.Validate(s.Prefix())...)
		}
		c.SinkList = append(c.SinkList, s)
	}
	ps = append(ps, unknownVars(os.Environ(), known)...)
	ps = append(ps, c.validate()...)
	if len(ps) > 0 {
		return c, ps
	}
	return c, nil
}

func parseSinkSpec(spec string) (Sink, error) {
	spec = strings.TrimSpace(spec)
	name, typ, named := strings.Cut(spec, ":")
	if !named {
		typ = name
	}
	if _, ok := sinkTypes[typ]; !ok {
		return Sink{}, fmt.Errorf("SKIFF_SINKS: %q has unknown sink type %q (accepted: %s)", spec, typ, strings.Join(SinkTypes(), ", "))
	}
	if !sinkName.MatchString(name) {
		return Sink{}, fmt.Errorf("SKIFF_SINKS: %q has invalid sink name %q (accepted: [a-z][a-z0-9_]*)", spec, name)
	}
	return Sink{Name: name, Type: typ}, nil
}

func (c *Config) validate() []error {
	var ps []error
	ps = append(ps, c.validateIngest()...)
	ps = append(ps, c.validateFilter()...)
	if len(c.Paths) == 0 && c.IngestAddr == "" {
		ps = append(ps, errors.New("SKIFF_PATHS is required (unless SKIFF_INGEST_ADDR is set): comma-separated globs of the files to tail, e.g. /var/log/app/*.log"))
	}
	for _, p := range c.Paths {
		if !filepath.IsAbs(p) {
			ps = append(ps, fmt.Errorf("SKIFF_PATHS: %q is not absolute (accepted: absolute globs, e.g. /var/log/app/**/*.log)", p))
		} else if !doublestar.ValidatePattern(p) {
			ps = append(ps, fmt.Errorf("SKIFF_PATHS: %q is not a valid glob", p))
		}
	}
	for _, p := range c.Exclude {
		if !doublestar.ValidatePattern(p) {
			ps = append(ps, fmt.Errorf("SKIFF_EXCLUDE: %q is not a valid glob", p))
		}
	}
	if len(c.Sinks) == 0 {
		ps = append(ps, errors.New("SKIFF_SINKS is empty (accepted: stdout, kafka, http, otlp or name:type, comma-separated)"))
	}
	ps = oneOf(ps, "SKIFF_BUFFER_WHEN_FULL", c.BufferWhenFull, "block", "drop_oldest", "drop_newest")
	ps = oneOf(ps, "SKIFF_BUFFER_FSYNC", c.BufferFsync, "interval", "batch", "never")
	ps = oneOf(ps, "SKIFF_LOG_LEVEL", c.LogLevel, "debug", "info", "warn", "error")
	ps = oneOf(ps, "SKIFF_READ_FROM", c.ReadFrom, "head", "tail")
	ps = oneOf(ps, "SKIFF_PARSE", c.Parse, "none", "json")
	if c.BufferMaxBytes < 1<<20 && !c.failed["BufferMaxBytes"] {
		ps = append(ps, fmt.Errorf("SKIFF_BUFFER_MAX_BYTES: %s is too small (accepted: at least 1MiB)", c.BufferMaxBytes))
	}
	if c.BufferSegmentBytes != 0 && (c.BufferSegmentBytes < 64<<10 || c.BufferSegmentBytes > c.BufferMaxBytes/2) {
		ps = append(ps, fmt.Errorf("SKIFF_BUFFER_SEGMENT_BYTES: %s is out of range (accepted: 0 for automatic, or 64KiB up to half of SKIFF_BUFFER_MAX_BYTES)", c.BufferSegmentBytes))
	}
	if c.MaxLineBytes < 1<<10 {
		ps = append(ps, fmt.Errorf("SKIFF_MAX_LINE_BYTES: %s is too small (accepted: at least 1KiB)", c.MaxLineBytes))
	}
	// A line up to a quarter of the buffer is kept whole: the buffer takes
	// a record that large (with its metadata) in a segment of its own.
	if c.MaxLineBytes > c.BufferMaxBytes/4 && !c.failed["BufferMaxBytes"] && !c.failed["MaxLineBytes"] {
		ps = append(ps, fmt.Errorf("SKIFF_MAX_LINE_BYTES: %s is too large for SKIFF_BUFFER_MAX_BYTES=%s (accepted: at most a quarter of it, %s)", c.MaxLineBytes, c.BufferMaxBytes, c.BufferMaxBytes/4))
	}
	if c.set != nil && c.set("ShutdownQuiet") && c.ShutdownQuiet >= c.ShutdownTimeout && c.ShutdownQuiet > 0 && !c.failed["ShutdownQuiet"] && !c.failed["ShutdownTimeout"] {
		ps = append(ps, fmt.Errorf("SKIFF_SHUTDOWN_QUIET: %s leaves no time within SKIFF_SHUTDOWN_TIMEOUT=%s (accepted: less than it; about a quarter leaves the sinks time to drain)", c.ShutdownQuiet, c.ShutdownTimeout))
	}
	for _, d := range []struct {
		name, field string
		v           time.Duration
	}{
		{"SKIFF_BUFFER_FSYNC_INTERVAL", "BufferFsyncInterval", c.BufferFsyncInterval},
		{"SKIFF_SCAN_INTERVAL", "ScanInterval", c.ScanInterval},
		{"SKIFF_MULTILINE_TIMEOUT", "MultilineTimeout", c.MultilineTimeout},
		{"SKIFF_SHUTDOWN_TIMEOUT", "ShutdownTimeout", c.ShutdownTimeout},
		{"SKIFF_STALL_TIMEOUT", "StallTimeout", c.StallTimeout},
		{"SKIFF_INGEST_MAX_WAIT", "IngestMaxWait", c.IngestMaxWait},
		{"SKIFF_CLOSE_INACTIVE", "CloseInactive", c.CloseInactive},
		{"SKIFF_PARTIAL_FLUSH", "PartialFlush", c.PartialFlush},
	} {
		if d.v <= 0 && !c.failed[d.field] {
			ps = append(ps, fmt.Errorf("%s: %s is not accepted (accepted: a positive duration such as 500ms, 5s, 1m)", d.name, d.v))
		}
	}
	// A derived SHUTDOWN_QUIET may be 0 (SHUTDOWN_TIMEOUT under 4ns): no wait.
	if !c.failed["ShutdownQuiet"] && c.ShutdownQuiet < 0 || (c.ShutdownQuiet == 0 && !c.failed["ShutdownQuiet"] && (c.set == nil || c.set("ShutdownQuiet"))) {
		ps = append(ps, fmt.Errorf("SKIFF_SHUTDOWN_QUIET: %s is not accepted (accepted: a positive duration such as 500ms, 5s, 1m)", c.ShutdownQuiet))
	}
	if (c.ReadDelay < 0 || c.ReadDelay > time.Second) && !c.failed["ReadDelay"] {
		ps = append(ps, fmt.Errorf("SKIFF_READ_DELAY: %s is not accepted (accepted: 0 to 1s, such as 10ms)", c.ReadDelay))
	}
	if c.MultilineStart != "" {
		if _, err := regexp.Compile(c.MultilineStart); err != nil {
			ps = append(ps, fmt.Errorf("SKIFF_MULTILINE_START: %q is not a valid regular expression: %v", c.MultilineStart, err))
		}
	}
	if c.TimeField != "" && c.Parse != "json" {
		ps = append(ps, fmt.Errorf("SKIFF_TIME_FIELD: %q needs SKIFF_PARSE=json", c.TimeField))
	}
	for _, s := range c.SinkList {
		if s.OTLP != nil && s.OTLP.SeverityField != "" && c.Parse != "json" && c.IngestAddr == "" {
			ps = append(ps, fmt.Errorf("%sSEVERITY_FIELD: %q needs JSON records: SKIFF_PARSE=json, or SKIFF_INGEST_ADDR for objects POSTed to /v1/json", s.Prefix(), s.OTLP.SeverityField))
		}
	}
	if err := checkWritable(c.DataDir); err != nil {
		ps = append(ps, fmt.Errorf("SKIFF_DATA_DIR: %q is not usable: %v (accepted: a writable directory)", c.DataDir, err))
	}
	return ps
}

func oneOf(ps []error, name, v string, accepted ...string) []error {
	for _, a := range accepted {
		if v == a {
			return ps
		}
	}
	return append(ps, fmt.Errorf("%s: %q is not accepted (accepted: %s)", name, v, strings.Join(accepted, ", ")))
}

// checkWritable creates dir if needed and proves it takes a file.
func checkWritable(dir string) error {
	if dir == "" {
		return errors.New("empty path")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".skiff-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	cerr := f.Close()
	rerr := os.Remove(name)
	return errors.Join(werr, cerr, rerr)
}

// process decodes spec's fields from prefix_<tag> one field at a time, so
// that one bad value does not hide the next (envconfig stops at the first).
func process(prefix string, spec any, failed map[string]bool) []error {
	var ps []error
	v := reflect.ValueOf(spec).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Tag.Get("ignored") == "true" || !f.IsExported() {
			continue
		}
		if embedded(f) {
			ps = append(ps, process(prefix, v.Field(i).Addr().Interface(), failed)...)
			continue
		}
		// The full name goes into the tag and the prefix stays empty:
		// given a prefix, envconfig falls back to the unprefixed name, and
		// the application's own LOG_LEVEL must never configure skiff.
		key := f.Tag.Get("envconfig")
		tag := reflect.StructTag(strings.Replace(string(f.Tag), `envconfig:"`+key+`"`, `envconfig:"`+prefix+"_"+key+`"`, 1))
		one := reflect.New(reflect.StructOf([]reflect.StructField{{Name: f.Name, Type: f.Type, Tag: tag}}))
		if err := envconfig.Process("", one.Interface()); err != nil {
			if failed != nil {
				failed[f.Name] = true
			}
			ps = append(ps, describe(prefix, f, err))
			continue
		}
		fv := one.Elem().Field(0)
		if ss, ok := fv.Interface().([]string); ok {
			fv = reflect.ValueOf(trimList(ss))
		}
		v.Field(i).Set(fv)
	}
	return ps
}

func describe(prefix string, f reflect.StructField, err error) error {
	name := prefix + "_" + f.Tag.Get("envconfig")
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %q is not accepted: %v (expected %s)", name, pe.Value, pe.Err, typeName(f.Type))
	}
	if strings.Contains(err.Error(), "required") {
		return fmt.Errorf("%s is required: %s", name, f.Tag.Get("desc"))
	}
	return fmt.Errorf("%s: %v", name, err)
}

func trimList(ss []string) []string {
	out := ss[:0]
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// KeyValues is a comma-separated list of key=value pairs.
type KeyValues map[string]string

// Decode implements envconfig.Decoder.
func (kv *KeyValues) Decode(v string) error {
	m := KeyValues{}
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", item)
		}
		m[k] = strings.TrimSpace(val)
	}
	*kv = m
	return nil
}

// Problems is every configuration problem found.
type Problems []error

func (p Problems) Error() string {
	s := make([]string, len(p))
	for i, e := range p {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.Is/As see each problem.
func (p Problems) Unwrap() []error { return p }

func unknownVars(environ []string, known map[string]bool) []error {
	var ps []error
	names := make([]string, 0, len(known))
	for k := range known {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, Prefix+"_") || known[name] || kubeServiceVar.MatchString(name) {
			continue
		}
		msg := fmt.Sprintf("%s is not a skiff variable", name)
		if best := closest(name, names); best != "" {
			msg += fmt.Sprintf("; did you mean %s?", best)
		} else {
			msg += " (run `skiff env` for the list; a sink's variables need the sink in SKIFF_SINKS)"
		}
		ps = append(ps, errors.New(msg))
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Error() < ps[j].Error() })
	return ps
}

// closest returns the known name nearest to name by edit distance, if it
// is near enough to be a likely typo.
func closest(name string, known []string) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		if d := editDistance(name, k); d < bestD {
			best, bestD = k, d
		}
	}
	if bestD <= 3 || bestD <= len(name)/4 {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// retired are sink variables skiff no longer reads, with what replaced
// them: a value set for one is an error rather than silently ignored.
var retired = map[string]map[string]string{
	"http":  {"BREAKER_COOLDOWN": breakerCooldownGone},
	"kafka": {"BREAKER_COOLDOWN": breakerCooldownGone},
	"otlp":  {"BREAKER_COOLDOWN": breakerCooldownGone},
}

const breakerCooldownGone = "is no longer read: an open circuit no longer waits a fixed cool-down; it sends one probe at a time, " +
	"spaced by the backoff ({prefix}BACKOFF_FIRST_MINUTE_MAX during the first minute of an outage, {prefix}BACKOFF_MAX after); remove it, " +
	"or set those to space the probes further"

// retiredVars reports the retired variables set for sink s and marks them
// known (so that they are not also reported as unknown).
func retiredVars(s Sink, known map[string]bool) []error {
	var ps []error
	for suffix, msg := range retired[s.Type] {
		name := s.Prefix() + suffix
		known[name] = true
		if _, ok := os.LookupEnv(name); ok {
			ps = append(ps, errors.New(name+" "+strings.ReplaceAll(msg, "{prefix}", s.Prefix())))
		}
	}
	return ps
}
