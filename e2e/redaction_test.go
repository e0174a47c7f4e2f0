package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// corpusCase is a line of internal/filter's corpora: its text as logged,
// the secrets it carries (none for a negative line), and the text around
// them, which must arrive intact.
type corpusCase struct {
	text    string
	secrets []string
	around  []string
}

var corpusMark = regexp.MustCompile(`«([^»]*)»|‹([^›]*)›`)

func loadCorpora(t *testing.T) (positives, negatives []corpusCase) {
	t.Helper()
	paths, err := filepath.Glob("../internal/filter/testdata/corpus/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if len(l) < 2 || l[1] != ' ' || (l[0] != '+' && l[0] != '-') {
				continue
			}
			c := corpusCase{around: corpusMark.Split(l[2:], -1)}
			for _, m := range corpusMark.FindAllStringSubmatch(l[2:], -1) {
				c.secrets = append(c.secrets, m[1]+m[2])
			}
			c.text = corpusMark.ReplaceAllString(l[2:], "$1$2")
			if l[0] == '+' {
				positives = append(positives, c)
			} else {
				negatives = append(negatives, c)
			}
		}
	}
	return positives, negatives
}

// ndjsonSink is an HTTP endpoint that keeps every record skiff POSTs.
type ndjsonSink struct {
	mu   sync.Mutex
	recs []redactedRecord
	raw  bytes.Buffer // every request body, as received
}

type redactedRecord struct {
	Message  string `json:"message"`
	Redacted bool   `json:"redacted"`
}

func (s *ndjsonSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(500)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw.Write(body)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec redactedRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			w.WriteHeader(400)
			return
		}
		s.recs = append(s.recs, rec)
	}
	w.WriteHeader(200)
}

func (s *ndjsonSink) records() []redactedRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]redactedRecord(nil), s.recs...)
}

// TestRedactionBeforeDisk ships every line of the detectors' corpora
// through the real binary with SKIFF_REDACT=all to an HTTP ndjson sink,
// with drop and keep rules: the destination gets no secret and every other
// byte of each line, flagged "redacted", the lines without a secret
// byte for byte, and no dropped line; after shipping, no file in the data
// dir holds a secret or a dropped line; the metrics count it all.
func TestRedactionBeforeDisk(t *testing.T) {
	positives, negatives := loadCorpora(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	dropped := []string{"GET /healthz 200 0.1ms", "GET /healthz 200 password=in-a-dropped-line", "#debug token=notkept-4711"}
	var lines []string
	var kept []corpusCase // in the order they are written, and shipped
	for i := range max(len(positives), len(negatives)) {
		for _, cs := range [][]corpusCase{positives, negatives} {
			if i < len(cs) {
				lines = append(lines, cs[i].text)
				kept = append(kept, cs[i])
			}
		}
		if i%20 == 0 {
			lines = append(lines, dropped...)
		}
	}
	appendLines(t, logPath, lines...)

	sink := &ndjsonSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	data := filepath.Join(dir, "data")
	env := baseEnv(data, logPath)
	addr := freeAddr(t)
	env["SKIFF_METRICS_ADDR"] = addr
	env["SKIFF_SINKS"] = "http"
	env["SKIFF_HTTP_URL"] = srv.URL
	env["SKIFF_HTTP_CONCURRENCY"] = "1" // records arrive in order
	env["SKIFF_REDACT"] = "all"
	env["SKIFF_DROP"] = `^GET /healthz`
	env["SKIFF_KEEP"] = `^[^#]`
	// Lines longer than the default 1 MiB would not fit the corpus; this
	// keeps every corpus line whole in one record.
	env["SKIFF_MAX_LINE_BYTES"] = "64KiB"
	p := start(t, env)
	want := len(positives) + len(negatives)
	waitFor(t, 60*time.Second, "every kept line", func() bool { return len(sink.records()) >= want })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nDropped := float64(len(lines) - want)
	for _, m := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"skiff_filter_dropped_records_total", []string{`reason="drop"`}, nDropped * 2 / 3},
		{"skiff_filter_dropped_records_total", []string{`reason="keep"`}, nDropped / 3},
		{"skiff_filter_redacted_records_total", nil, float64(len(positives))},
	} {
		if got, err := metric(ctx, addr, m.name, m.match...); err != nil || got != m.want {
			t.Errorf("%s%v = %v (%v), want %v", m.name, m.match, got, err, m.want)
		}
	}
	if got, err := metric(ctx, addr, "skiff_filter_redactions_total"); err != nil || got < float64(len(positives)) {
		t.Errorf("skiff_filter_redactions_total = %v (%v), want at least %d", got, err, len(positives))
	}
	_, body, err := httpGet(ctx, "http://"+addr+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range regexp.MustCompile(`(?m)^# TYPE (skiff_filter_\w+)`).FindAllStringSubmatch(body, -1) {
		if !bytes.Contains(readme, []byte("`"+name[1]+"`")) {
			t.Errorf("metric %s is not listed in README", name[1])
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}

	recs := sink.records()
	if len(recs) != want {
		t.Fatalf("%d records shipped, want %d", len(recs), want)
	}
	for i, r := range recs {
		c := kept[i]
		if c.secrets == nil {
			if r.Message != c.text || r.Redacted {
				t.Errorf("line without a secret not shipped as written (redacted=%v):\n got  %s\n want %s", r.Redacted, r.Message, c.text)
			}
			continue
		}
		if !r.Redacted {
			t.Errorf("record %q is not flagged redacted", r.Message)
		}
		rest := r.Message
		for _, part := range c.around {
			k := strings.Index(rest, part)
			if k < 0 {
				t.Errorf("%q lost %q of the line %q", r.Message, part, c.text)
				break
			}
			rest = rest[k+len(part):]
		}
		for _, sec := range c.secrets {
			if strings.Contains(r.Message, sec) {
				t.Errorf("secret %q shipped: %s", sec, r.Message)
			}
		}
	}
	sink.mu.Lock()
	raw := sink.raw.String()
	sink.mu.Unlock()

	// Nothing secret or dropped in any file skiff wrote, nor on the wire.
	// Secrets short or common enough to occur by chance, or that a
	// negative line holds on purpose (AKIA…EXAMPLEX is too long to be a
	// key), are checked on the shipped messages above only.
	var needles []string
	for _, pc := range positives {
	secrets:
		for _, s := range pc.secrets {
			if len(s) < 6 || strings.Trim(s, "0123456789") == "" {
				continue
			}
			for _, n := range negatives {
				if strings.Contains(n.text, s) {
					continue secrets
				}
			}
			needles = append(needles, s)
		}
	}
	needles = append(needles, "in-a-dropped-line", "notkept-4711")
	files := 0
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s holds %q", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range needles {
		if strings.Contains(raw, n) {
			t.Errorf("the HTTP requests carried %q", n)
		}
	}
	t.Logf("%d lines with secrets, %d without, %d dropped; %d secrets searched in %d files of the data dir", len(positives), len(negatives), int(nDropped), len(needles), files)
}

// TestCheckRejectsBadFilterRules: `skiff check` exits 2 and names every
// bad rule, its variable and the byte regexp's error points at.
func TestCheckRejectsBadFilterRules(t *testing.T) {
	env := baseEnv(t.TempDir(), "/var/log/*.log")
	env["SKIFF_DROP"] = `ok,GET /(api|v2`
	env["SKIFF_REDACT"] = "jwt,nope"
	env["SKIFF_REDACT_CUSTOM"] = `ssn=\d{3}-\d{2}-\d{4}(`
	p := start(t, env, "check")
	if code := p.wait(30 * time.Second); code != 2 {
		t.Fatalf("skiff check exited %d, want 2", code)
	}
	out := p.stderr.String()
	for _, want := range []string{
		"SKIFF_DROP: rule 2 \"GET /(api|v2\": missing closing ) at byte 5",
		`SKIFF_REDACT: rule 2 "nope": unknown detector`,
		`SKIFF_REDACT_CUSTOM: rule 1 "ssn=\\d{3}-\\d{2}-\\d{4}(": missing closing ) at byte 21`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("skiff check did not report %q:\n%s", want, out)
		}
	}
}

// TestIngestRedacted: the ingest endpoints apply the same filter.
func TestIngestRedacted(t *testing.T) {
	sink := &ndjsonSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	env := baseEnv(t.TempDir())
	delete(env, "SKIFF_PATHS")
	addr := freeAddr(t)
	env["SKIFF_INGEST_ADDR"] = addr
	env["SKIFF_SINKS"] = "http"
	env["SKIFF_HTTP_URL"] = srv.URL
	env["SKIFF_REDACT"] = "all"
	env["SKIFF_DROP"] = "^noise"
	p := start(t, env)
	var resp *http.Response
	waitFor(t, 30*time.Second, "the ingest endpoint", func() bool {
		var err error
		resp, err = http.Post("http://"+addr+"/v1/text", "text/plain", strings.NewReader("noise line\nlogin password=hunter2 ok\nplain"))
		return err == nil
	})
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/text: %s", resp.Status)
	}
	waitFor(t, 30*time.Second, "two records", func() bool { return len(sink.records()) >= 2 })
	p.signal(syscall.SIGTERM)
	p.wait(30 * time.Second)
	recs := sink.records()
	if len(recs) != 2 || recs[0].Message != "login password=[REDACTED:secret_kv] ok" || !recs[0].Redacted || recs[1].Message != "plain" || recs[1].Redacted {
		t.Fatalf("shipped %+v", recs)
	}
}
