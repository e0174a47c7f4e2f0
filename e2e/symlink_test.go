package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestScenarioSymlinkOutOfVolume: the application container writes the
// log volume; a link it plants there (logs/evil.log -> a secret of
// skiff's) ships nothing, shows in skiff_tailer_errors_total{kind="symlink"}
// and is logged once, by default and with SKIFF_FOLLOW_SYMLINKS=true
// (which reads only links whose target is inside the volume).
func TestScenarioSymlinkOutOfVolume(t *testing.T) {
	for _, follow := range []string{"false", "true"} {
		t.Run("follow="+follow, func(t *testing.T) {
			base := t.TempDir()
			logs, data := filepath.Join(base, "logs"), filepath.Join(base, "data")
			secret := filepath.Join(base, "secrets", "token")
			for _, d := range []string{logs, filepath.Dir(secret), filepath.Join(logs, "pods")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(secret, []byte("hunter2-secret-token\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(secret, filepath.Join(logs, "evil.log")); err != nil {
				t.Fatal(err)
			}
			// Like /var/log/containers/*.log -> /var/log/pods/…: a link
			// whose target is inside the volume.
			appendLines(t, filepath.Join(logs, "pods", "app-0.txt"), "via link")
			if err := os.Symlink(filepath.Join(logs, "pods", "app-0.txt"), filepath.Join(logs, "app.log")); err != nil {
				t.Fatal(err)
			}
			appendLines(t, filepath.Join(logs, "good.log"), "plain")

			es := newESServer(t, nil)
			env := esEnv(data, es, filepath.Join(logs, "*.log"))
			env["SKIFF_FOLLOW_SYMLINKS"] = follow
			env["SKIFF_METRICS_ADDR"] = freeAddr(t)
			p := start(t, env)
			want := []string{"plain"}
			if follow == "true" {
				want = append(want, "via link")
			}
			waitFor(t, 20*time.Second, "the readable files", func() bool { return es.has(want...) })
			noSecret := func() {
				t.Helper()
				for m := range es.messages() {
					if strings.Contains(m, "hunter2") {
						t.Fatalf("shipped the secret behind logs/evil.log: %q", m)
					}
				}
			}
			noSecret()
			ctx := context.Background()
			waitFor(t, 10*time.Second, "several scans counting the refused link", func() bool {
				v, err := metric(ctx, env["SKIFF_METRICS_ADDR"], "skiff_tailer_errors_total", `kind="symlink"`)
				return err == nil && v >= 5
			})
			p.signal(syscall.SIGTERM)
			if code := p.wait(30 * time.Second); code != 0 {
				t.Errorf("exit %d", code)
			}
			noSecret()
			got := es.messages()
			if len(got) != len(want) {
				t.Errorf("stored %v, want %q", got, want)
			}
			named := 0
			for _, l := range strings.Split(p.stderr.String(), "\n") {
				if strings.Contains(l, "evil.log") {
					named++
				}
			}
			if named != 1 {
				t.Errorf("the refused link is named in %d log lines, want 1:\n%s", named, tail(p.stderr.String(), 3000))
			}
		})
	}
}
