package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEffectiveMasksEverySecret: a distinct secret in every variable that
// can hold one never appears in what skiff check prints, while the rest
// of each value stays readable.
func TestEffectiveMasksEverySecret(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secrets := []string{"urlpass-1", "urltoken-2", "hdrvalue-3", "password-4", "bearer-5", "hdrfile-6", "sasl-7", "userinfo-8", "saslfile-9", "pwfile-10"}
	setenv(t, map[string]string{
		"SKIFF_PATHS": "/logs/*.log", "SKIFF_DATA_DIR": t.TempDir(), "SKIFF_SINKS": "http,es:http,loki:http,kafka,k2:kafka",
		"SKIFF_HTTP_URL":              "https://alice:urlpass-1@logs.example/push?tenant=a&token=urltoken-2",
		"SKIFF_HTTP_HEADERS":          "X-Api-Key=hdrvalue-3,X-File=@" + file("hdr", "hdrfile-6"),
		"SKIFF_HTTP_AUTH":             "basic",
		"SKIFF_HTTP_USERNAME":         "alice",
		"SKIFF_HTTP_PASSWORD":         "password-4",
		"SKIFF_ES_URL":                "https://userinfo-8@es.example:9200",
		"SKIFF_ES_AUTH":               "bearer",
		"SKIFF_ES_TOKEN":              "bearer-5",
		"SKIFF_KAFKA_BROKERS":         "kafka-0:9092",
		"SKIFF_KAFKA_TOPIC":           "logs",
		"SKIFF_KAFKA_SASL_MECHANISM":  "plain",
		"SKIFF_KAFKA_SASL_USERNAME":   "bob",
		"SKIFF_KAFKA_SASL_PASSWORD":   "sasl-7",
		"SKIFF_LOKI_URL":              "http://loki:3100",
		"SKIFF_LOKI_AUTH":             "basic",
		"SKIFF_LOKI_USERNAME":         "carol",
		"SKIFF_LOKI_PASSWORD_FILE":    file("pw", "pwfile-10"),
		"SKIFF_K2_BROKERS":            "kafka-1:9092",
		"SKIFF_K2_TOPIC":              "logs",
		"SKIFF_K2_SASL_MECHANISM":     "scram-sha-512",
		"SKIFF_K2_SASL_USERNAME":      "dave",
		"SKIFF_K2_SASL_PASSWORD_FILE": file("sasl", "saslfile-9"),
	})
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range Effective(c) {
		b.WriteString(s.Name + "=" + s.Value + "\n")
	}
	out := b.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("skiff check shows %q", s)
		}
	}
	for _, want := range []string{
		"SKIFF_HTTP_URL=https://alice:REDACTED@logs.example/push?tenant=a&token=REDACTED\n",
		"SKIFF_HTTP_HEADERS=X-Api-Key=REDACTED,X-File=REDACTED\n",
		"SKIFF_HTTP_USERNAME=alice\n", "SKIFF_HTTP_PASSWORD=REDACTED\n",
		"SKIFF_ES_URL=https://REDACTED@es.example:9200\n",
		"SKIFF_KAFKA_SASL_PASSWORD=REDACTED\n", "SKIFF_KAFKA_BROKERS=kafka-0:9092\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("skiff check lacks %q", want)
		}
	}

	// Everything, the contents of secret files included, is known to
	// Secrets (a destination may echo it).
	sec := Secrets(c)
	for _, s := range secrets {
		if got := sec.String("echo " + s); strings.Contains(got, s) {
			t.Errorf("Secrets does not mask %q", s)
		}
	}
}

// TestProblemsMaskSecrets: a configuration problem names the variable and
// enough of the value to fix it, never its secret part.
func TestProblemsMaskSecrets(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("saslfile-9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	setenv(t, map[string]string{
		"SKIFF_PATHS": "/logs/*.log", "SKIFF_DATA_DIR": t.TempDir(), "SKIFF_SINKS": "http,kafka",
		"SKIFF_HTTP_URL":                 "ftp://alice:urlpass-1@logs.example/?token=urltoken-2",
		"SKIFF_HTTP_HEADERS":             "Content-Length=hdrvalue-3",
		"SKIFF_KAFKA_BROKERS":            "bob:brokerpass-11@kafka-0:9092",
		"SKIFF_KAFKA_TOPIC":              "logs",
		"SKIFF_KAFKA_SASL_PASSWORD_FILE": pw, // without a mechanism: a problem
	})
	c, err := Load()
	ps := problems(t, err)
	if len(ps) < 4 {
		t.Fatalf("want 4 problems, got %q", ps)
	}
	sec := Secrets(c)
	for _, p := range ps {
		p = sec.String(p)
		for _, s := range []string{"urlpass-1", "urltoken-2", "hdrvalue-3", "brokerpass-11", "saslfile-9"} {
			if strings.Contains(p, s) {
				t.Errorf("problem shows %q: %s", s, p)
			}
		}
	}
	if got := strings.Join(ps, "\n"); !strings.Contains(got, "bob:REDACTED@kafka-0:9092") || !strings.Contains(got, "ftp://alice:REDACTED@logs.example") {
		t.Errorf("problems lost the non-secret part of the values:\n%s", got)
	}
}
