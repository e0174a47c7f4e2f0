package http

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"sync"

	"github.com/skiff-dev/skiff/internal/record"
)

// A body of a format whose encoding of a batch is the concatenation of
// the encodings of its records (ndjson, Elasticsearch bulk) is streamed:
// rendered a chunk of records at a time while the transport sends it, as
// a chunked request (Transfer-Encoding: chunked, which every HTTP/1.1
// server takes), instead of being built whole first. A 2,000-record batch
// is ~800 KB of JSON; streamed, a request holds one chunk buffer, and
// each byte is written once by the encoder and once by the kernel,
// without a copy through the transport's buffers between them.
//
// The transport may still be writing a body after Do returned (an early
// answer, a broken connection), while the delivery loop recycles the
// batch's memory once Send returns: so every chunk is rendered under the
// body's lock, and Send's end (finish) takes the lock and forbids any
// further rendering.

const (
	// streamChunk is how much a streamed body renders at a time: one
	// write to the connection (or to the compressor).
	streamChunk = 128 << 10
	// maxPooledChunk bounds the chunk buffers kept for reuse (a huge
	// record grows one).
	maxPooledChunk = 4 << 20
)

// streamable is a format whose batch encoding is the concatenation of its
// records' encodings; encodeWith is encode with the file's parts of the
// records' JSON cached in c across calls.
type streamable interface {
	bodyFormat
	encodeWith(dst []byte, recs []record.Record, c *record.FileParts) []byte
}

// errBodyDone is what a reader of a streamed body gets once Send is over.
var errBodyDone = errors.New("request body read after the attempt ended")

// streamBody renders recs in f, gzipped if gz, for every reader the
// transport asks for (the request's body, GetBody on a retried
// connection).
type streamBody struct {
	h    *Sink
	f    streamable
	recs []record.Record
	gz   bool

	mu      sync.Mutex
	done    bool  // Send is over: recs may be reused
	written int64 // bytes on the wire of the readers so far
	parts   record.FileParts
}

func (s *streamBody) reader() io.ReadCloser { return &streamReader{s: s} }

// finish forbids rendering recs any more, waiting for a chunk being
// rendered, and returns the bytes written so far.
func (s *streamBody) finish() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	return s.written
}

// render appends to dst the encoding of recs[i:] up to about streamChunk
// bytes and returns it with the index of the next record; ok is false
// once Send is over.
func (s *streamBody) render(dst []byte, i int) (out []byte, next int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return dst, i, false
	}
	for ; i < len(s.recs) && len(dst) < streamChunk; i++ {
		dst = s.f.encodeWith(dst, s.recs[i:i+1], &s.parts)
	}
	return dst, i, true
}

func (s *streamBody) count(n int) {
	s.mu.Lock()
	s.written += int64(n)
	s.mu.Unlock()
}

// streamReader is one reading of a streamBody. The transport uses WriteTo
// (io.Copy prefers it); Read serves any other reader.
type streamReader struct {
	s    *streamBody
	buf  *[]byte // the chunk buffer, pooled
	next int     // next record to render
	// mu guards active and closed: the transport may close the body
	// from another goroutine while WriteTo or Read runs, and the chunk
	// buffer goes back to the pool only once neither does.
	mu     sync.Mutex
	active bool
	closed bool
	// Read's state: bytes of buf already returned, the compressed bytes
	// not yet returned (gzip), the compressor, and the end.
	off  int
	pend *bytes.Buffer
	zw   *gzip.Writer
	eof  bool
}

func (r *streamReader) chunk() *[]byte {
	if r.buf == nil {
		r.buf = r.s.h.getChunk()
	}
	return r.buf
}

// WriteTo renders the body into w, one chunk per write.
func (r *streamReader) WriteTo(w io.Writer) (int64, error) {
	if !r.begin() {
		return 0, errBodyDone
	}
	defer r.end()
	cw := &countWriter{w: w, s: r.s}
	var out io.Writer = cw
	var zw *gzip.Writer
	var bw *bufio.Writer
	if r.s.gz {
		// The compressor writes a few hundred bytes at a time: gathered
		// into chunks of streamChunk before they reach the connection.
		bw = r.s.h.getBufio(cw)
		defer r.s.h.putBufio(bw)
		zw = r.s.h.getGzip(bw)
		defer r.s.h.gzips.Put(zw)
		out = zw
	}
	b := r.chunk()
	for {
		var ok bool
		*b, r.next, ok = r.s.render((*b)[:0], r.next)
		if !ok {
			return cw.n, errBodyDone
		}
		if len(*b) == 0 {
			break
		}
		if _, err := out.Write(*b); err != nil {
			return cw.n, err
		}
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return cw.n, err
		}
		if err := bw.Flush(); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

// Read is for readers that do not use WriteTo (the HTTP/2 transport):
// the same chunks, handed out piecewise.
func (r *streamReader) Read(p []byte) (int, error) {
	if !r.begin() {
		return 0, errBodyDone
	}
	defer r.end()
	for {
		if r.pend != nil && r.pend.Len() > 0 { // gzip output
			n, _ := r.pend.Read(p)
			r.s.count(n)
			return n, nil
		}
		if b := r.buf; r.pend == nil && b != nil && r.off < len(*b) {
			n := copy(p, (*b)[r.off:])
			r.off += n
			r.s.count(n)
			return n, nil
		}
		if r.eof {
			return 0, io.EOF
		}
		b := r.chunk()
		var ok bool
		*b, r.next, ok = r.s.render((*b)[:0], r.next)
		r.off = 0
		if !ok {
			return 0, errBodyDone
		}
		if !r.s.gz {
			r.eof = len(*b) == 0
			continue
		}
		if r.pend == nil {
			r.pend = &bytes.Buffer{}
			r.zw = r.s.h.getGzip(r.pend)
		}
		if len(*b) == 0 {
			r.eof = true
			_ = r.zw.Close() // into a bytes.Buffer: cannot fail
			r.s.h.gzips.Put(r.zw)
			r.zw = nil
			continue
		}
		_, _ = r.zw.Write(*b)
	}
}

// begin marks a WriteTo or Read running; false once the body is closed.
func (r *streamReader) begin() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.active = true
	return true
}

func (r *streamReader) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.active = false
	if r.closed {
		r.putBuf()
	}
}

// Close returns the chunk buffer once the transport is done with the body.
func (r *streamReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if !r.active {
		r.putBuf()
	}
	return nil
}

func (r *streamReader) putBuf() {
	if r.buf != nil {
		r.s.h.putChunk(r.buf)
		r.buf = nil
	}
}

// countWriter counts the bytes that reach the connection.
type countWriter struct {
	w io.Writer
	s *streamBody
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.s.count(n)
	return n, err
}

func (h *Sink) getChunk() *[]byte {
	if b, ok := h.chunks.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, streamChunk+streamChunk/4)
	return &b
}

func (h *Sink) putChunk(b *[]byte) {
	if cap(*b) <= maxPooledChunk {
		h.chunks.Put(b)
	}
}

func (h *Sink) getBufio(w io.Writer) *bufio.Writer {
	if bw, ok := h.bufios.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, streamChunk)
}

func (h *Sink) putBufio(bw *bufio.Writer) {
	bw.Reset(nil)
	h.bufios.Put(bw)
}

func (h *Sink) getGzip(w io.Writer) *gzip.Writer {
	zw, ok := h.gzips.Get().(*gzip.Writer)
	if !ok {
		zw, _ = gzip.NewWriterLevel(w, gzipLevel) // a valid level cannot fail
		return zw
	}
	zw.Reset(w)
	return zw
}
