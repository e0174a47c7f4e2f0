package deploy

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/config"
)

// repoRoot is the main module's root, relative to this package.
const repoRoot = ".."

// checkSkiffEnv runs skiff's own configuration loader on env (a
// container's environment, fully resolved; see envProblems) and fails the
// test on every problem it reports: an unknown (misspelt, or not this
// sink's) SKIFF_* variable, a value skiff does not accept, a missing
// required setting. Not parallel: it owns the process environment.
func checkSkiffEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, p := range envProblems(t, env) {
		t.Errorf("skiff rejects this environment: %s", p)
	}
}

// envProblems loads env into the process environment (and nothing else of
// skiff's or the pod's) and runs config.Load on it. SKIFF_DATA_DIR is
// pointed at a temporary directory (the loader proves it writable) and
// every *_FILE variable at a temporary file standing in for the mounted
// secret; SKIFF_PATHS and everything else are kept as written.
func envProblems(t *testing.T, env map[string]string) []string {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "SKIFF_") || slices.Contains([]string{"POD_NAME", "POD_NAMESPACE", "POD_UID", "NODE_NAME"}, name) {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	dir := t.TempDir()
	for k, v := range env {
		switch {
		case k == "SKIFF_DATA_DIR":
			v = filepath.Join(dir, "data")
		case strings.HasPrefix(k, "SKIFF_") && strings.HasSuffix(k, "_FILE"):
			p := filepath.Join(dir, strings.ToLower(k))
			if err := os.WriteFile(p, []byte("test-secret\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			v = p
		}
		t.Setenv(k, v)
	}
	_, err := config.Load()
	if err == nil {
		return nil
	}
	var cps config.Problems
	if !errors.As(err, &cps) {
		return []string{err.Error()}
	}
	var ps []string
	for _, p := range cps {
		ps = append(ps, p.Error())
	}
	return ps
}
