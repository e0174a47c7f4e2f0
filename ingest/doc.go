// Package ingest is skiff's second source, beside the tailer: a local HTTP
// server that applications send their logs to — OTLP/HTTP logs
// (/v1/logs, protobuf or JSON), JSON objects (/v1/json) and text lines
// (/v1/text) — so that skiff, not the application, carries retries and
// outages (the ambassador pattern).
//
// Guarantees:
//
//   - A request is acknowledged (200) only once every one of its records is
//     in the buffer, accepted under its fsync policy (in the page cache, so
//     a process crash loses none of them; fsynced under "batch"). A request
//     is appended whole or not at all (Appender.AppendAll): an answer other
//     than 200 means none of its records was appended, and a client that
//     retries it sends no duplicate. An OTLP record refused alone (a trace
//     or span ID of the wrong length) is reported in partial_success; the
//     rest of its request is appended whole.
//   - No request waits for the buffer for long: a full buffer, or one that
//     cannot write, is answered 503 with Retry-After after MaxWait at most,
//     and more requests than Concurrency wait at most MaxWait for a slot,
//     then get 429 with Retry-After.
//   - What can be checked before the body is read is (path, method, token,
//     Content-Type and Content-Encoding, declared length); a body is read
//     only within MaxBodyBytes, as sent and after decompression, so a gzip
//     bomb costs at most the limit. Bad input gets a 4xx naming the problem.
//   - Records carry their Origin (record.OriginOTLP, OriginJSON, OriginText)
//     and, for OTLP, the resource, scope and LogRecord fields as the client
//     sent them (record.OTLPParts). Their ID is stable: Source is the
//     request's number, Offset the record's index in it.
//
// Concurrency: Listen starts nothing; Run serves until its ctx is done,
// then stops accepting, lets the requests in flight finish and returns.
// Each request is handled on its own goroutine (net/http's); at most
// Concurrency of them read, decode and append at once. Status, WaitQuiet
// and Addr are safe for concurrent use.
package ingest
