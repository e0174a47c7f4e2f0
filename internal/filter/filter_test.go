package filter

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/skiff-dev/skiff/internal/record"
)

func TestSplitList(t *testing.T) {
	for in, want := range map[string][]string{
		``:                   nil,
		`a`:                  {`a`},
		` a , b ,,`:          {`a`, `b`},
		`a{1\,3},b`:          {`a{1,3}`, `b`},
		`x\d+,\\,y`:          {`x\d+`, `\\`, `y`},
		`$.level=^debug$,ok`: {`$.level=^debug$`, `ok`},
		`trailing\`:          {`trailing\`},
	} {
		if got := SplitList(in); !slices.Equal(got, want) {
			t.Errorf("SplitList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Options{
		Drop:   []string{`ok`, `(unclosed`},
		Keep:   []string{`$.level=^info$`, `$.=x`, `$.a`},
		Redact: []string{`jwt`, `nope`},
		Custom: []string{`jwt=x`, `Bad=x`, `empty=a*`, `ok=[z-a]`, `noequals`},
	})
	var ces []*ConfigError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		for _, inner := range e.(interface{ Unwrap() []error }).Unwrap() {
			var ce *ConfigError
			if !errors.As(inner, &ce) {
				t.Fatalf("not a ConfigError: %v", inner)
			}
			ces = append(ces, ce)
		}
	}
	want := []string{
		`drop rule 2 "(unclosed": missing closing ) at byte 0: ` + "`(unclosed`",
		`keep rule 1 "$.level=^info$": a field rule needs JSON lines (SKIFF_PARSE=json)`,
		`keep rule 2 "$.=x": field path "" has an empty name`,
		`keep rule 3 "$.a": a field rule is $.path=regex`,
		`redact rule 2 "nope": unknown detector`,
		`custom rule 1 "jwt=x": name "jwt" is a built-in detector's`,
		`custom rule 2 "Bad=x": name "Bad" is not accepted`,
		`custom rule 3 "empty=a*": matches the empty string`,
		`custom rule 4 "ok=[z-a]": invalid character class range at byte 4: ` + "`z-a`",
		`custom rule 5 "noequals": want name=regex`,
	}
	if len(ces) != len(want) {
		t.Fatalf("got %d problems, want %d: %v", len(ces), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(ces[i].Error(), w) {
			t.Errorf("problem %d:\n got  %s\n want %s…", i, ces[i], w)
		}
	}
}

func TestRegexpPosition(t *testing.T) {
	_, err := New(Options{Drop: []string{`GET /api/(v1|v2/health`}})
	if err == nil || !strings.Contains(err.Error(), "at byte 9") {
		t.Fatalf("error = %v, want the position of the unclosed group (byte 9)", err)
	}
	_, err = New(Options{Drop: []string{`$.msg=GET (x`}, Fields: true})
	if err == nil || !strings.Contains(err.Error(), "missing closing ) at byte 10") {
		t.Fatalf("error = %v, want the position in the rule as written (byte 10)", err)
	}
	_, err = New(Options{Drop: []string{`a)b`}})
	if err == nil || !strings.Contains(err.Error(), "unexpected ) at byte 1") {
		t.Fatalf("error = %v", err)
	}
	_, err = New(Options{Drop: []string{`a+*`}})
	if err == nil || !strings.Contains(err.Error(), "invalid nested repetition operator at byte 1: `+*`") {
		t.Fatalf("error = %v", err)
	}
}

func TestDecide(t *testing.T) {
	reg := prometheus.NewRegistry()
	f, err := New(Options{
		Drop:       []string{`GET /healthz`, `$.level=^(debug|trace)$`, `$.http.status=^2`},
		Keep:       []string{`ERROR|WARN`, `$.level=.`},
		Fields:     true,
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	for line, want := range map[string]Verdict{
		`ERROR GET /healthz failed`:                   DroppedByDrop,
		`ERROR db down`:                               Ship,
		`INFO started`:                                DroppedByKeep,
		`{"level":"debug","msg":"x"}`:                 DroppedByDrop,
		`{"level":"info","msg":"x"}`:                  Ship,
		`{"level":"info","http":{"status":204}}`:      DroppedByDrop,
		`{"level":"info","http":{"status":"500"}}`:    Ship,
		`{"msg":"no level"}`:                          DroppedByKeep,
		`{"msg":"WARN no level, kept by the line"}`:   Ship,
		`{"level":"deb\"ug","msg":"escape kept raw"}`: Ship,
	} {
		var obj []byte
		if strings.HasPrefix(line, "{") {
			obj = []byte(line)
		}
		if got := f.Decide([]byte(line), obj); got != want {
			t.Errorf("Decide(%s) = %d, want %d", line, got, want)
		}
	}
	if got := testutil.ToFloat64(f.m.droppedDrop); got != 3 {
		t.Errorf("dropped by drop = %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.m.droppedKeep); got != 2 {
		t.Errorf("dropped by keep = %v, want 2", got)
	}
	// A line that is not a JSON object never matches a field rule.
	if f.Keep([]byte(`level=debug WARN`), nil) != true {
		t.Error("a non-JSON line matched a field rule")
	}
}

// TestRequiredLiterals checks that the literal prefilter of rules never
// changes what they match.
func TestRequiredLiterals(t *testing.T) {
	for expr, want := range map[string][]string{
		`GET /healthz`:         {"GET /healthz"},
		`^GET /healthz$`:       {"GET /healthz"},
		`level=(debug|trace)`:  {"level="},
		`(debug|trace) x\d+`:   {"debug", "trace"},
		`(?i)healthz`:          nil,
		`a*`:                   nil,
		`(ab)+c?`:              {"ab"},
		`x{2,}`:                {"x"},
		`[ab]c`:                {"c"},
		`(a|b|c|d|e|f|g|h|i)z`: {"z"},
	} {
		_, lits, err := compile(expr, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range lits {
			got = append(got, string(l))
		}
		if !slices.Equal(got, want) {
			t.Errorf("required(%q) = %q, want %q", expr, got, want)
		}
	}
	lines := append(benchLines(300), []byte("GET /healthz"), []byte("debug x12"), []byte("xx"), []byte("ab"))
	for _, expr := range []string{`GET /healthz`, `level=(debug|trace)`, `(debug|trace) x\d+`, `x{2,}`, `[ab]c`, `seq=1\d`, `(ab)+c?`} {
		re := regexp.MustCompile(expr)
		rules, err := parseRules("drop", []string{expr}, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if anyMatch(rules, l, nil) != re.Match(l) {
				t.Errorf("%q on %q: prefiltered match differs", expr, l)
			}
		}
	}
}

func TestCustom(t *testing.T) {
	f, err := New(Options{Custom: []string{`ssn=\b\d{3}-\d{2}-\d{4}\b`, `session=sid=([0-9a-f]{16})`}})
	if err != nil {
		t.Fatal(err)
	}
	got, red := redact(t, f, "user ssn 078-05-1120 sid=0123456789abcdef, sid=short")
	if want := "user ssn [REDACTED:ssn] sid=[REDACTED:session], sid=short"; got != want || !red {
		t.Fatalf("got %s", got)
	}
	if slices.Compare(f.Detectors(), []string{"ssn", "session"}) != 0 {
		t.Errorf("Detectors() = %v", f.Detectors())
	}
}

func TestRedactAllMinus(t *testing.T) {
	f, err := New(Options{Redact: []string{"all", "-credit_card"}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := redact(t, f, "card 4111111111111111 password=x1")
	if got != "card 4111111111111111 password=[REDACTED:secret_kv]" {
		t.Fatalf("got %s", got)
	}
	if slices.Contains(f.Detectors(), "credit_card") || len(f.Detectors()) != int(numBuiltin)-1 {
		t.Errorf("Detectors() = %v", f.Detectors())
	}
}

// TestPEMAcrossRecords: a private key logged line by line (no multiline
// joining) is redacted record by record until its END line; the first
// record that does not look like a PEM body ends it.
func TestPEMAcrossRecords(t *testing.T) {
	f, err := New(Options{Redact: []string{"private_key"}})
	if err != nil {
		t.Fatal(err)
	}
	var st Stream
	in := []string{
		"2026-11-27 loading key -----BEGIN RSA PRIVATE KEY-----",
		"Proc-Type: 4,ENCRYPTED",
		"MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi",
		"",
		"dGhlIHF1aWNrIGJyb3duIGZveA==",
		"-----END RSA PRIVATE KEY-----",
		"MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi after the block is not a key",
		"-----BEGIN PRIVATE KEY-----",
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
		"2026-11-27 next log line ends the block",
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
	}
	want := []string{
		"2026-11-27 loading key -----BEGIN RSA PRIVATE KEY-----",
		"[REDACTED:private_key]",
		"[REDACTED:private_key]",
		"",
		"[REDACTED:private_key]",
		"-----END RSA PRIVATE KEY-----",
		"MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi after the block is not a key",
		"-----BEGIN PRIVATE KEY-----",
		"[REDACTED:private_key]",
		"2026-11-27 next log line ends the block",
		"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
	}
	for i, l := range in {
		out, _ := f.Redact(&st, nil, []byte(l))
		if string(out) != want[i] {
			t.Errorf("record %d: got %q, want %q", i, out, want[i])
		}
	}
	// The END line itself may carry the last body line (a joined record).
	st = Stream{}
	f.Redact(&st, nil, []byte("-----BEGIN EC PRIVATE KEY-----"))
	out, _ := f.Redact(&st, nil, []byte("MHcCAQEEIB\n-----END EC PRIVATE KEY----- token=abc123"))
	if string(out) != "[REDACTED:private_key]\n-----END EC PRIVATE KEY----- token=abc123" {
		t.Errorf("got %q", out)
	}
}

func TestRedactMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f, err := New(Options{Redact: []string{"all"}, Custom: []string{"ssn=\\d{3}-\\d{2}-\\d{4}"}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	redact(t, f, "a password=x1 b token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln ssn 078-05-1120")
	redact(t, f, "nothing here")
	for name, want := range map[string]float64{"secret_kv": 1, "jwt": 1, "ssn": 1, "credit_card": 0} {
		if got := testutil.ToFloat64(f.m.redactions[slices.Index(f.names, name)]); got != want {
			t.Errorf("redactions{detector=%q} = %v, want %v", name, got, want)
		}
	}
	if got := testutil.ToFloat64(f.m.redacted); got != 1 {
		t.Errorf("redacted records = %v, want 1", got)
	}
	// Every detector that runs shows, at 0, before it ever matches.
	n, err := testutil.GatherAndCount(reg, "skiff_filter_redactions_total")
	if err != nil || n != int(numBuiltin)+1 {
		t.Errorf("%d redactions series (%v), want %d", n, err, numBuiltin+1)
	}
}

// TestNoAllocation: a line without a candidate, a line with candidates
// but no secret, and (into a reused buffer) a line with a secret cost no
// allocation.
func TestNoAllocation(t *testing.T) {
	f, err := New(Options{Redact: []string{"all"}, Drop: []string{"GET /healthz"}})
	if err != nil {
		t.Fatal(err)
	}
	var st Stream
	dst := make([]byte, 0, 4096)
	for _, l := range [][]byte{
		benchLines(1)[0],
		[]byte(`{"ts":"2026-11-27T09:00:00Z","msg":"password reset for alice","token_count":4,"id":1732700401377000000}`),
		[]byte(`login password=hunter2 card 4111111111111111 AKIAIOSFODNN7EXAMPLE`),
	} {
		f.Redact(&st, dst[:0], l) // grow st.spans once
		if n := testing.AllocsPerRun(100, func() {
			f.Keep(l, nil)
			f.Redact(&st, dst[:0], l)
		}); n != 0 {
			t.Errorf("%d allocations for %q", int(n), l)
		}
	}
}

func FuzzRedact(f *testing.F) {
	for _, s := range secretLines {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"password":"\"x","a":"-----BEGIN RSA PRIVATE KEY-----\n`))
	flt, err := New(Options{Redact: []string{"all"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var st Stream
		out, red := flt.Redact(&st, nil, b)
		if !red && string(out) != string(b) {
			t.Fatalf("changed without redacting: %q -> %q", b, out)
		}
		if red && !strings.Contains(string(out), "[REDACTED:") {
			t.Fatalf("redacted without a marker: %q -> %q", b, out)
		}
	})
}

func TestApplyRecord(t *testing.T) {
	f, err := New(Options{Drop: []string{`$.level=^debug$`}, Redact: []string{"all"}, Fields: true})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(`{"level":"info","password":"hunter2"}`)
	r := record.Record{Message: msg, Flags: record.FlagJSON}
	if !f.Apply(&r) || string(r.Message) != `{"level":"info","password":"[REDACTED:secret_kv]"}` || r.Flags != record.FlagJSON|record.FlagRedacted {
		t.Fatalf("got %q flags %b", r.Message, r.Flags)
	}
	if string(msg) != `{"level":"info","password":"hunter2"}` {
		t.Fatal("Apply wrote into the record's message")
	}
	if d := (record.Record{Message: []byte(`{"level":"debug"}`), Flags: record.FlagJSON}); f.Apply(&d) {
		t.Fatal("a debug record was kept")
	}
	plain := record.Record{Message: []byte(`nothing secret`)}
	if !f.Apply(&plain) || plain.Flags != 0 {
		t.Fatalf("plain record changed: %+v", plain)
	}
}
