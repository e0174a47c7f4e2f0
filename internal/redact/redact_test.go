package redact

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:secret@host/path?token=abc":                                "https://user:REDACTED@host/path?token=REDACTED",
		"https://host/path?a=1&api_key=k&b=2":                                    "https://host/path?a=1&api_key=REDACTED&b=2",
		"https://ghp_abcdef@github.com/x":                                        "https://REDACTED@github.com/x",
		"http://host:8080/push":                                                  "http://host:8080/push",
		"https://s3/b/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&X-Amz-Date=1": "https://s3/b/o?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Date=1",
		"https://blob/c?sv=2020&sig=abc%3D&se=2030":                              "https://blob/c?sv=2020&sig=REDACTED&se=2030",
		"https://h/cb#access_token=xyz&state=1":                                  "https://h/cb#access_token=REDACTED&state=1",
		"https://h/p#section":                                                    "https://h/p#section",
		"user:pw@kafka-0:9092":                                                   "user:REDACTED@kafka-0:9092",
		"kafka-0:9092":                                                           "kafka-0:9092",
		"https://h/?Password=p&passwd=q&pwd=r&Secret=s":                          "https://h/?Password=REDACTED&passwd=REDACTED&pwd=REDACTED&Secret=REDACTED",
		"https://h/?authorization=a&credential=c&session=s&x=1":                  "https://h/?authorization=REDACTED&credential=REDACTED&session=REDACTED&x=1",
		"https://h/?token=":                                                      "https://h/?token=",
		"https://u:p@[::1 bad/?key=v":                                            "https://u:REDACTED@[::1 bad/?key=REDACTED",
		"https://h/?api%5Fkey=v":                                                 "https://h/?api%5Fkey=REDACTED",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}

func TestSecretName(t *testing.T) {
	for _, n := range []string{"token", "key", "apikey", "api_key", "API-Key", "password", "passwd", "pwd", "secret",
		"signature", "sig", "auth", "Authorization", "access_token", "credential", "session", "X-Amz-Signature",
		"X-Amz-Credential", "X-Amz-Security-Token", "client_secret", "X-Api-Key", "DD-API-KEY", "Cookie"} {
		if !SecretName(n) {
			t.Errorf("SecretName(%q) = false", n)
		}
	}
	for _, n := range []string{"index", "pipeline", "X-Scope-OrgID", "Content-Type", "db", "precision", "org"} {
		if SecretName(n) {
			t.Errorf("SecretName(%q) = true", n)
		}
	}
}

// TestTextMasksNetHTTPErrors: the error of a failed request carries the
// full URL (net/http only strips the user-info password).
func TestTextMasksNetHTTPErrors(t *testing.T) {
	c := http.Client{}
	_, err := c.Get("http://user:hunter2@127.0.0.1:1/push?token=abc123&org=x")
	var ue *url.Error
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "abc123") {
		t.Fatalf("expected a url.Error carrying the query token, got %v", err)
	}
	got := Text(fmt.Errorf("send: %w", err).Error())
	if strings.Contains(got, "abc123") || strings.Contains(got, "hunter2") || !strings.Contains(got, "token=REDACTED&org=x") {
		t.Fatalf("Text = %q", got)
	}
}

func TestSecrets(t *testing.T) {
	var s Secrets
	s.Add("Bearer tok-123456", "ab", "hunter2")
	s.AddBasicAuth("alice", "pa55word")
	for in, want := range map[string]string{
		`401: invalid token tok-123456`:           `401: invalid token REDACTED`,
		`header was "Bearer tok-123456"`:          `header was "REDACTED"`,
		`auth Basic YWxpY2U6cGE1NXdvcmQ= refused`: `auth Basic REDACTED refused`,
		`password hunter2 wrong, ab stays`:        `password REDACTED wrong, ab stays`,
		`Post "https://h/p?sig=xyz": EOF`:         `Post "https://h/p?sig=REDACTED": EOF`,
		`nothing secret here`:                     `nothing secret here`,
	} {
		if got := s.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	var none *Secrets
	if got := none.String("https://u:p@h/"); got != "https://u:REDACTED@h/" {
		t.Errorf("nil Secrets: %q", got)
	}
}

func TestHandler(t *testing.T) {
	var s Secrets
	s.Add("s3cr3t-value")
	var out bytes.Buffer
	l := slog.New(Handler(slog.NewJSONHandler(&out, nil), &s)).With("url", "https://h/?token=t0k3n")
	l.Error("send s3cr3t-value failed",
		"err", errors.New(`Post "https://u:pw@h/x?apikey=K3Y": refused`),
		"body", []byte("echo s3cr3t-value"),
		"list", []string{"a", "s3cr3t-value"},
		slog.Group("g", "inner", "s3cr3t-value"),
		"n", 3)
	got := out.String()
	for _, leak := range []string{"s3cr3t-value", "t0k3n", "K3Y", ":pw@"} {
		if strings.Contains(got, leak) {
			t.Errorf("log line holds %q: %s", leak, got)
		}
	}
	if !strings.Contains(got, `"n":3`) || !strings.Contains(got, `"inner":"REDACTED"`) {
		t.Errorf("log line lost its shape: %s", got)
	}
}
