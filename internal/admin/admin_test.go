package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "skiff_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)
	ready := errors.New("buffer not open")
	s, err := Listen("127.0.0.1:0", reg, Checks{
		Ready:  func() error { return ready },
		Status: func() any { return map[string]string{"sink": "ok"} },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + s.Addr().String()

	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "skiff_test_things_total 3") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "buffer not open") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	ready = nil
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz after recovery = %d", code)
	}
	if code, body := get(t, base+"/status"); code != 200 || !strings.Contains(body, `"sink": "ok"`) {
		t.Errorf("/status = %d %q", code, body)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ = %d, want 404: nothing else is served", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestListenTakenPort(t *testing.T) {
	s, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), Checks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.ln.Close()
	if _, err := Listen(s.Addr().String(), prometheus.NewRegistry(), Checks{}, nil); err == nil {
		t.Fatal("a taken port must fail Listen")
	}
}

// outsideIP returns an address of this machine that is not loopback, the
// way a scraper outside the pod reaches skiff.
func outsideIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address (TestLoopbackByLocalAddress covers the rule)")
	return ""
}

// TestStatusOnlyOnLoopback: bound to every interface, as in a pod, the
// server answers /metrics and the probes to anyone, but /status and the
// reason of a failing probe only to connections made to loopback, unless
// StatusPublic.
func TestStatusOnlyOnLoopback(t *testing.T) {
	const secret = "/var/lib/secret-data-dir"
	for _, public := range []bool{false, true} {
		s, err := Listen(":0", prometheus.NewRegistry(), Checks{
			Ready:        func() error { return errors.New("buffer: " + secret + " is full") },
			Status:       func() any { return map[string]string{"paths": secret} },
			StatusPublic: public,
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		_, port, _ := net.SplitHostPort(s.Addr().String())
		outside := "http://" + net.JoinHostPort(outsideIP(t), port)
		inside := "http://127.0.0.1:" + port

		if code, body := get(t, inside+"/status"); code != 200 || !strings.Contains(body, secret) {
			t.Errorf("public=%v: /status on loopback = %d %q", public, code, body)
		}
		if code, body := get(t, inside+"/readyz"); code != 503 || !strings.Contains(body, secret) {
			t.Errorf("public=%v: /readyz on loopback = %d %q", public, code, body)
		}
		code, body := get(t, outside+"/status")
		if public != (code == 200) || public != strings.Contains(body, secret) {
			t.Errorf("public=%v: /status from outside = %d %q", public, code, body)
		}
		code, body = get(t, outside+"/readyz")
		if code != 503 || public != strings.Contains(body, secret) {
			t.Errorf("public=%v: /readyz from outside = %d %q", public, code, body)
		}
		if code, _ := get(t, outside+"/metrics"); code != 200 {
			t.Errorf("public=%v: /metrics from outside = %d", public, code)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

type addrCtx struct {
	context.Context
	a net.Addr
}

func (c addrCtx) Value(k any) any {
	if k == http.LocalAddrContextKey {
		return c.a
	}
	return c.Context.Value(k)
}

// TestLoopbackByLocalAddress: the rule looks at the address connected to.
func TestLoopbackByLocalAddress(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9477": true, "127.0.0.6:9477": true, "[::1]:9477": true, "[::ffff:127.0.0.1]:9477": true,
		"10.1.2.3:9477": false, "[fe80::1]:9477": false, "0.0.0.0:9477": false,
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequestWithContext(addrCtx{context.Background(), a}, "GET", "/status", nil)
		if got := Loopback(r); got != want {
			t.Errorf("Loopback(local %s) = %v, want %v", addr, got, want)
		}
	}
	r, _ := http.NewRequest("GET", "/status", nil)
	if Loopback(r) {
		t.Error("a request without a local address passed for loopback")
	}
}

// TestServerLimits: timeouts against clients that hold connections, and
// a header limit far below net/http's 1 MiB default.
func TestServerLimits(t *testing.T) {
	s, err := Listen("127.0.0.1:0", prometheus.NewRegistry(), Checks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadTimeout <= 0 || s.srv.WriteTimeout <= 0 || s.srv.IdleTimeout <= 0 {
		t.Errorf("timeouts: header %v, read %v, write %v, idle %v", s.srv.ReadHeaderTimeout, s.srv.ReadTimeout, s.srv.WriteTimeout, s.srv.IdleTimeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	req, _ := http.NewRequest("GET", "http://"+s.Addr().String()+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: %d, want 431", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
