// Package http is the sink that POSTs batches of records to an HTTP
// endpoint as NDJSON, a JSON array, a Loki push request or an
// Elasticsearch bulk request. docs/HTTP.md is the user's reference:
// settings, formats, answers, metrics.
//
// Naming: every backend package is named after its directory (http,
// kafka, stdout) and holds one Sink type built by New, so callers read
// http.New and kafka.New. Inside this package the standard library's
// net/http is imported as nethttp; a caller that needs both imports this
// one under another name (cmd/skiff uses httpsink).
//
// Guarantees:
//   - At least once: Send returns nil only when the endpoint answered 2xx
//     for the records (for Elasticsearch, when every item of the bulk
//     response succeeded or was created by an earlier attempt) or they were
//     written to the dead letters. Every record carries its stable ID so
//     that receivers can deduplicate.
//   - Answers that say the endpoint is sick (5xx, RETRYABLE_STATUS, 429,
//     timeouts, connection errors) or misconfigured (401, 403, 404,
//     redirects) keep the records for the delivery loop to retry, honouring
//     Retry-After; only answers that refuse the data itself (413 and other
//     4xx, Elasticsearch item errors that are not retryable) dead-letter,
//     and then only the refused records: the batch is halved down to them.
//     When every record is refused for the same reason (two records sent
//     alone tell), the configuration is wrong, not the data: the records
//     are kept (KindConfig), like on 401.
//   - On error Send leaves in the batch only the records still undelivered.
//   - Tokens, passwords, header values read from files and the client
//     certificate are re-read when their files change, so rotated Secrets
//     take effect without a restart.
//
// The connection to the endpoint (auth, headers, TLS, proxy, timeout,
// request metrics) and the meaning of status codes are in
// sinks/internal/httpclient, shared with the other HTTP-based sinks; this
// package holds the formats, the splitting of refused batches and the
// Elasticsearch bulk response.
//
// Concurrency: Send and Close are safe for concurrent use (the delivery
// loop runs up to CONCURRENCY Sends at once). New reads the secret files
// and the TLS material once, failing if they cannot be read, and starts
// nothing; connections open with the first Send. (*Sink).LoopOptions sets
// the delivery-loop options the configuration decides.
package http
