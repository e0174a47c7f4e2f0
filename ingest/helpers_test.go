package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// fixture is a Server on a free loopback port in front of a real buffer
// with one cursor.
type fixture struct {
	t   *testing.T
	srv *Server
	log *buffer.Log
	cur *buffer.Cursor
	reg *prometheus.Registry
	url string
	cli *http.Client
}

func newFixture(t *testing.T, o Options, bo buffer.Options) *fixture {
	t.Helper()
	if bo.Dir == "" {
		bo.Dir = t.TempDir()
	}
	bo.Cursors = []string{"test"}
	l, err := buffer.Open(bo)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := l.Cursor("test")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	o.Registerer = reg
	var app Appender = l
	srv, err := Listen(o, app)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	f := &fixture{t: t, srv: srv, log: l, cur: cur, reg: reg, url: "http://" + srv.Addr().String(),
		cli: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		f.cli.CloseIdleConnections()
		l.Close()
	})
	return f
}

// response is what a POST got back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) post(path, contentType string, body []byte, header ...string) response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.url+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return f.do(req)
}

func (f *fixture) do(req *http.Request) response {
	f.t.Helper()
	resp, err := f.cli.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// records returns every record readable now, decoded (copied).
func (f *fixture) records() []record.Record {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out []record.Record
	for {
		recs, err := f.cur.Next(ctx, 10000, 64<<20)
		if errors.Is(err, context.Canceled) {
			return out
		}
		if err != nil {
			f.t.Fatal(err)
		}
		for _, br := range recs {
			var r record.Record
			if err := r.Decode(bytes.Clone(br.Data)); err != nil {
				f.t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := f.cur.Commit(recs[len(recs)-1].Pos); err != nil {
			f.t.Fatal(err)
		}
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
