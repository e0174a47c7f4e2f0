package http

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
)

func formatRecords() []record.Record {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC)
	return []record.Record{
		{Collected: t0, Source: 1, Offset: 0, Path: []byte("/var/log/app/a.log"), Message: []byte(`hello "world"`)},
		{Collected: t0.Add(time.Second), Source: 2, Offset: 10, Path: []byte("/var/log/app/b.log"), Message: []byte("tab\there")},
		{Collected: t0.Add(2 * time.Second), EventTime: t0.Add(-time.Hour), Source: 1, Offset: 20, Path: []byte("/var/log/app/a.log"),
			Message: []byte(`{"level":"info"}`), Flags: record.FlagJSON},
		{Collected: t0.Add(3 * time.Second), Source: 1, Offset: 30, Path: []byte("/var/log/app/a.log"), Message: []byte("bad \xff utf8")},
	}
}

// TestLokiBody checks the body against the Loki push API's documented
// JSON form: {"streams":[{"stream":{label:value},"values":[[ts, line]]}]},
// ts a string of Unix nanoseconds, line a string.
func TestLokiBody(t *testing.T) {
	enc := record.NewEncoder("pod-uid", record.Kubernetes{Pod: "web-1", Namespace: "prod"}, map[string]string{"team": "pay"})
	tests := map[string]struct {
		labels  []string
		line    string
		streams map[string]map[string]string // stream key (file label or "") -> labels
		lines   map[int64]string             // offset -> line, for the message form
	}{
		"labels from path and statics": {
			labels: []string{"job=static:skiff", "namespace=kubernetes.namespace", "pod=kubernetes.pod", "team=fields.team",
				"file=filename", "node=kubernetes.node"},
			line: "message",
			streams: map[string]map[string]string{
				"a.log": {"job": "skiff", "namespace": "prod", "pod": "web-1", "team": "pay", "file": "a.log"},
				"b.log": {"job": "skiff", "namespace": "prod", "pod": "web-1", "team": "pay", "file": "b.log"},
			},
			lines: map[int64]string{0: `hello "world"`, 10: "tab\there", 20: `{"level":"info"}`, 30: "bad \ufffd utf8"},
		},
		"one stream": {
			labels:  []string{"namespace=kubernetes.namespace"},
			line:    "json",
			streams: map[string]map[string]string{"": {"namespace": "prod"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := config.HTTP{Format: "loki", LokiLabels: tc.labels, LokiLine: tc.line}
			f, err := newBodyFormat(&cfg, enc)
			if err != nil {
				t.Fatal(err)
			}
			recs := formatRecords()
			body := f.encode(nil, recs)
			var req struct {
				Streams []struct {
					Stream map[string]string `json:"stream"`
					Values [][]string        `json:"values"`
				} `json:"streams"`
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				t.Fatalf("not a push request: %v\n%s", err, body)
			}
			if len(req.Streams) != len(tc.streams) {
				t.Fatalf("%d streams, want %d: %s", len(req.Streams), len(tc.streams), body)
			}
			n := 0
			for _, s := range req.Streams {
				want := tc.streams[s.Stream["file"]]
				if len(s.Stream) != len(want) {
					t.Errorf("labels %v, want %v", s.Stream, want)
				}
				for k, v := range want {
					if s.Stream[k] != v {
						t.Errorf("label %s = %q, want %q", k, s.Stream[k], v)
					}
				}
				for _, v := range s.Values {
					if len(v) != 2 {
						t.Fatalf("value %q is not [ts, line]", v)
					}
					ns, err := strconv.ParseInt(v[0], 10, 64)
					if err != nil {
						t.Fatalf("timestamp %q is not Unix nanoseconds", v[0])
					}
					var r *record.Record
					for i := range recs {
						if recs[i].Time().UnixNano() == ns {
							r = &recs[i]
						}
					}
					if r == nil {
						t.Fatalf("timestamp %s matches no record time", v[0])
					}
					if s.Stream["file"] != "" && !strings.HasSuffix(string(r.Path), s.Stream["file"]) {
						t.Errorf("record from %s in stream %v", r.Path, s.Stream)
					}
					if tc.lines != nil && v[1] != tc.lines[r.Offset] {
						t.Errorf("line %q, want %q", v[1], tc.lines[r.Offset])
					}
					if tc.line == "json" && !json.Valid([]byte(v[1])) {
						t.Errorf("json line %q is not JSON", v[1])
					}
					n++
				}
			}
			if n != len(recs) {
				t.Errorf("%d entries, want %d", n, len(recs))
			}
		})
	}
}

// TestElasticsearchBody checks the body against the bulk API: NDJSON pairs
// of action and document, ending with a newline, create actions carrying
// the index and the record ID as _id.
func TestElasticsearchBody(t *testing.T) {
	enc := record.NewEncoder("pod-uid", record.Kubernetes{}, nil)
	cfg := config.HTTP{Format: "elasticsearch", ESIndex: "logs-app"}
	f, err := newBodyFormat(&cfg, enc)
	if err != nil {
		t.Fatal(err)
	}
	recs := formatRecords()
	body := f.encode(nil, recs)
	if !bytes.HasSuffix(body, []byte("\n")) {
		t.Error("bulk body does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 2*len(recs) {
		t.Fatalf("%d lines for %d records", len(lines), len(recs))
	}
	for i := range recs {
		var action map[string]map[string]string
		dec := json.NewDecoder(strings.NewReader(lines[2*i]))
		if err := dec.Decode(&action); err != nil {
			t.Fatalf("action %q: %v", lines[2*i], err)
		}
		c, ok := action["create"]
		if len(action) != 1 || !ok || len(c) != 2 || c["_index"] != "logs-app" || c["_id"] != enc.ID(&recs[i]) {
			t.Errorf("action %q, want a create of _index logs-app, _id %s", lines[2*i], enc.ID(&recs[i]))
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(lines[2*i+1]), &doc); err != nil {
			t.Fatalf("document %q: %v", lines[2*i+1], err)
		}
		if doc["id"] != enc.ID(&recs[i]) || doc["offset"].(float64) != float64(recs[i].Offset) {
			t.Errorf("document %v for record %d", doc, i)
		}
	}
}

func TestJSONFormats(t *testing.T) {
	enc := record.NewEncoder("x", record.Kubernetes{}, nil)
	recs := formatRecords()
	for _, format := range []string{"json", "ndjson"} {
		f, err := newBodyFormat(&config.HTTP{Format: format}, enc)
		if err != nil {
			t.Fatal(err)
		}
		body := f.encode(nil, recs)
		var got []map[string]any
		if format == "json" {
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("json: %v", err)
			}
		} else {
			for _, l := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("ndjson line %q: %v", l, err)
				}
				got = append(got, m)
			}
		}
		if len(got) != len(recs) {
			t.Errorf("%s: %d records, want %d", format, len(got), len(recs))
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a\"b\\c\n", "\x00\x1f\x7f", "\xff\xfe", "日本\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		out := record.AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q -> %q: %v", s, out, err)
		}
		if utf8.Valid(s) && back != string(s) {
			t.Fatalf("%q round-trips to %q", s, back)
		}
	})
}

// TestLokiIngestedRecordHasNoFileLabel: a record of the ingest endpoints has
// no path, so it gets no file label (not "." from an empty path).
func TestLokiIngestedRecordHasNoFileLabel(t *testing.T) {
	enc := record.NewEncoder("i", record.Kubernetes{}, nil)
	cfg := config.HTTP{Format: "loki", LokiLabels: []string{"job=static:skiff", "file=filename", "path=path"}, LokiLine: "message"}
	f, err := newBodyFormat(&cfg, enc)
	if err != nil {
		t.Fatal(err)
	}
	body := f.encode(nil, []record.Record{{Collected: time.Unix(1, 0), Source: 7, Origin: record.OriginText, Message: []byte("posted")}})
	if want := `{"streams":[{"stream":{"job":"skiff"},"values":[["1000000000","posted"]]}]}`; string(body) != want {
		t.Fatalf("got  %s\nwant %s", body, want)
	}
}
