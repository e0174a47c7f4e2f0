package record

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

func sample() Record {
	return Record{
		Collected: time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC),
		Source:    0xdeadbeefcafef00d,
		Offset:    4096,
		End:       4096 + 25,
		Path:      []byte("/var/log/app/app.log"),
		Message:   []byte(`GET /index.html 200 "ok"`),
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	for name, mod := range map[string]func(*Record){
		"plain":      func(*Record) {},
		"partial":    func(r *Record) { r.Flags = FlagPartial },
		"redacted":   func(r *Record) { r.Flags = FlagRedacted | FlagJSON },
		"event time": func(r *Record) { r.EventTime = time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC); r.Flags = FlagJSON },
		"empty":      func(r *Record) { r.Message = nil; r.Path = nil; r.Offset = 0; r.End = 0 },
		"binary":     func(r *Record) { r.Message = []byte{0, 0xff, 0xfe, '\n'} },
	} {
		t.Run(name, func(t *testing.T) {
			in := sample()
			mod(&in)
			var out Record
			if err := out.Decode(in.AppendBinary(nil)); err != nil {
				t.Fatal(err)
			}
			if !out.Collected.Equal(in.Collected) || !out.EventTime.Equal(in.EventTime) || out.Source != in.Source ||
				out.Offset != in.Offset || out.End != in.End || !bytes.Equal(out.Path, in.Path) || !bytes.Equal(out.Message, in.Message) || out.Flags != in.Flags {
				t.Fatalf("round trip: got %+v, want %+v", out, in)
			}
		})
	}
}

func TestJSONForm(t *testing.T) {
	enc := NewEncoder("0123456789abcdef", Kubernetes{Pod: "web-1", Namespace: "shop", PodUID: "uid-1", Node: "n1"}, map[string]string{"container": "app"})
	r := sample()
	var got map[string]any
	if err := json.Unmarshal(enc.AppendJSON(nil, &r), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id":         "0123456789abcdef-deadbeefcafef00d-4096",
		"time":       "2026-11-27T09:00:00.123456789Z",
		"path":       "/var/log/app/app.log",
		"offset":     4096.0,
		"message":    `GET /index.html 200 "ok"`,
		"kubernetes": map[string]any{"pod": "web-1", "namespace": "shop", "pod_uid": "uid-1", "node": "n1"},
		"fields":     map[string]any{"container": "app"},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("got  %s\nwant %s", gotJSON, wantJSON)
	}

	bare := NewEncoder("x", Kubernetes{}, nil)
	out := bare.AppendJSON(nil, &r)
	if bytes.Contains(out, []byte("kubernetes")) || bytes.Contains(out, []byte("fields")) {
		t.Errorf("empty kubernetes/fields must be omitted: %s", out)
	}
}

func TestJSONInvalidUTF8KeepsExactBytes(t *testing.T) {
	enc := NewEncoder("x", Kubernetes{}, nil)
	r := sample()
	r.Message = []byte("ok \xff\xfe bad \x00 nul \u2028")
	r.Flags = FlagPartial
	var got struct {
		Message string `json:"message"`
		Base64  string `json:"message_base64"`
		Partial bool   `json:"partial"`
	}
	out := enc.AppendJSON(nil, &r)
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	raw, err := base64.StdEncoding.DecodeString(got.Base64)
	if err != nil || !bytes.Equal(raw, r.Message) {
		t.Fatalf("message_base64 = %q (%v), want the exact bytes", raw, err)
	}
	if got.Message != "ok \ufffd\ufffd bad \x00 nul \u2028" || !got.Partial {
		t.Fatalf("got %+v", got)
	}
}

func TestJSONRedactedFlag(t *testing.T) {
	enc := NewEncoder("x", Kubernetes{}, nil)
	r := sample()
	var got map[string]any
	if err := json.Unmarshal(enc.AppendJSON(nil, &r), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["redacted"]; ok {
		t.Fatalf("a record without FlagRedacted ships redacted: %v", got)
	}
	r.Flags = FlagRedacted
	got = nil
	if err := json.Unmarshal(enc.AppendJSON(nil, &r), &got); err != nil {
		t.Fatal(err)
	}
	if got["redacted"] != true {
		t.Fatalf(`"redacted" = %#v, want true`, got["redacted"])
	}
}

func TestJSONObjectMessage(t *testing.T) {
	enc := NewEncoder("x", Kubernetes{}, nil)
	r := sample()
	r.Message = []byte(`{"level":"info","msg":"hi"}`)
	r.Flags = FlagJSON
	var got map[string]any
	if err := json.Unmarshal(enc.AppendJSON(nil, &r), &got); err != nil {
		t.Fatal(err)
	}
	if obj, ok := got["json"].(map[string]any); !ok || obj["msg"] != "hi" {
		t.Fatalf("json field = %#v", got["json"])
	}
}

// TestJSONMatchesEncodingJSON checks the hand-written string escaper
// against the standard library on awkward input.
func TestJSONMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "\t\r\n\x01\x1f\x7f", "héllo wörld ✓", "<html>&amp;"} {
		got, _ := appendString(nil, []byte(s))
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Errorf("appendString(%q) = %s, decodes to %q (%v)", s, got, back, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	r := sample()
	f.Add(r.AppendBinary(nil))
	r.EventTime = time.Unix(1, 2)
	f.Add(r.AppendBinary(nil))
	f.Add([]byte{1, 4, 0})
	enc := NewEncoder("x", Kubernetes{}, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.Decode(b); err != nil {
			return
		}
		// Whatever decodes must re-encode to the same bytes and render as valid JSON.
		if again := r.AppendBinary(nil); !bytes.Equal(again, b) && r.Flags&FlagJSON == 0 {
			// Flags may carry unknown bits; only the layout must round-trip.
			var r2 Record
			if err := r2.Decode(again); err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
		}
		if r.Flags&FlagJSON == 0 && !json.Valid(enc.AppendJSON(nil, &r)) {
			t.Fatalf("invalid JSON for %x", b)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	enc := NewEncoder("0123456789abcdef", Kubernetes{Pod: "web-1", Namespace: "shop"}, map[string]string{"container": "app"})
	r := sample()
	r.Message = bytes.Repeat([]byte("a"), 200)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(r.Message)))
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.AppendJSON(buf[:0], &r)
	}
}

func TestAppendTimeMatchesLayout(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC),
		time.Date(1999, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)),
		time.Unix(0, 1),
		time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		want := tm.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
		if got := string(AppendTime(nil, tm)); got != want {
			t.Errorf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "abcdefgh\"ijklmnop", "\\\\\\\\\\\\\\\\", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x1f", "é\xffabcdefghij"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		out, valid := appendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: invalid JSON: %v", s, out, err)
		}
		if valid != utf8.Valid(s) {
			t.Fatalf("valid = %v for %q", valid, s)
		}
		if valid && back != string(s) {
			t.Fatalf("appendString(%q) decodes to %q", s, back)
		}
	})
}

// TestEncoderStatics: sinks that render the pod identity and the static
// fields in their own form get them back from the Encoder, as given.
func TestEncoderStatics(t *testing.T) {
	kube := Kubernetes{Pod: "web-1", Namespace: "shop", PodUID: "uid-1", Node: "n1"}
	fields := map[string]string{"container": "app"}
	enc := NewEncoder("x", kube, fields)
	fields["container"] = "changed" // the Encoder keeps its own copy
	if enc.Kubernetes() != kube {
		t.Errorf("Kubernetes() = %+v", enc.Kubernetes())
	}
	got := enc.Fields()
	if len(got) != 1 || got["container"] != "app" {
		t.Errorf("Fields() = %v", got)
	}
	got["container"] = "x"
	if enc.Fields()["container"] != "app" {
		t.Error("Fields() returned the Encoder's own map")
	}
}
