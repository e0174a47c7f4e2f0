package deploy

import (
	"context"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/skiff-dev/skiff/internal/admin"
	corev1 "k8s.io/api/core/v1"
)

// TestProbesHitRealEndpoints serves skiff's real admin server and GETs
// every probe path of every Kubernetes variant: each must answer 200 (and
// a path skiff does not serve answers 404, so the check can fail).
func TestProbesHitRealEndpoints(t *testing.T) {
	s, err := admin.Listen("127.0.0.1:0", prometheus.NewRegistry(), admin.Checks{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	status := func(path string) int {
		resp, err := http.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status("/health"); code != http.StatusNotFound {
		t.Fatalf("GET /health = %d, want 404 (otherwise this test proves nothing)", code)
	}
	for name, v := range variants {
		o := render(t, v.dir)
		skiff, _, err := findSkiff(&o.deployments[0].Spec.Template.Spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []*corev1.Probe{skiff.LivenessProbe, skiff.ReadinessProbe, skiff.StartupProbe} {
			if p == nil || p.HTTPGet == nil {
				continue
			}
			if code := status(p.HTTPGet.Path); code != http.StatusOK {
				t.Errorf("%s: probe GET %s = %d on skiff's admin server", name, p.HTTPGet.Path, code)
			}
		}
	}
}
