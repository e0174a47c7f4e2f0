package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRedactTest(t *testing.T) {
	t.Setenv("SKIFF_DROP", `^GET /healthz,$.level=^debug$`)
	t.Setenv("SKIFF_PARSE", "json")
	t.Setenv("SKIFF_REDACT", "all")
	in := "GET /healthz 200\r\nlogin password=hunter2 ok\nplain\n{\"level\":\"debug\",\"token\":\"x\"}\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7\n-----END RSA PRIVATE KEY-----\n"
	var out, errb bytes.Buffer
	if rc := redactTest(strings.NewReader(in), &out, &errb); rc != exitOK {
		t.Fatalf("rc %d: %s", rc, errb.String())
	}
	want := "drop:drop\tGET /healthz 200\n" +
		"redact\tlogin password=[REDACTED:secret_kv] ok\n" +
		"ship\tplain\n" +
		"drop:drop\t{\"level\":\"debug\",\"token\":\"x\"}\n" +
		"ship\t-----BEGIN RSA PRIVATE KEY-----\n" +
		"redact\t[REDACTED:private_key]\n" +
		"ship\t-----END RSA PRIVATE KEY-----\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	if s := errb.String(); !strings.Contains(s, "7 lines: 5 shipped (2 redacted), 2 dropped (2 by SKIFF_DROP, 0 by SKIFF_KEEP)") ||
		!strings.Contains(s, "redactions: private_key=1 secret_kv=1") {
		t.Fatalf("summary: %s", s)
	}
}

func TestRedactTestRejectsBadRules(t *testing.T) {
	t.Setenv("SKIFF_DROP", `a(b`)
	var out, errb bytes.Buffer
	if rc := redactTest(strings.NewReader(""), &out, &errb); rc != exitConfig {
		t.Fatalf("rc %d, want %d", rc, exitConfig)
	}
	if !strings.Contains(errb.String(), "SKIFF_DROP: rule 1 \"a(b\": missing closing ) at byte 1") {
		t.Fatalf("stderr: %s", errb.String())
	}
}
