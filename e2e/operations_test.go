package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/skiff-dev/skiff/internal/loggen"
)

// TestMetricsWhileShipping scrapes /metrics while the real binary ships a
// known number of lines to two sinks, one of which stalls for a while:
// lines read equals records delivered per sink, lag returns to zero, the
// stalled sink shows in /status and in skiff_sink_stalled but never in
// /readyz (a log backend outage must not take the application out of its
// Service), and every metric passes client_golang's lint and is listed in
// README.
func TestMetricsWhileShipping(t *testing.T) {
	logs, data := t.TempDir(), t.TempDir()
	ok, stuck := newReceiver(t), newReceiver(t)
	stuck.mode.Store(modeStall)
	addr := freeAddr(t)
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	env["SKIFF_METRICS_ADDR"] = addr
	env["SKIFF_SINKS"] = "ok:http,stuck:http"
	env["SKIFF_OK_URL"] = ok.url()
	env["SKIFF_STUCK_URL"] = stuck.url()
	env["SKIFF_STUCK_TIMEOUT"] = "300ms"
	env["SKIFF_STUCK_BACKOFF_MAX"] = "300ms"
	env["SKIFF_STALL_TIMEOUT"] = "1s"
	p := start(t, env)
	ctx := context.Background()
	base := "http://" + addr

	waitFor(t, 10*time.Second, "/readyz", func() bool {
		code, _, err := httpGet(ctx, base+"/readyz")
		return err == nil && code == 200
	})
	want := generate(t, ctx, loggen.Options{Streams: streams(logs, 2), Size: 200, Lines: 5000})
	n := float64(total(want))
	waitDelivered(t, ok, want, 30*time.Second)

	waitFor(t, 20*time.Second, "the stuck sink reported stalled", func() bool {
		v, err := metric(ctx, addr, "skiff_sink_stalled", `sink="stuck"`)
		return err == nil && v == 1
	})
	if code, body, _ := httpGet(ctx, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d %q while a sink is stalled; sink trouble must not fail readiness", code, body)
	}
	if _, body, _ := httpGet(ctx, base+"/status"); !strings.Contains(body, `"stalled": true`) {
		t.Errorf("/status does not show the stalled sink:\n%s", body)
	}

	stuck.mode.Store(modeOK)
	waitDelivered(t, stuck, want, 30*time.Second)
	waitFor(t, 20*time.Second, "lag back to zero and the stall cleared", func() bool {
		lag, err1 := metric(ctx, addr, "skiff_buffer_cursor_lag_records")
		stalled, err2 := metric(ctx, addr, "skiff_sink_stalled")
		return err1 == nil && err2 == nil && lag == 0 && stalled == 0
	})
	for name, match := range map[string][]string{
		"skiff_tailer_lines_read_total":      nil,
		"skiff_sink_records_delivered_total": {`sink="ok"`},
	} {
		waitFor(t, 10*time.Second, name, func() bool {
			v, err := metric(ctx, addr, name, match...)
			return err == nil && v == n
		})
	}
	if v, _ := metric(ctx, addr, "skiff_sink_records_delivered_total", `sink="stuck"`); v < n {
		t.Errorf("stuck sink delivered %v records, want at least %v", v, n)
	}

	_, body, err := httpGet(ctx, base+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		if strings.HasPrefix(pr.Metric, "skiff_") {
			t.Errorf("metric lint: %s: %s", pr.Metric, pr.Text)
		}
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`(?m)^# TYPE (skiff_\w+)`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(string(readme), "`"+name[1]+"`") {
			t.Errorf("metric %s is not listed in README", name[1])
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
