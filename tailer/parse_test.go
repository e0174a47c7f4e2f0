package tailer

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/record"
)

func TestEventTime(t *testing.T) {
	cases := map[string]struct {
		line string
		json bool
		want time.Time
	}{
		"rfc3339":           {line: `{"ts":"2026-01-02T03:04:05.5Z","msg":"x"}`, json: true, want: time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)},
		"rfc3339 offset":    {line: `{"msg":"x","ts":"2026-01-02T05:04:05+02:00"}`, json: true, want: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		"epoch seconds":     {line: `{"ts":1767323045}`, json: true, want: time.Unix(1767323045, 0)},
		"epoch fractional":  {line: `{"ts":1767323045.25}`, json: true, want: time.Unix(1767323045, 25e7)},
		"epoch millis":      {line: `{"ts":1767323045123}`, json: true, want: time.UnixMilli(1767323045123)},
		"nested ts ignored": {line: `{"a":{"ts":1767323045},"b":[1,"]"]}`, json: true},
		"no ts":             {line: `{"msg":"x"}`, json: true},
		"bad ts":            {line: `{"ts":"yesterday"}`, json: true},
		"spaces":            {line: ` { "ts" : 1767323045 } `, json: true, want: time.Unix(1767323045, 0)},
		"not json":          {line: `plain text`},
		"array":             {line: `[1,2]`},
		"broken":            {line: `{"ts":`},
		"invalid utf8":      {line: "{\"m\":\"\xff\"}"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			obj, ok := jsonObject([]byte(tc.line))
			if ok != tc.json {
				t.Fatalf("json = %v, want %v", ok, tc.json)
			}
			if !ok {
				return
			}
			if got := eventTime(obj, "ts"); !got.Equal(tc.want) {
				t.Errorf("time = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseJSONEndToEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, `{"ts":"2026-01-02T03:04:05Z","msg":"a"}`+"\nplain\n")
	o := testOptions(t, path)
	o.ParseJSON, o.TimeField = true, "ts"
	app := &memAppender{}
	_, stop := start(t, o, app)
	waitFor(t, "two lines", func() bool { return app.count() == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	r := app.snapshot()
	if r[0].Flags&record.FlagJSON == 0 || !r[0].EventTime.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("json line: flags %d, event time %v", r[0].Flags, r[0].EventTime)
	}
	if r[1].Flags != 0 || !r[1].EventTime.IsZero() || string(r[1].Message) != "plain" {
		t.Errorf("plain line: %+v", r[1])
	}
}

func TestMultiline(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, strings.Join([]string{
		"2026-01-01 panic: boom",
		"goroutine 1 [running]:",
		"main.main()",
		"\t/app/main.go:5",
		"2026-01-01 next record",
		"2026-01-01 a",
		" b", " c", " d", " e", // more than MultilineMaxLines
		"2026-01-01 pending until the timeout",
		"\tcontinued",
	}, "\n")+"\n")
	o := testOptions(t, path)
	o.MultilineStart = regexp.MustCompile(`^\d{4}-\d\d-\d\d `)
	o.MultilineMaxLines = 4
	o.MultilineTimeout = 100 * time.Millisecond
	app := &memAppender{}
	_, stop := start(t, o, app)
	waitFor(t, "the timed-out record", func() bool { return app.count() == 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"2026-01-01 panic: boom\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:5",
		"2026-01-01 next record",
		"2026-01-01 a\n b\n c\n d",
		" e",
		"2026-01-01 pending until the timeout\n\tcontinued",
	}
	got := app.messages()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q", got)
	}
}
