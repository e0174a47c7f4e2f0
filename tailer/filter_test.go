package tailer

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/filter"
	"github.com/skiff-dev/skiff/internal/record"
)

// countingFilter is the real filter, counting the lines it judged.
type countingFilter struct {
	*filter.Filter
	judged atomic.Int64
}

func (c *countingFilter) Keep(msg, obj []byte) bool {
	c.judged.Add(1)
	return c.Filter.Keep(msg, obj)
}

func newFilter(t *testing.T, o filter.Options) *countingFilter {
	t.Helper()
	f, err := filter.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &countingFilter{Filter: f}
}

func waitQuiet(t *testing.T, tl *Tailer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tl.WaitQuiet(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

// TestFilterDropsAndRedacts: dropped lines never reach the Appender,
// redacted ones arrive flagged with their secrets replaced (a JSON object
// stays one), and the checkpoint moves past dropped lines: a restart
// judges no line twice, even when the file ends with dropped lines.
func TestFilterDropsAndRedacts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, strings.Join([]string{
		`GET /healthz 200`,
		`login user=alice password=hunter2`,
		`{"level":"debug","msg":"noise"}`,
		`{"level":"info","password":"s3cret","n":1}`,
		`plain line`,
		`GET /healthz 200`,
		`GET /healthz 200`,
	}, "\n")+"\n")
	o := testOptions(t, filepath.Join(dir, "*.log"))
	o.ParseJSON = true
	flt := newFilter(t, filter.Options{Drop: []string{`^GET /healthz`, `$.level=^debug$`}, Redact: []string{"all"}, Fields: true})
	o.Filter = flt
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "kept lines", func() bool { return app.count() >= 3 })
	waitQuiet(t, tl)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	recs := app.snapshot()
	want := []struct {
		msg   string
		flags uint8
	}{
		{`login user=alice password=[REDACTED:secret_kv]`, record.FlagRedacted},
		{`{"level":"info","password":"[REDACTED:secret_kv]","n":1}`, record.FlagRedacted | record.FlagJSON},
		{`plain line`, 0},
	}
	if len(recs) != len(want) {
		t.Fatalf("appended %q, want %d records", app.messages(), len(want))
	}
	for i, w := range want {
		if string(recs[i].Message) != w.msg || recs[i].Flags != w.flags {
			t.Errorf("record %d = %q flags %b, want %q flags %b", i, recs[i].Message, recs[i].Flags, w.msg, w.flags)
		}
	}
	if n := flt.judged.Load(); n != 7 {
		t.Fatalf("judged %d lines, want 7", n)
	}

	// A restart reads nothing again; a new line is judged once.
	o.Registerer = prometheus.NewRegistry()
	app2 := &memAppender{}
	tl2, stop2 := start(t, o, app2)
	waitQuiet(t, tl2)
	appendFile(t, path, "GET /healthz 200\nafter restart\n")
	waitFor(t, "the new line", func() bool { return app2.count() >= 1 })
	waitQuiet(t, tl2)
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if got := app2.messages(); len(got) != 1 || got[0] != "after restart" {
		t.Fatalf("after restart appended %q", got)
	}
	if n := flt.judged.Load(); n != 9 {
		t.Fatalf("judged %d lines in all, want 9: a restart judged old lines again", n)
	}
}

// TestFilterAllDropped: a file whose every line is dropped is
// checkpointed at its end, with nothing appended.
func TestFilterAllDropped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "noise.log")
	var b strings.Builder
	for i := 0; i < 20000; i++ {
		b.WriteString(seqLine(i, 40)) // more lines than one batch holds
	}
	writeFile(t, path, b.String())
	o := testOptions(t, path)
	flt := newFilter(t, filter.Options{Drop: []string{`seq=`}})
	o.Filter = flt
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "every line judged", func() bool { return flt.judged.Load() == 20000 })
	waitQuiet(t, tl)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if app.count() != 0 || app.appends != 0 {
		t.Fatalf("appended %d records in %d appends", app.count(), app.appends)
	}
	o.Registerer = prometheus.NewRegistry()
	tl2, stop2 := start(t, o, app)
	waitQuiet(t, tl2)
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if n := flt.judged.Load(); n != 20000 {
		t.Fatalf("a restart judged %d lines again", n-20000)
	}
}

// TestFilterLongLine: a line shipped in pieces is kept or dropped as a
// whole, by its first piece; each piece is redacted.
func TestFilterLongLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "long.log")
	dropped := "DROPME " + strings.Repeat("d", 2500)
	kept := "KEEP " + strings.Repeat("k", 1100) + " DROPME password=hunter2 " + strings.Repeat("k", 1000)
	writeFile(t, path, dropped+"\n"+kept+"\nshort\n")
	o := testOptions(t, path)
	o.MaxLineBytes = 1024
	o.Filter = newFilter(t, filter.Options{Drop: []string{`DROPME`}, Redact: []string{"secret_kv"}})
	app := &memAppender{}
	tl, stop := start(t, o, app)
	waitFor(t, "short line", func() bool { return strings.Contains(strings.Join(app.messages(), "|"), "short") })
	waitQuiet(t, tl)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	msgs := app.messages()
	got := strings.Join(msgs, "")
	want := strings.Replace(kept, "hunter2", "[REDACTED:secret_kv]", 1) + "short"
	if got != want || len(msgs) != 4 {
		t.Fatalf("got %d records %.80q…, want the kept line's 3 pieces (redacted) and the short line", len(msgs), got)
	}
}

// TestFilterMultilinePEM: a private key joined into one multiline record
// has its body redacted; without joining, the records of the block are.
func TestFilterMultilinePEM(t *testing.T) {
	key := "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZHVtbXkga2V5IGJvZHk=\n-----END RSA PRIVATE KEY-----"
	for name, ml := range map[string]*regexp.Regexp{"joined": regexp.MustCompile(`^\d{4}-`), "lines": nil} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "k.log")
			writeFile(t, path, "2026-11-27 loaded key\n"+key+"\n2026-11-27 next\n")
			o := testOptions(t, path)
			o.MultilineStart = ml
			o.MultilineTimeout = 50 * time.Millisecond
			o.Filter = newFilter(t, filter.Options{Redact: []string{"all"}})
			app := &memAppender{}
			tl, stop := start(t, o, app)
			waitFor(t, "last line", func() bool { return strings.Contains(strings.Join(app.messages(), "|"), "next") })
			waitQuiet(t, tl)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(app.messages(), "\n")
			if strings.Contains(got, "MIIE") || strings.Contains(got, "ZHVt") {
				t.Fatalf("key body shipped:\n%s", got)
			}
			if !strings.Contains(got, "-----BEGIN RSA PRIVATE KEY-----") || !strings.Contains(got, "-----END RSA PRIVATE KEY-----") {
				t.Fatalf("armour lines lost:\n%s", got)
			}
		})
	}
}
