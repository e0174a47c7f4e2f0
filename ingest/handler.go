package ingest

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

// format is how a request body is encoded, which also decides how its
// answer is.
type format int

const (
	formatUnknown   format = iota
	formatOTLPProto        // /v1/logs, application/x-protobuf
	formatOTLPJSON         // /v1/logs, application/json
	formatJSON             // /v1/json, application/json: an object or an array of them
	formatNDJSON           // /v1/json, application/x-ndjson and kin: an object per line
	formatText             // /v1/text, text/plain
)

// Paths of the endpoints.
const (
	pathOTLP = "/v1/logs"
	pathJSON = "/v1/json"
	pathText = "/v1/text"
)

// retryAfter is the Retry-After of 429 and 503 answers, in seconds.
const retryAfter = "1"

// gRPC status codes carried in google.rpc.Status (OTLP error bodies).
const (
	grpcInvalidArgument   = 3
	grpcNotFound          = 5
	grpcResourceExhausted = 8
	grpcUnimplemented     = 12
	grpcInternal          = 13
	grpcUnavailable       = 14
	grpcUnauthenticated   = 16
)

func endpointOf(path string) string {
	switch path {
	case pathOTLP:
		return endpointOTLP
	case pathJSON:
		return endpointJSON
	case pathText:
		return endpointText
	}
	return endpointOther
}

// formatOf maps an endpoint and a Content-Type to a format.
func formatOf(endpoint, contentType string) format {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return formatUnknown
	}
	switch endpoint {
	case endpointOTLP:
		switch mt {
		case "application/x-protobuf", "application/protobuf":
			return formatOTLPProto
		case "application/json":
			return formatOTLPJSON
		}
	case endpointJSON:
		switch mt {
		case "application/json":
			return formatJSON
		case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
			return formatNDJSON
		}
	case endpointText:
		if mt == "text/plain" {
			return formatText
		}
	}
	return formatUnknown
}

// accepted lists what an endpoint takes, for 415 answers.
var accepted = map[string]string{
	endpointOTLP: "application/x-protobuf or application/json (OTLP/HTTP)",
	endpointJSON: "application/json (an object or an array of objects) or application/x-ndjson (an object per line)",
	endpointText: "text/plain (a record per line)",
}

// ServeHTTP answers one request. The order matters: what can be refused
// without reading the body (path, method, token, type, declared length) is
// refused first, and no body is read before a slot is free.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.inFlight.Add(1)
	s.m.inFlight.Inc()
	s.lastActive.Store(start.UnixNano())
	defer func() {
		s.inFlight.Add(-1)
		s.m.inFlight.Dec()
		s.lastActive.Store(time.Now().UnixNano())
	}()
	ep := endpointOf(r.URL.Path)
	// Before the type is checked, answers follow what the client sent.
	fmtGuess := formatOf(ep, r.Header.Get("Content-Type"))
	if ep == endpointOther {
		s.refuse(w, ep, formatUnknown, &reject{status: 404, reason: reasonNotFound,
			msg: fmt.Sprintf("no endpoint %s: POST to %s (OTLP/HTTP logs), %s (JSON) or %s (text lines)", r.URL.Path, pathOTLP, pathJSON, pathText)})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.refuse(w, ep, fmtGuess, &reject{status: 405, reason: reasonMethod, msg: fmt.Sprintf("%s %s: only POST is accepted", r.Method, r.URL.Path)})
		return
	}
	if rej := s.authorize(r); rej != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="skiff"`)
		s.refuse(w, ep, fmtGuess, rej)
		return
	}
	f := fmtGuess
	if f == formatUnknown {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "none"
		}
		s.refuse(w, ep, f, &reject{status: 415, reason: reasonMediaType, msg: fmt.Sprintf("Content-Type %s is not accepted on %s (accepted: %s)", ct, r.URL.Path, accepted[ep])})
		return
	}
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		s.refuse(w, ep, f, &reject{status: 415, reason: reasonMediaType, msg: fmt.Sprintf("Content-Encoding %s is not accepted (accepted: gzip, or none)", enc)})
		return
	}
	if r.ContentLength > s.o.MaxBodyBytes {
		s.refuse(w, ep, f, tooLarge(s.o.MaxBodyBytes, "as sent"))
		return
	}
	if rej := s.acquire(r.Context()); rej != nil {
		if rej.status == 429 {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.refuse(w, ep, f, rej)
		return
	}
	defer func() { <-s.slots }()

	q := getRequest(&s.o, start, s.nextSource.Add(1))
	defer q.release()
	n, err := s.readBody(q, r, gz)
	s.m.bytes.WithLabelValues(ep).Add(float64(n))
	if err == nil {
		err = q.decode(f)
	}
	if err == nil && q.records > 0 {
		// The client's own deadline may be shorter; its hanging up cancels
		// r.Context(), and nothing is appended then.
		ctx, cancel := context.WithTimeout(r.Context(), s.o.MaxWait)
		err = appendError(s.app.AppendAll(ctx, &q.batch), r.Context())
		cancel()
	}
	if err != nil {
		var rej *reject
		if !errors.As(err, &rej) {
			rej = &reject{status: 500, reason: reasonWriteError, msg: err.Error()}
		}
		if rej.status == 503 {
			w.Header().Set("Retry-After", retryAfter)
		}
		s.refuse(w, ep, f, rej)
		return
	}
	s.m.records.WithLabelValues(ep).Add(float64(q.records))
	s.m.filtered.WithLabelValues(ep).Add(float64(q.filtered))
	s.m.rejectedRecords.WithLabelValues(ep).Add(float64(q.rejected))
	s.records.Add(q.records)
	s.accepted.Add(1)
	s.answer(w, ep, f, q)
	s.m.ack.WithLabelValues(ep).Observe(time.Since(start).Seconds())
}

// decode fills q's batch from its body.
func (q *request) decode(f format) error {
	switch f {
	case formatOTLPProto:
		return q.otlpBatch(q.body)
	case formatOTLPJSON:
		pb, err := transcodeRequest(q.pb[:0], q.body)
		if err != nil {
			return err
		}
		q.pb = pb
		return q.otlpBatch(pb)
	case formatJSON, formatNDJSON:
		return q.jsonBatch(q.body, f == formatNDJSON)
	case formatText:
		return q.textBatch(q.body)
	}
	return malformed("unknown format")
}

// appendError maps the buffer's answer to what the client is told.
func appendError(err error, reqCtx context.Context) error {
	switch {
	case err == nil:
		return nil
	case reqCtx.Err() != nil:
		return &reject{status: 499, reason: reasonClientGone, msg: "the client went away before the records were appended"}
	case errors.Is(err, buffer.ErrRecordTooLarge):
		return &reject{status: 413, reason: reasonTooLarge, msg: fmt.Sprintf("request too large for the buffer: %v", err)}
	case errors.Is(err, buffer.ErrClosed):
		return &reject{status: 503, reason: reasonShutdown, msg: "skiff is shutting down; retry"}
	case errors.Is(err, buffer.ErrFull):
		return &reject{status: 503, reason: reasonFull, msg: "the buffer is full (its sinks are behind); retry later"}
	}
	return &reject{status: 503, reason: reasonWriteError, msg: fmt.Sprintf("the buffer cannot write; retry later: %v", err)}
}

func tooLarge(limit int64, how string) *reject {
	return &reject{status: 413, reason: reasonTooLarge, msg: fmt.Sprintf("body larger than %d bytes %s (SKIFF_INGEST_MAX_BODY_BYTES)", limit, how)}
}

// authorize checks the bearer token, in constant time (of the token's
// hash: the length is not revealed either).
func (s *Server) authorize(r *http.Request) *reject {
	if s.token == nil {
		return nil
	}
	want, err := s.token.Value()
	if err != nil {
		s.log.Warn("ingest token file cannot be re-read; the last token stays in use", "err", err)
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return &reject{status: 401, reason: reasonUnauthorized, msg: "missing bearer token (Authorization: Bearer <token>)"}
	}
	g, w := sha256.Sum256([]byte(strings.TrimSpace(got))), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(g[:], w[:]) != 1 {
		return &reject{status: 401, reason: reasonUnauthorized, msg: "wrong bearer token"}
	}
	return nil
}

// acquire waits for a request slot, for at most MaxWait.
func (s *Server) acquire(ctx context.Context) *reject {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(s.o.MaxWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &reject{status: 499, reason: reasonClientGone, msg: "the client went away while waiting"}
	case <-t.C:
		return &reject{status: 429, reason: reasonBusy, msg: fmt.Sprintf("%d requests are in progress (SKIFF_INGEST_CONCURRENCY); retry", s.o.Concurrency)}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readBody reads the body into q.body, decompressing it, within
// MaxBodyBytes both as sent and decompressed: reading stops one byte past
// the limit, so a gzip bomb costs no more than the limit. It returns the
// bytes read (decompressed).
func (s *Server) readBody(q *request, r *http.Request, gz bool) (int64, error) {
	limit := s.o.MaxBodyBytes
	wire := &countingReader{r: io.LimitReader(r.Body, limit+1)}
	var src io.Reader = wire
	var zr *gzip.Reader
	if gz {
		zr = getGzip()
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(wire)
		} else {
			err = zr.Reset(wire)
		}
		if err != nil {
			if zr != nil {
				gzipReaders.Put(zr)
			}
			return 0, s.bodyError(r, wire, limit, fmt.Errorf("gzip: %w", err))
		}
		defer gzipReaders.Put(zr)
		src = io.LimitReader(zr, limit+1)
	}
	if n := r.ContentLength; n > 0 && !gz && int64(cap(q.body)) < n {
		q.body = make([]byte, 0, n)
	}
	b := q.body[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := src.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			q.body = b
			if !gz || wire.n > limit {
				return int64(len(b)), tooLarge(limit, "as sent")
			}
			return int64(len(b)), tooLarge(limit, "after decompression")
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			q.body = b
			return int64(len(b)), s.bodyError(r, wire, limit, err)
		}
	}
	q.body = b
	if wire.n > limit {
		return int64(len(b)), tooLarge(limit, "as sent")
	}
	return int64(len(b)), nil
}

// bodyError says why a body could not be read.
func (s *Server) bodyError(r *http.Request, wire *countingReader, limit int64, err error) error {
	var ne net.Error
	switch {
	case wire.n > limit:
		return tooLarge(limit, "as sent")
	case r.Context().Err() != nil:
		return &reject{status: 499, reason: reasonClientGone, msg: "the client went away while sending"}
	case errors.As(err, &ne) && ne.Timeout():
		return &reject{status: 408, reason: reasonTimeout, msg: "the body did not arrive in time"}
	}
	return malformed("reading the body: %v", err)
}

// refuse answers a refused request, in the form its endpoint uses.
func (s *Server) refuse(w http.ResponseWriter, ep string, f format, rej *reject) {
	s.m.rejected.WithLabelValues(ep, rej.reason).Inc()
	s.m.requests.WithLabelValues(ep, s.m.code(rej.status)).Inc()
	s.requests.Add(1)
	s.refused.Add(1)
	if rej.status == 499 {
		return // nobody to answer
	}
	s.log.Debug("ingest request refused", "endpoint", ep, "status", rej.status, "reason", rej.reason, "err", rej.msg)
	var body []byte
	switch {
	case ep == endpointOTLP && f == formatOTLPProto:
		w.Header().Set("Content-Type", "application/x-protobuf")
		body = appendStatus(nil, grpcCode(rej.status), rej.msg)
	case ep == endpointOTLP:
		w.Header().Set("Content-Type", "application/json")
		body = appendJSONStatus(nil, grpcCode(rej.status), rej.msg)
	default:
		w.Header().Set("Content-Type", "application/json")
		body = append(appendJSONField([]byte(`{"error":`), rej.msg), '}', '\n')
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rej.status)
	_, _ = w.Write(body) // a client that went away cannot be told
}

// answer acknowledges a request whose records are in the buffer.
func (s *Server) answer(w http.ResponseWriter, ep string, f format, q *request) {
	s.m.requests.WithLabelValues(ep, s.m.code(200)).Inc()
	s.requests.Add(1)
	var body []byte
	switch {
	case f == formatOTLPProto:
		w.Header().Set("Content-Type", "application/x-protobuf")
		if q.rejected > 0 {
			body = appendPartialSuccess(q.other[:0], q.rejected, partialMessage(q))
		}
	case f == formatOTLPJSON:
		w.Header().Set("Content-Type", "application/json")
		if q.rejected > 0 {
			body = appendJSONPartialSuccess(q.other[:0], q.rejected, partialMessage(q))
		} else {
			body = []byte("{}")
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		body = strconv.AppendInt(append(q.other[:0], `{"accepted":`...), q.records, 10)
		body = append(body, '}', '\n')
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func partialMessage(q *request) string {
	return fmt.Sprintf("%d log record(s) rejected, the others accepted: %s", q.rejected, q.whyRej)
}

func grpcCode(status int) int32 {
	switch status {
	case 400, 413, 415:
		return grpcInvalidArgument
	case 401:
		return grpcUnauthenticated
	case 404:
		return grpcNotFound
	case 405:
		return grpcUnimplemented
	case 429:
		return grpcResourceExhausted
	case 503:
		return grpcUnavailable
	}
	return grpcInternal
}

// appendJSONField appends s as a JSON string.
func appendJSONField(dst []byte, s string) []byte {
	return record.AppendString(dst, []byte(s))
}
