package record

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// goldenV1 is a version 1 record as the binary before the extension wrote
// it (event time, JSON and more flags): buffers written by it must decode,
// and a tailed record must still be written byte for byte like this.
const goldenV1 = "010e156da9fb4cdbeb18063226e8d5f2e5150df0fecaefbeadde802019142f7661722f6c6f672f6170702f6170702e6c6f677b2261223a317d"

func TestVersion1Unchanged(t *testing.T) {
	b, _ := hex.DecodeString(goldenV1)
	var r Record
	if err := r.Decode(b); err != nil {
		t.Fatal(err)
	}
	want := Record{Collected: time.Date(2026, 11, 27, 9, 0, 0, 123456789, time.UTC), EventTime: time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC),
		Source: 0xdeadbeefcafef00d, Offset: 4096, End: 4096 + 25, Path: []byte("/var/log/app/app.log"), Message: []byte(`{"a":1}`), Flags: FlagJSON | FlagMore}
	if !r.Collected.Equal(want.Collected) || !r.EventTime.Equal(want.EventTime) || r.Source != want.Source || r.Offset != want.Offset ||
		r.End != want.End || string(r.Path) != string(want.Path) || string(r.Message) != string(want.Message) || r.Flags != want.Flags ||
		r.Origin != OriginFile || r.OTLP != nil {
		t.Fatalf("decoded %+v, want %+v", r, want)
	}
	if got := hex.EncodeToString(want.AppendBinary(nil)); got != goldenV1 {
		t.Fatalf("a file record encodes as\n%s, want the version 1 form\n%s", got, goldenV1)
	}
}

func TestBinaryExtension(t *testing.T) {
	parts := OTLPParts{Resource: []byte{0x0a, 0x00}, ResourceSchemaURL: []byte("https://opentelemetry.io/schemas/1.26.0"),
		Scope: []byte{0x0a, 0x01, 'x'}, Log: []byte{0x09, 1, 2, 3, 4, 5, 6, 7, 8}, BodyKind: BodyString}
	for name, r := range map[string]Record{
		"otlp": {Collected: time.Unix(1, 2).UTC(), EventTime: time.Unix(3, 4).UTC(), Source: 77, Offset: 3, End: 3, Message: []byte("hello"),
			Origin: OriginOTLP, OTLP: parts.AppendBinary(nil)},
		"json":      {Collected: time.Unix(1, 2).UTC(), Source: 78, Offset: 0, End: 0, Message: []byte(`{"a":1}`), Flags: FlagJSON, Origin: OriginJSON},
		"text":      {Collected: time.Unix(1, 2).UTC(), Source: 79, Offset: 9, End: 9, Message: []byte("line"), Flags: FlagPartial, Origin: OriginText},
		"otlp-only": {Collected: time.Unix(1, 2).UTC(), OTLP: []byte{0x2a, 0}},
	} {
		t.Run(name, func(t *testing.T) {
			b := r.AppendBinary(nil)
			if b[0] != binaryVersionExt || b[1]&flagExt == 0 {
				t.Fatalf("version %d flags %#x: a record with an extension must be version 2 with the flag", b[0], b[1])
			}
			var out Record
			out.Origin, out.OTLP = OriginText, []byte("stale") // Decode must reset reused fields
			if err := out.Decode(b); err != nil {
				t.Fatal(err)
			}
			if out.Origin != r.Origin || !bytes.Equal(out.OTLP, r.OTLP) || !bytes.Equal(out.Message, r.Message) || out.Flags != r.Flags ||
				out.Source != r.Source || out.Offset != r.Offset || out.End != r.End || !out.EventTime.Equal(r.EventTime) {
				t.Fatalf("round trip: got %+v, want %+v", out, r)
			}
			// A file record decoded into the same Record clears the extension.
			f := sample()
			if err := out.Decode(f.AppendBinary(nil)); err != nil || out.Origin != OriginFile || out.OTLP != nil {
				t.Fatalf("after a v1 record: origin %v, OTLP %q (%v)", out.Origin, out.OTLP, err)
			}
		})
	}
}

func TestDecodeRejectsMismatchedVersion(t *testing.T) {
	r := sample()
	b := r.AppendBinary(nil)
	b[1] |= flagExt // version 1 claiming an extension
	var out Record
	if err := out.Decode(b); err == nil {
		t.Fatal("version 1 with the extension flag decoded")
	}
	r.Origin = OriginText
	b = r.AppendBinary(nil)
	b[1] &^= flagExt // version 2 without it
	if err := out.Decode(b); err == nil {
		t.Fatal("version 2 without the extension flag decoded")
	}
	b = r.AppendBinary(nil)
	b[0] = 3
	if err := out.Decode(b); err == nil {
		t.Fatal("version 3 decoded")
	}
}

func TestExtensionSkipsUnknownFields(t *testing.T) {
	r := Record{Collected: time.Unix(1, 0), Origin: OriginJSON, Message: []byte(`{}`), Flags: FlagJSON}
	b := r.AppendBinary(nil)
	// Rebuild with a field a later version might add (field 9, bytes).
	var ext []byte
	ext = protowire.AppendTag(ext, extOrigin, protowire.VarintType)
	ext = protowire.AppendVarint(ext, uint64(OriginJSON))
	ext = protowire.AppendTag(ext, 9, protowire.BytesType)
	ext = protowire.AppendBytes(ext, []byte("future"))
	head := b[:len(b)-len(r.Message)-3] // uvarint length 2, origin tag and value
	nb := append(append(append([]byte{}, head...), byte(len(ext))), ext...)
	nb = append(nb, r.Message...)
	var out Record
	if err := out.Decode(nb); err != nil {
		t.Fatal(err)
	}
	if out.Origin != OriginJSON || string(out.Message) != `{}` {
		t.Fatalf("got %+v", out)
	}
}

// otlpSample is a LogRecord with every field set, as the official
// definitions build it.
func otlpSample() (*resourcepb.Resource, *commonpb.InstrumentationScope, *logspb.LogRecord) {
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: str("checkout")}, {Key: "host.name", Value: str("node-4")}}, DroppedAttributesCount: 1}
	scope := &commonpb.InstrumentationScope{Name: "app/log", Version: "1.2.3", Attributes: []*commonpb.KeyValue{{Key: "lib", Value: str("slog")}}}
	lr := &logspb.LogRecord{
		TimeUnixNano:         uint64(time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC).UnixNano()),
		ObservedTimeUnixNano: uint64(time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC).UnixNano()),
		SeverityNumber:       logspb.SeverityNumber_SEVERITY_NUMBER_WARN,
		SeverityText:         "WARN",
		Body:                 str("payment declined"),
		Attributes: []*commonpb.KeyValue{
			{Key: "user", Value: str("alice")},
			{Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -9007199254740993}}},
			{Key: "ok", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
			{Key: "ratio", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}},
			{Key: "nan", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.NaN()}}},
			{Key: "raw", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0, 1, 2}}}},
			{Key: "list", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("a"), {}}}}}},
			{Key: "map", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{{Key: "k", Value: str("v")}}}}}},
			{Key: "empty"},
		},
		DroppedAttributesCount: 2,
		Flags:                  1,
		TraceId:                []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c},
		SpanId:                 []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74},
		EventName:              "payment.declined",
	}
	return res, scope, lr
}

// splitBody is what ingest does: the LogRecord without field 5, and the
// body apart.
func splitBody(t *testing.T, lr []byte) (log, body []byte) {
	t.Helper()
	for len(lr) > 0 {
		num, typ, n := protowire.ConsumeField(lr)
		if n < 0 {
			t.Fatal(protowire.ParseError(n))
		}
		if num == 5 {
			_, _, m := protowire.ConsumeTag(lr)
			body, _ = protowire.ConsumeBytes(lr[m:])
		} else {
			log = append(log, lr[:n]...)
		}
		_ = typ
		lr = lr[n:]
	}
	return log, body
}

func otlpRecord(t *testing.T, res *resourcepb.Resource, scope *commonpb.InstrumentationScope, lr *logspb.LogRecord) Record {
	t.Helper()
	mres, _ := proto.Marshal(res)
	mscope, _ := proto.Marshal(scope)
	mlr, _ := proto.Marshal(lr)
	log, body := splitBody(t, mlr)
	p := OTLPParts{Resource: mres, ResourceSchemaURL: []byte("https://opentelemetry.io/schemas/1.26.0"), Scope: mscope, Log: log}
	r := Record{Collected: time.Date(2026, 1, 2, 3, 4, 7, 0, time.UTC), EventTime: time.Unix(0, int64(lr.TimeUnixNano)), Source: 0xabc, Offset: 2, End: 2, Origin: OriginOTLP}
	switch v := lr.Body.GetValue().(type) {
	case nil:
		if lr.Body != nil { // present, with no value set
			p.BodyKind, p.Body = BodyValue, body
			r.Message = AppendAnyValueJSON(nil, body)
		}
	case *commonpb.AnyValue_StringValue:
		p.BodyKind, r.Message = BodyString, []byte(v.StringValue)
	default:
		p.BodyKind, p.Body = BodyValue, body
		r.Message = AppendAnyValueJSON(nil, body)
		if _, ok := v.(*commonpb.AnyValue_KvlistValue); ok {
			r.Flags |= FlagJSON
		}
	}
	r.OTLP = p.AppendBinary(nil)
	return r
}

func TestOTLPLogRecordCopiesThrough(t *testing.T) {
	res, scope, lr := otlpSample()
	for name, body := range map[string]*commonpb.AnyValue{
		"string": lr.Body,
		"map":    {Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{{Key: "a", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}}}}}},
		"bytes":  {Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{9}}},
		"none":   nil,
		"empty":  {},
	} {
		t.Run(name, func(t *testing.T) {
			lr := proto.Clone(lr).(*logspb.LogRecord)
			lr.Body = body
			r := otlpRecord(t, res, scope, lr)
			var out Record
			if err := out.Decode(r.AppendBinary(nil)); err != nil {
				t.Fatal(err)
			}
			var p OTLPParts
			if err := p.Decode(out.OTLP); err != nil {
				t.Fatal(err)
			}
			var got logspb.LogRecord
			if err := proto.Unmarshal(p.AppendLogRecord(nil, out.Message), &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, lr) {
				t.Fatalf("LogRecord after the buffer:\n%v\nwant\n%v", &got, lr)
			}
			var gotRes resourcepb.Resource
			var gotScope commonpb.InstrumentationScope
			if proto.Unmarshal(p.Resource, &gotRes) != nil || !proto.Equal(&gotRes, res) || proto.Unmarshal(p.Scope, &gotScope) != nil || !proto.Equal(&gotScope, scope) {
				t.Fatalf("resource %v scope %v", &gotRes, &gotScope)
			}
			if string(p.ResourceSchemaURL) != "https://opentelemetry.io/schemas/1.26.0" {
				t.Fatalf("schema URL %q", p.ResourceSchemaURL)
			}
		})
	}
}

func TestOTLPJSONForm(t *testing.T) {
	res, scope, lr := otlpSample()
	r := otlpRecord(t, res, scope, lr)
	enc := NewEncoder("inst", Kubernetes{Pod: "p"}, map[string]string{"env": "prod"})
	out := enc.AppendJSON(nil, &r)
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := map[string]any{
		"id":              "inst-0000000000000abc-2",
		"time":            "2026-01-02T03:04:05.000000600Z",
		"source":          "otlp",
		"message":         "payment declined",
		"observed_time":   "2026-01-02T03:04:06.000000000Z",
		"severity_text":   "WARN",
		"severity_number": 13.0,
		"trace_id":        "5b8efff798038103d269b633813fc60c",
		"span_id":         "eee19b7ec3c1b174",
		"flags":           1.0,
		"event_name":      "payment.declined",
		"attributes": map[string]any{"user": "alice", "n": -9007199254740993.0, "ok": true, "ratio": 0.25, "nan": "NaN", "raw": "AAEC",
			"list": []any{"a", nil}, "map": map[string]any{"k": "v"}, "empty": nil},
		"dropped_attributes_count": 2.0,
		"resource": map[string]any{"attributes": map[string]any{"service.name": "checkout", "host.name": "node-4"}, "dropped_attributes_count": 1.0,
			"schema_url": "https://opentelemetry.io/schemas/1.26.0"},
		"scope":      map[string]any{"name": "app/log", "version": "1.2.3", "attributes": map[string]any{"lib": "slog"}},
		"kubernetes": map[string]any{"pod": "p"},
		"fields":     map[string]any{"env": "prod"},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Fatalf("got  %s\nwant %s", gotJSON, wantJSON)
	}
	// The int64 is exact in the text even where float64 is not.
	if !bytes.Contains(out, []byte(`"n":-9007199254740993`)) {
		t.Errorf("int64 attribute not exact: %s", out)
	}
	if bytes.ContainsAny(out, "\n\r") {
		t.Errorf("JSON form has a line break: %s", out)
	}
}

func TestOTLPJSONBodies(t *testing.T) {
	res, scope, lr := otlpSample()
	enc := NewEncoder("i", Kubernetes{}, nil)
	for name, c := range map[string]struct {
		body *commonpb.AnyValue
		want string // the body member
	}{
		"map":    {&commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{{Key: "a", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}}}}}}, `"json":{"a":1}`},
		"array":  {&commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_BoolValue{}}}}}}, `"body":[false]`},
		"double": {&commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.Inf(-1)}}, `"body":"-Infinity"`},
		"empty":  {&commonpb.AnyValue{}, `"body":null`},
		"none":   {nil, `"source":"otlp","observed_time"`},
		"utf8":   {&commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "line\nbreak \"q\" é"}}, `"message":"line\nbreak \"q\" é"`},
	} {
		t.Run(name, func(t *testing.T) {
			lr := proto.Clone(lr).(*logspb.LogRecord)
			lr.Body = c.body
			r := otlpRecord(t, res, scope, lr)
			out := enc.AppendJSON(nil, &r)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			if !bytes.Contains(out, []byte(c.want)) {
				t.Fatalf("%s lacks %s", out, c.want)
			}
		})
	}
}

func TestIngestedJSONForm(t *testing.T) {
	enc := NewEncoder("i", Kubernetes{}, nil)
	for name, c := range map[string]struct {
		r    Record
		want string
	}{
		"json": {Record{Collected: time.Unix(0, 0), Source: 1, Offset: 4, Origin: OriginJSON, Message: []byte(`{"a":[1]}`), Flags: FlagJSON},
			`{"id":"i-0000000000000001-4","time":"1970-01-01T00:00:00.000000000Z","source":"json","json":{"a":[1]}}`},
		"text": {Record{Collected: time.Unix(0, 0), Source: 1, Offset: 5, Origin: OriginText, Message: []byte("a\xffb")},
			`{"id":"i-0000000000000001-5","time":"1970-01-01T00:00:00.000000000Z","source":"text","message":"a�b","message_base64":"Yf9i"}`},
	} {
		t.Run(name, func(t *testing.T) {
			if got := string(enc.AppendJSON(nil, &c.r)); got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// TestOTLPJSONDeepNesting checks that a body nested deeper than the render
// limit still renders as valid JSON (ingest refuses such bodies; a decoder
// must not recurse without bound on any input).
func TestOTLPJSONDeepNesting(t *testing.T) {
	v := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "leaf"}}
	for range 200 {
		v = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{v}}}}
	}
	b, _ := proto.Marshal(v)
	out := AppendAnyValueJSON(nil, b)
	if !json.Valid(out) || !bytes.Contains(out, []byte("null")) {
		t.Fatalf("deep value: %.200s", out)
	}
}

func FuzzOTLPParts(f *testing.F) {
	res, scope, lr := otlpSample()
	mres, _ := proto.Marshal(res)
	mscope, _ := proto.Marshal(scope)
	mlr, _ := proto.Marshal(lr)
	p := OTLPParts{Resource: mres, Scope: mscope, Log: mlr, BodyKind: BodyValue, Body: []byte{0x2a, 0}}
	f.Add(p.AppendBinary(nil))
	f.Add([]byte{0x2a, 0x03, 0x0a, 0x01, 0xff})
	enc := NewEncoder("x", Kubernetes{}, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := Record{Origin: OriginOTLP, OTLP: b, Message: []byte("m")}
		if out := enc.AppendJSON(nil, &r); !json.Valid(out) {
			t.Fatalf("invalid JSON for %x: %s", b, out)
		}
		var p OTLPParts
		if p.Decode(b) == nil {
			_ = p.AppendLogRecord(nil, r.Message)
			// Rewriting every string must leave a message that still
			// decodes the same way.
			p.RewriteStrings(func(s []byte) ([]byte, bool) { return append([]byte("x"), s...), true })
			var q OTLPParts
			if err := q.Decode(p.AppendBinary(nil)); err != nil {
				t.Fatalf("rewritten parts do not decode: %v", err)
			}
		}
	})
}

func BenchmarkAppendJSONOTLP(b *testing.B) {
	res, scope, lr := otlpSample()
	lr.Attributes = lr.Attributes[:3]
	lr.Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: string(bytes.Repeat([]byte("a"), 200))}}
	t := &testing.T{}
	r := otlpRecord(t, res, scope, lr)
	enc := NewEncoder("0123456789abcdef", Kubernetes{Pod: "web-1", Namespace: "shop"}, map[string]string{"container": "app"})
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(r.Message)))
	b.ReportAllocs()
	for b.Loop() {
		buf = enc.AppendJSON(buf[:0], &r)
	}
}
