// Package otlp is the OTLP/HTTP logs sink: it POSTs each batch to an
// OpenTelemetry-native endpoint (the Collector, Loki 3, Elastic, vendors'
// OTLP gateways) as one ExportLogsServiceRequest, protobuf by default or
// the OTLP JSON mapping, gzipped by default. docs/OTLP.md is the user's
// reference: the mapping table, the answers, the settings.
//
// Layout:
//   - otlp.go: the Sink (requests, answers, dead letters, metrics).
//   - encode.go, encodejson.go: a batch's request in protobuf and JSON;
//     records grouped by resource, then scope.
//   - jsonbody.go: a JSON-object line as a kvlist_value body, and the
//     severity member found on the way; severity.go: levels to
//     SeverityNumbers.
//   - wire.go: protobuf field numbers and the writing helpers;
//     response.go: ExportLogsServiceResponse and google.rpc.Status.
//
// The encoder is hand-written on protowire: it streams each request into a
// buffer reused across requests (pooled per sink), writing every length
// prefix in place with the size reserved from an estimate, so that a
// record costs no allocation and no second pass. Records skiff made
// (tailed lines, ingested JSON and text) share one resource, from the pod
// identity and SKIFF_FIELDS; records that came in over OTLP carry their
// resource, scope and log record as protobuf bytes (record.OTLPParts),
// which are copied through unchanged.
//
// Guarantees:
//   - At least once: Send returns nil only when the endpoint answered 2xx
//     for the records or they were dead-lettered. Every record skiff made
//     carries its stable ID (log.record.uid) so that receivers can
//     deduplicate.
//   - Answers as OTLP/HTTP specifies: 429, 502, 503 and 504
//     (RETRYABLE_STATUS) are retried with backoff, honouring Retry-After;
//     400 and other 4xx refuse the data, and only the refused records are
//     dead-lettered (the batch is halved down to them); any other 5xx is
//     not retryable and dead-letters the batch whole. 401, 403, 404 and
//     redirects are retried (the configuration is wrong, not the data).
//     A partial_success is counted and logged, never retried.
//   - Answer bodies may quote records: they go only into dead-letter
//     reasons and debug logs, never into errors or /status.
//   - On error Send leaves in the batch only the records still
//     undelivered.
//
// The connection (auth, headers, TLS, proxy, timeout, request metrics)
// and status classification are sinks/internal/httpclient's, shared with
// sinks/http.
//
// Concurrency: Send and Close are safe for concurrent use (the delivery
// loop runs up to CONCURRENCY Sends at once, each with its own pooled
// encoder). New reads the secret files and the TLS material once, failing
// if they cannot be read, and starts nothing; connections open with the
// first Send. (*Sink).LoopOptions sets the delivery-loop options the
// configuration decides.
package otlp
