package httpclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"sync"

	"github.com/skiff-dev/skiff/sinks"
)

// Body is a request body in memory, shared by the readers the transport
// asks for (the request body, and GetBody on a retried connection). Its
// done function, which returns the memory to the sink's pool, runs once
// the sink has released the Body and every reader was closed: the
// transport may still be writing the body after Do returns. Safe for
// concurrent use.
type Body struct {
	b    []byte
	done func()

	mu       sync.Mutex
	open     int  // readers not yet closed
	released bool // the sink is done with it
}

// NewBody returns a Body holding b; done (nil: nothing) runs once nothing
// uses b.
func NewBody(b []byte, done func()) *Body {
	return &Body{b: b, done: done}
}

// Len is the body's length.
func (p *Body) Len() int { return len(p.b) }

// Reader returns a new reader of the whole body; closing it is required.
func (p *Body) Reader() io.ReadCloser {
	p.mu.Lock()
	p.open++
	p.mu.Unlock()
	return &bodyReader{Reader: bytes.NewReader(p.b), p: p}
}

// Release says the sink is done with the body.
func (p *Body) Release() {
	p.mu.Lock()
	p.released = true
	p.maybeDone()
	p.mu.Unlock()
}

// maybeDone runs done once nothing uses the body. Callers hold mu.
func (p *Body) maybeDone() {
	if p.released && p.open == 0 && p.done != nil {
		p.done()
		p.done = nil
	}
}

type bodyReader struct {
	*bytes.Reader
	p    *Body
	once sync.Once
}

func (b *bodyReader) Close() error {
	b.once.Do(func() {
		b.p.mu.Lock()
		b.p.open--
		b.p.maybeDone()
		b.p.mu.Unlock()
	})
	return nil
}

// Post sends body to url as a POST of contentType, gzipped (the body is
// already compressed) or not, and returns Do's answer: okLimit is how
// much of a 2xx answer's body to read. The caller still releases body.
// Safe for concurrent use; a cancelled ctx fails the request as Do does.
func (c *Client) Post(ctx context.Context, url string, body *Body, contentType string, gzipped bool, okLimit int64) (*Response, error) {
	r := body.Reader()
	req, err := nethttp.NewRequestWithContext(ctx, nethttp.MethodPost, url, r)
	if err != nil {
		r.Close() // the transport never saw it; done must still run
		return nil, &sinks.SendError{Kind: sinks.KindNetwork, Err: fmt.Errorf("build request: %w", err)}
	}
	req.ContentLength = int64(body.Len())
	req.GetBody = func() (io.ReadCloser, error) { return body.Reader(), nil }
	req.Header.Set("Content-Type", contentType)
	if gzipped {
		req.Header.Set("Content-Encoding", "gzip")
	}
	return c.Do(ctx, req, okLimit)
}
