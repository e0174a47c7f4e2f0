package config

// OTLP configures an OTLP/HTTP logs sink (SKIFF_<NAME>_*, name defaults to
// "otlp"). docs/OTLP.md describes the mapping of records to OTLP log
// records and what each answer of the endpoint means.
type OTLP struct {
	URL         string `envconfig:"URL" required:"true" redact:"url" desc:"OTLP/HTTP logs endpoint; a bare base URL (no path, e.g. http://collector:4318) gets /v1/logs, any other URL is used as given"`
	Encoding    string `envconfig:"ENCODING" default:"protobuf" desc:"protobuf (application/x-protobuf) or json (the OTLP JSON mapping)"`
	Compression string `envconfig:"COMPRESSION" default:"gzip" desc:"request body compression: gzip (the fastest level, as the OpenTelemetry Collector) or none"`

	HTTPClient

	RetryableStatus []int `envconfig:"RETRYABLE_STATUS" default:"429,502,503,504" desc:"HTTP statuses retried with backoff (Retry-After honoured); OTLP/HTTP retries exactly 429, 502, 503 and 504 and forbids retrying any other 4xx or 5xx, which skiff dead-letters (401, 403 and 404 are retried: the configuration is wrong, not the data)"`

	SeverityField   string `envconfig:"SEVERITY_FIELD" desc:"the top-level member of a JSON record (PARSE=json, or an object POSTed to the ingest /v1/json) holding the level: text (trace, debug, info, warn, error, fatal, …) or a number (see SEVERITY_NUMBERS); empty: no severity"`
	SeverityNumbers string `envconfig:"SEVERITY_NUMBERS" default:"syslog" desc:"what a numeric level means: syslog (0 emergency … 7 debug), otel (1–24, the SeverityNumber itself) or bunyan (pino and bunyan: 10 trace … 60 fatal)"`
}

// OTLP encodings.
const (
	EncodingProtobuf = "protobuf"
	EncodingJSON     = "json"
)

// Validate reports every problem with o.
func (o *OTLP) Validate(prefix string) []error {
	var ps []error
	ps = append(ps, checkHTTPURL(prefix, o.URL)...)
	ps = oneOf(ps, prefix+"ENCODING", o.Encoding, EncodingProtobuf, EncodingJSON)
	ps = oneOf(ps, prefix+"COMPRESSION", o.Compression, "gzip", "none")
	ps = oneOf(ps, prefix+"SEVERITY_NUMBERS", o.SeverityNumbers, "syslog", "otel", "bunyan")
	ps = append(ps, o.HTTPClient.validate(prefix)...)
	ps = append(ps, checkStatuses(prefix, o.RetryableStatus)...)
	return ps
}
