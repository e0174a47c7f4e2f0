// Package httpclient is what every HTTP-based sink (sinks/http,
// sinks/otlp) shares below its own encoding: the connection to
// the endpoint and what its answers mean for delivery. A sink encodes its
// body, builds the request, and leaves the rest to a Client:
//
//	c, err := httpclient.New(httpclient.FromConfig(name, &cfg.HTTPClient, cfg.RetryableStatus, reg, log))
//	...
//	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, url, body)
//	req.ContentLength, req.GetBody = n, getBody
//	req.Header.Set("Content-Type", "application/x-protobuf")
//	resp, err := c.Do(ctx, req, okLimit) // err: *sinks.SendError, no answer
//	if err != nil {
//		return err // keep every record: which arrived is unknown
//	}
//	switch retry, rejected := c.Classify(resp); {
//	case rejected: // 413, other 4xx: the data was refused
//		// isolate the refused records and dead-letter them, reason resp.Err()
//	case retry != nil: // 5xx, RETRYABLE_STATUS, 429 with Retry-After, auth, redirects
//		return retry
//	}
//	// 2xx: delivered; resp.Body holds up to okLimit bytes of the answer
//
// What a Client owns:
//   - Credentials: basic or bearer auth, from the configuration or from
//     files; header values from files ("@/path"). Files are re-read when
//     their size or mtime changes (a rotated Secret or projected token
//     takes effect without a restart); a file that cannot be re-read
//     keeps its last value, with a rate-limited warning.
//   - TLS: CAs, a client certificate reloaded when its files change,
//     INSECURE_SKIP_VERIFY (warned about); the proxy from HTTPS_PROXY,
//     HTTP_PROXY and NO_PROXY; no redirect is followed (a redirect means
//     the URL is wrong).
//   - The timeout of one request, reading its answer included.
//   - The metrics skiff_sink_http_requests_total,
//     skiff_sink_http_request_duration_seconds and
//     skiff_sink_http_request_bytes_total, labelled with the sink.
//   - Classify and RetryAfter: status codes to SendError kinds and
//     Retry-After (seconds or an HTTP date) to a wait.
//
// What it leaves to the sink: the body (encoding, compression, buffer
// reuse), the URL, what a 2xx body says (an Elasticsearch bulk response's
// items, an OTLP partial success), isolating and dead-lettering refused
// records, and the sink's own metrics.
//
// Concurrency: a Client is safe for concurrent use, so one serves all of a
// sink's concurrent Sends. New starts no goroutine; connections open with
// the first request and CloseIdleConnections closes the idle ones.
package httpclient
