package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseIngestAddr(t *testing.T) {
	for in, want := range map[string]struct {
		addr     string
		loopback bool
		err      string
	}{
		":4318":               {"127.0.0.1:4318", true, ""},
		"localhost:4318":      {"127.0.0.1:4318", true, ""},
		"127.0.0.1:0":         {"127.0.0.1:0", true, ""},
		"[::1]:4318":          {"[::1]:4318", true, ""},
		"0.0.0.0:4318":        {"0.0.0.0:4318", false, ""},
		"[::]:4318":           {"[::]:4318", false, ""},
		"10.1.2.3:4318":       {"10.1.2.3:4318", false, ""},
		"4318":                {err: "is not host:port"},
		"myhost:4318":         {err: "is not an IP address"},
		":http":               {err: "no valid port"},
		":70000":              {err: "no valid port"},
		"[fe80::1%eth0]:4318": {err: "is not an IP address"},
	} {
		addr, loopback, err := ParseIngestAddr(in)
		if want.err != "" {
			if err == nil || !strings.Contains(err.Error(), want.err) {
				t.Errorf("%q: error %v, want %q", in, err, want.err)
			}
			continue
		}
		if err != nil || addr != want.addr || loopback != want.loopback {
			t.Errorf("%q: got %q loopback=%v (%v), want %q loopback=%v", in, addr, loopback, err, want.addr, want.loopback)
		}
	}
}

func TestIngestConfig(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		env      map[string]string
		problems []string
		maxBody  int64
	}{
		"off: paths required":            {env: map[string]string{}, problems: []string{"SKIFF_PATHS is required (unless SKIFF_INGEST_ADDR is set)"}},
		"ingest alone":                   {env: map[string]string{"SKIFF_INGEST_ADDR": ":4318"}, maxBody: 4 << 20},
		"default follows a small buffer": {env: map[string]string{"SKIFF_INGEST_ADDR": ":4318", "SKIFF_BUFFER_MAX_BYTES": "16MiB"}, maxBody: 1 << 20},
		"explicit body":                  {env: map[string]string{"SKIFF_INGEST_ADDR": ":4318", "SKIFF_INGEST_MAX_BODY_BYTES": "64KiB"}, maxBody: 64 << 10},
		"body too large": {env: map[string]string{"SKIFF_INGEST_ADDR": ":4318", "SKIFF_BUFFER_MAX_BYTES": "16MiB", "SKIFF_INGEST_MAX_BODY_BYTES": "2MiB"},
			problems: []string{"SKIFF_INGEST_MAX_BODY_BYTES: 2MiB is too large"}},
		"bad address and half TLS": {env: map[string]string{"SKIFF_INGEST_ADDR": "ingest:4318", "SKIFF_INGEST_TLS_CERT_FILE": token, "SKIFF_PATHS": "/x/*.log"},
			problems: []string{"SKIFF_INGEST_ADDR: host \"ingest\"", "go together"}},
		"missing token file": {env: map[string]string{"SKIFF_INGEST_ADDR": ":4318", "SKIFF_INGEST_TOKEN_FILE": token + ".missing"},
			problems: []string{"SKIFF_INGEST_TOKEN_FILE:"}},
		"token file":  {env: map[string]string{"SKIFF_INGEST_ADDR": ":4318", "SKIFF_INGEST_TOKEN_FILE": token}, maxBody: 4 << 20},
		"concurrency": {env: map[string]string{"SKIFF_INGEST_ADDR": ":4318", "SKIFF_INGEST_CONCURRENCY": "0"}, problems: []string{"SKIFF_INGEST_CONCURRENCY: 0"}},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"SKIFF_DATA_DIR": t.TempDir()}
			for k, v := range c.env {
				env[k] = v
			}
			setenv(t, env)
			cfg, err := Load()
			ps := problems(t, err)
			if len(ps) != len(c.problems) {
				t.Fatalf("problems:\n%s\nwant %q", strings.Join(ps, "\n"), c.problems)
			}
			for i, p := range c.problems {
				if !strings.Contains(ps[i], p) {
					t.Errorf("problem %q, want %q", ps[i], p)
				}
			}
			if c.problems != nil {
				return
			}
			if c.maxBody == 0 {
				if cfg.Ingest != nil {
					t.Fatalf("ingest on: %+v", cfg.Ingest)
				}
				return
			}
			if cfg.Ingest == nil || cfg.Ingest.MaxBodyBytes != c.maxBody || cfg.Ingest.Addr != "127.0.0.1:4318" || !cfg.Ingest.Loopback {
				t.Fatalf("ingest %+v, want max body %d on loopback", cfg.Ingest, c.maxBody)
			}
		})
	}
}
