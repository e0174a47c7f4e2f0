package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every request with status, and a body that repeats
// what it was sent: the credentials, the URL with its query, and the
// start of the records (Elasticsearch and Loki echo documents in their
// errors; a proxy may echo headers). es answers as an Elasticsearch bulk
// endpoint instead: 200, with each item refused as 429 and the document
// quoted in the item's reason.
func echoServer(t *testing.T, status int, es bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		doc := string(body)
		if i := strings.Index(doc, `"message":`); i >= 0 {
			doc = doc[i:]
		}
		echo := fmt.Sprintf("doc=%.100q auth=%q key=%q file=%q url=%q",
			doc, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.Header.Get("X-File"), r.URL.RequestURI())
		if es {
			n := strings.Count(string(body), "\n") / 2
			items := make([]string, n)
			for i := range items {
				items[i] = fmt.Sprintf(`{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":%q}}}`, echo)
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"errors":true,"items":[%s]}`, strings.Join(items, ","))
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, echo)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closedAddr is a loopback address that refuses connections.
func closedAddr(t *testing.T) string { return freeAddr(t) }

func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecretsNeverPrinted feeds a distinct secret through every variable
// that can hold one (the URLs of HTTP sinks, user-info and query tokens,
// headers and header files, basic and bearer credentials and their files,
// Kafka SASL passwords and password files, the ingest token file), runs
// skiff against destinations that fail in every way (connection refused,
// 500, 401 and a bulk refusal, each echoing the credentials and URL it
// got) at debug level, and greps everything skiff prints or serves for
// them: skiff check, skiff env, skiff status, the agent's stderr, /status
// and /metrics. A broker address with credentials, which skiff refuses,
// is not shown in the refusal either.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	logs, data, dir := t.TempDir(), t.TempDir(), t.TempDir()
	s := func(name string) string { return "SeCrEt-" + name + "-7f3a" }
	secrets := []string{s("urlpass"), s("urltoken"), s("hdrkey"), s("hdrfile"), s("bearer"), s("basic"),
		s("tokenfile"), s("esuser"), s("refusedsig"), s("sasl"), s("saslfile"), s("ingest"), s("pwfile"),
		s("otlppass"), s("otlpkey"), s("otlpbearer")}
	e500, e401, eES := echoServer(t, 500, false), echoServer(t, 401, false), echoServer(t, 0, true)
	admin := freeAddr(t)
	env := baseEnv(data, filepath.Join(logs, "*.log"))
	for k, v := range map[string]string{
		"SKIFF_METRICS_ADDR":      admin,
		"SKIFF_SHUTDOWN_TIMEOUT":  "2s", // the sinks never drain
		"SKIFF_LOG_LEVEL":         "debug",
		"SKIFF_SINKS":             "a:http,b:http,c:http,es:http,d:http,o:otlp,k:kafka,k2:kafka",
		"SKIFF_INGEST_ADDR":       freeAddr(t),
		"SKIFF_INGEST_TOKEN_FILE": writeSecret(t, dir, "ingest", s("ingest")),

		"SKIFF_A_URL":                 strings.Replace(e500.URL, "http://", "http://alice:"+s("urlpass")+"@", 1) + "/push?tenant=t1&token=" + s("urltoken"),
		"SKIFF_A_HEADERS":             "X-Api-Key=" + s("hdrkey") + ",X-File=@" + writeSecret(t, dir, "hdr", s("hdrfile")),
		"SKIFF_B_URL":                 e401.URL + "/push",
		"SKIFF_B_AUTH":                "basic",
		"SKIFF_B_USERNAME":            "bob",
		"SKIFF_B_PASSWORD":            s("basic"),
		"SKIFF_C_URL":                 "http://" + closedAddr(t) + "/push?sig=" + s("refusedsig"),
		"SKIFF_C_AUTH":                "bearer",
		"SKIFF_C_TOKEN_FILE":          writeSecret(t, dir, "token", s("tokenfile")),
		"SKIFF_ES_URL":                strings.Replace(eES.URL, "http://", "http://"+s("esuser")+"@", 1),
		"SKIFF_ES_FORMAT":             "elasticsearch",
		"SKIFF_ES_AUTH":               "bearer",
		"SKIFF_ES_TOKEN":              s("bearer"),
		"SKIFF_D_URL":                 e401.URL + "/push",
		"SKIFF_D_AUTH":                "basic",
		"SKIFF_D_USERNAME":            "carol",
		"SKIFF_D_PASSWORD_FILE":       writeSecret(t, dir, "pw", s("pwfile")),
		"SKIFF_O_URL":                 strings.Replace(e500.URL, "http://", "http://otel:"+s("otlppass")+"@", 1) + "?api_key=" + s("otlpkey"),
		"SKIFF_O_AUTH":                "bearer",
		"SKIFF_O_TOKEN":               s("otlpbearer"),
		"SKIFF_K_BROKERS":             closedAddr(t),
		"SKIFF_K_TOPIC":               "logs",
		"SKIFF_K_SASL_MECHANISM":      "plain",
		"SKIFF_K_SASL_USERNAME":       "dave",
		"SKIFF_K_SASL_PASSWORD":       s("sasl"),
		"SKIFF_K2_BROKERS":            closedAddr(t),
		"SKIFF_K2_TOPIC":              "logs",
		"SKIFF_K2_SASL_MECHANISM":     "scram-sha-512",
		"SKIFF_K2_SASL_USERNAME":      "erin",
		"SKIFF_K2_SASL_PASSWORD_FILE": writeSecret(t, dir, "sasl", s("saslfile")),
	} {
		env[k] = v
		for _, name := range []string{"A", "B", "C", "ES", "D", "O"} { // fast retries: errors show at once
			env["SKIFF_"+name+"_BACKOFF_MAX"] = "200ms"
			env["SKIFF_"+name+"_BREAKER_FAILURES"] = "0"
		}
	}

	var outputs []string
	leak := func(what, out string) {
		t.Helper()
		outputs = append(outputs, out)
		for _, sec := range secrets {
			if strings.Contains(out, sec) {
				i := strings.Index(out, sec)
				t.Errorf("%s shows the secret %s: …%s…", what, sec, out[max(i-120, 0):min(i+len(sec)+40, len(out))])
			}
		}
	}
	command := func(env map[string]string, args ...string) (string, int) {
		cmd := exec.Command(skiffBin, args...)
		cmd.Env = environ(env)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}

	out, code := command(env, "check")
	if code != 0 {
		t.Fatalf("skiff check: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "token=REDACTED") || !strings.Contains(out, "X-Api-Key=REDACTED") {
		t.Errorf("skiff check does not show the masked values:\n%s", out)
	}
	leak("skiff check", out)
	out, _ = command(env, "env")
	leak("skiff env", out)
	bad := map[string]string{}
	for k, v := range env {
		bad[k] = v
	}
	bad["SKIFF_K_BROKERS"] = "dave:" + s("sasl") + "@kafka-0:9092"
	bad["SKIFF_A_URL"] = "ftp://alice:" + s("urlpass") + "@h/?token=" + s("urltoken")
	bad["SKIFF_A_HEADERS"] = "Content-Length=" + s("hdrkey")
	out, code = command(bad, "check")
	if code != 2 || !strings.Contains(out, "SKIFF_K_BROKERS") || !strings.Contains(out, "SKIFF_A_URL") {
		t.Errorf("skiff check on bad values: exit %d\n%s", code, out)
	}
	leak("skiff check's problems", out)

	p := start(t, env)
	for i := 0; i < 20; i++ {
		appendLines(t, filepath.Join(logs, "app.log"), fmt.Sprintf("line %d of the application", i))
	}
	ctx := context.Background()
	var status string
	waitFor(t, 60*time.Second, "an error for every sink in /status", func() bool {
		_, body, err := httpGet(ctx, "http://"+admin+"/status")
		status = body
		return err == nil && strings.Count(body, `"last_error"`) == 7
	})
	time.Sleep(time.Second) // a few more rounds of retries, their logs and re-reads
	leak("/status", status)
	_, metrics, err := httpGet(ctx, "http://"+admin+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	leak("/metrics", metrics)
	out, code = command(map[string]string{"SKIFF_METRICS_ADDR": admin}, "status")
	if code != 0 || !strings.Contains(out, `"last_error"`) {
		t.Errorf("skiff status: exit %d\n%s", code, out)
	}
	leak("skiff status", out)
	p.signal(syscall.SIGTERM)
	p.wait(60 * time.Second)
	stderr := p.stderr.String()
	if !strings.Contains(stderr, "delivery failed") || !strings.Contains(stderr, "the destination's answer") {
		t.Errorf("the run logged no failure (the test would prove nothing):\n%s", tail(stderr, 4000))
	}
	leak("the agent's stderr", stderr)
	// The destinations echoed the secrets back: had skiff not masked them,
	// they would be here.
	all := strings.Join(outputs, "\n")
	if !strings.Contains(all, "REDACTED") {
		t.Error("nothing was masked")
	}
}

// outsideIP is this machine's first non-loopback IPv4 address: how a
// scraper outside the pod reaches skiff.
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
	t.Skip("no non-loopback IPv4 address on this machine")
	return ""
}

// TestStatusFromOutsideShowsNoLogText: skiff's admin server bound to every
// interface (its default), its sinks failing against destinations that
// echo the records and the credentials in their answers. From the
// machine's non-loopback address, /status is refused by default and, with
// SKIFF_STATUS_PUBLIC=true, served without any log text or secret; the
// probes and /metrics hold neither; nor does the info-level log. Over
// loopback (skiff status), /status has the sinks' errors, still without
// log text.
func TestStatusFromOutsideShowsNoLogText(t *testing.T) {
	t.Parallel()
	ip := outsideIP(t)
	for _, public := range []bool{false, true} {
		t.Run(fmt.Sprintf("public=%v", public), func(t *testing.T) {
			t.Parallel()
			logs, data := t.TempDir(), t.TempDir()
			const token = "TokenInTheQuery-91c2"
			logText := fmt.Sprintf("card=4111-1111-1111-1111 user=alice-%v", public)
			e500, e400, eES := echoServer(t, 500, false), echoServer(t, 400, false), echoServer(t, 0, true)
			ln, err := net.Listen("tcp", ":0")
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(ln.Addr().String())
			ln.Close()
			env := baseEnv(data, filepath.Join(logs, "*.log"))
			env["SKIFF_LOG_LEVEL"] = "info"
			env["SKIFF_SHUTDOWN_TIMEOUT"] = "2s" // the sinks never drain
			env["SKIFF_METRICS_ADDR"] = ":" + port
			if public {
				env["SKIFF_STATUS_PUBLIC"] = "true"
			}
			env["SKIFF_SINKS"] = "a:http,b:http,es:http"
			env["SKIFF_A_URL"] = e500.URL + "/push?token=" + token
			env["SKIFF_B_URL"] = e400.URL + "/push"
			env["SKIFF_ES_URL"] = eES.URL
			env["SKIFF_ES_FORMAT"] = "elasticsearch"
			for _, n := range []string{"A", "B", "ES"} {
				env["SKIFF_"+n+"_BACKOFF_MAX"] = "200ms"
			}
			p := start(t, env)
			appendLines(t, filepath.Join(logs, "app.log"), "first "+logText, "second "+logText)

			ctx := context.Background()
			inside, outside := "http://127.0.0.1:"+port, "http://"+net.JoinHostPort(ip, port)
			var status string
			waitFor(t, 60*time.Second, "errors of the two failing sinks in /status, and the rejection dead-lettered", func() bool {
				_, body, err := httpGet(ctx, inside+"/status")
				status = body
				dl, _ := filepath.Glob(filepath.Join(data, "deadletter", "*.ndjson"))
				return err == nil && strings.Count(body, `"last_error"`) >= 2 && len(dl) > 0
			})
			check := func(what, body string) {
				t.Helper()
				for _, s := range []string{"card=4111", "alice-", token} {
					if strings.Contains(body, s) {
						t.Errorf("%s holds %q:\n%s", what, s, tail(body, 2000))
					}
				}
			}
			check("/status over loopback", status)
			if !strings.Contains(status, "http 500 Internal Server Error") || !strings.Contains(status, "es_rejected_execution_exception") {
				t.Errorf("/status over loopback lacks the sinks' errors:\n%s", status)
			}
			code, body, err := httpGet(ctx, outside+"/status")
			if err != nil {
				t.Fatal(err)
			}
			if public != (code == 200) {
				t.Errorf("/status from %s: %d, want it served only with STATUS_PUBLIC", ip, code)
			}
			check("/status from outside", body)
			for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
				code, body, err := httpGet(ctx, outside+path)
				if err != nil || code != 200 {
					t.Errorf("%s from outside: %d %v", path, code, err)
				}
				check(path+" from outside", body)
			}
			p.signal(syscall.SIGTERM)
			p.wait(60 * time.Second)
			check("the info-level log", p.stderr.String())
		})
	}
}
