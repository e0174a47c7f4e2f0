package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/buffer"
	"github.com/skiff-dev/skiff/internal/record"
)

func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}

// sampleRequest has two resources, three scopes and five log records with
// every kind of body and attribute value.
func sampleRequest() *collogspb.ExportLogsServiceRequest {
	t0 := uint64(time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC).UnixNano())
	trace := []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	span := []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{
		{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("checkout")), kv("k8s.pod.name", str("shop-1"))}, DroppedAttributesCount: 3},
			ScopeLogs: []*logspb.ScopeLogs{
				{
					Scope: &commonpb.InstrumentationScope{Name: "checkout/payments", Version: "1.2.3", Attributes: []*commonpb.KeyValue{kv("lib", str("slog"))}},
					LogRecords: []*logspb.LogRecord{
						{TimeUnixNano: t0, ObservedTimeUnixNano: t0 + 1000, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN, SeverityText: "WARN",
							Body: str("payment declined"), TraceId: trace, SpanId: span, Flags: 1, EventName: "payment.declined",
							Attributes: []*commonpb.KeyValue{
								kv("user", str("alice")),
								kv("amount", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: math.MaxInt64}}),
								kv("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}}),
								kv("ok", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
								kv("raw", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xff, 0}}}),
								kv("tags", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("a"), str("b")}}}}),
							}, DroppedAttributesCount: 1},
						{ObservedTimeUnixNano: t0 + 2000, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
							Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
								kv("msg", str("structured")), kv("n", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -7}})}}}}},
					},
					SchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
				},
				{
					Scope:      &commonpb.InstrumentationScope{Name: "checkout/db"},
					LogRecords: []*logspb.LogRecord{{TimeUnixNano: t0 + 3000, Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("x")}}}}}},
				},
			},
			SchemaUrl: "https://opentelemetry.io/schemas/1.25.0",
		},
		{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("batch"))}},
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
				{TimeUnixNano: t0 + 4000, Body: str("no scope")},
				{TimeUnixNano: t0 + 5000}, // no body at all
			}}},
		},
	}}
}

// flatRecord is one log record of a request with its context, as the OTLP
// sink would rebuild it from a skiff record.
type flatRecord struct {
	res         *resourcepb.Resource
	resSchema   string
	scope       *commonpb.InstrumentationScope
	scopeSchema string
	lr          *logspb.LogRecord
}

func flatten(req *collogspb.ExportLogsServiceRequest) []flatRecord {
	var out []flatRecord
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, lr := range sl.LogRecords {
				out = append(out, flatRecord{rl.Resource, rl.SchemaUrl, sl.Scope, sl.SchemaUrl, lr})
			}
		}
	}
	return out
}

// rebuild reads the OTLP parts of a skiff record back into the official
// types: what the OTLP sink does.
func rebuild(t *testing.T, r *record.Record) flatRecord {
	t.Helper()
	var p record.OTLPParts
	if err := p.Decode(r.OTLP); err != nil {
		t.Fatal(err)
	}
	var f flatRecord
	f.resSchema, f.scopeSchema = string(p.ResourceSchemaURL), string(p.ScopeSchemaURL)
	if p.Resource != nil {
		f.res = &resourcepb.Resource{}
		if err := proto.Unmarshal(p.Resource, f.res); err != nil {
			t.Fatal(err)
		}
	}
	if p.Scope != nil {
		f.scope = &commonpb.InstrumentationScope{}
		if err := proto.Unmarshal(p.Scope, f.scope); err != nil {
			t.Fatal(err)
		}
	}
	f.lr = &logspb.LogRecord{}
	if err := proto.Unmarshal(p.AppendLogRecord(nil, r.Message), f.lr); err != nil {
		t.Fatal(err)
	}
	return f
}

func checkRecords(t *testing.T, req *collogspb.ExportLogsServiceRequest, got []record.Record) {
	t.Helper()
	want := flatten(req)
	if len(got) != len(want) {
		t.Fatalf("%d records in the buffer, want %d", len(got), len(want))
	}
	source := got[0].Source
	for i := range got {
		r := &got[i]
		if r.Origin != record.OriginOTLP || r.Source != source || r.Offset != int64(i) || r.End != r.Offset || len(r.Path) != 0 {
			t.Errorf("record %d: origin %v source %x offset %d end %d path %q", i, r.Origin, r.Source, r.Offset, r.End, r.Path)
		}
		f := rebuild(t, r)
		w := want[i]
		if !proto.Equal(f.lr, w.lr) {
			t.Errorf("record %d: LogRecord\n%v\nwant\n%v", i, f.lr, w.lr)
		}
		if !proto.Equal(f.res, w.res) || f.resSchema != w.resSchema || !proto.Equal(f.scope, w.scope) || f.scopeSchema != w.scopeSchema {
			t.Errorf("record %d: resource %v (%q) scope %v (%q), want %v (%q) %v (%q)", i, f.res, f.resSchema, f.scope, f.scopeSchema, w.res, w.resSchema, w.scope, w.scopeSchema)
		}
		wantTime := w.lr.TimeUnixNano
		if wantTime == 0 {
			wantTime = w.lr.ObservedTimeUnixNano
		}
		if r.EventTime.UnixNano() != int64(wantTime) {
			t.Errorf("record %d: event time %v, want %d", i, r.EventTime, wantTime)
		}
	}
}

func TestOTLPProtobuf(t *testing.T) {
	f := newFixture(t, Options{}, buffer.Options{})
	req := sampleRequest()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		body []byte
		hdr  []string
	}{"plain": {body, nil}, "gzip": {gzipped(t, body), []string{"Content-Encoding", "gzip"}}} {
		t.Run(name, func(t *testing.T) {
			resp := f.post("/v1/logs", "application/x-protobuf", c.body, c.hdr...)
			if resp.status != 200 || resp.header.Get("Content-Type") != "application/x-protobuf" {
				t.Fatalf("status %d, type %q: %q", resp.status, resp.header.Get("Content-Type"), resp.body)
			}
			var out collogspb.ExportLogsServiceResponse
			if err := proto.Unmarshal(resp.body, &out); err != nil || out.PartialSuccess != nil {
				t.Fatalf("response %v (%v): partial_success must be unset", &out, err)
			}
			checkRecords(t, req, f.records())
		})
	}
}

// TestOTLPRepeatedMessages sends a resource, a scope and a body each given
// more than once on the wire, which protobuf merges (the last member of a
// oneof wins); the records must hold what the official decoder makes of
// the request.
func TestOTLPRepeatedMessages(t *testing.T) {
	msg := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	field := func(dst []byte, num protowire.Number, v []byte) []byte {
		dst = protowire.AppendTag(dst, num, protowire.BytesType)
		return protowire.AppendBytes(dst, v)
	}
	var body []byte
	for i, svc := range []string{"one", "two"} {
		var lr []byte
		lr = field(lr, 5, msg(str("first")))
		lr = append(lr, msg(&logspb.LogRecord{TimeUnixNano: uint64(i + 1)})...)
		lr = field(lr, 5, msg(&commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 5}}))
		var sl []byte
		sl = field(sl, 1, msg(&commonpb.InstrumentationScope{Name: "lib-" + svc}))
		sl = field(sl, 2, lr)
		sl = field(sl, 1, msg(&commonpb.InstrumentationScope{Version: "1." + svc}))
		sl = field(sl, 3, []byte("https://scope/"+svc))
		var rl []byte
		for _, k := range []string{"a", "b"} {
			rl = field(rl, 1, msg(&resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv(k, str(svc))}}))
		}
		rl = field(rl, 2, sl)
		rl = field(rl, 2, sl)
		rl = field(rl, 1, msg(&resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("c", str(svc))}}))
		rl = field(rl, 3, []byte("https://resource/"+svc))
		body = field(body, 1, rl)
	}
	var req collogspb.ExportLogsServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{}, buffer.Options{})
	if resp := f.post("/v1/logs", "application/x-protobuf", body); resp.status != 200 {
		t.Fatalf("status %d: %q", resp.status, resp.body)
	}
	checkRecords(t, &req, f.records())
}

// otlpJSON renders req as OTLP/JSON: protojson, then the OTLP deviations
// (hex trace and span IDs, enums as numbers).
func otlpJSON(t *testing.T, req *collogspb.ExportLogsServiceRequest, opts protojson.MarshalOptions) []byte {
	t.Helper()
	b, err := opts.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var fix func(any)
	fix = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch k {
				case "traceId", "spanId", "trace_id", "span_id":
					raw, _ := base64.StdEncoding.DecodeString(e.(string))
					x[k] = strings.ToUpper(hex.EncodeToString(raw)) // hex is case-insensitive
				default:
					fix(e)
				}
			}
		case []any:
			for _, e := range x {
				fix(e)
			}
		}
	}
	fix(v)
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOTLPJSON(t *testing.T) {
	f := newFixture(t, Options{}, buffer.Options{})
	req := sampleRequest()
	for name, opts := range map[string]protojson.MarshalOptions{
		"lowerCamelCase, enum names": {},
		"snake_case":                 {UseProtoNames: true},
		"enum numbers":               {UseEnumNumbers: true},
	} {
		t.Run(name, func(t *testing.T) {
			body := otlpJSON(t, req, opts)
			resp := f.post("/v1/logs", "application/json; charset=utf-8", body)
			if resp.status != 200 || resp.header.Get("Content-Type") != "application/json" || string(resp.body) != "{}" {
				t.Fatalf("status %d, type %q: %q", resp.status, resp.header.Get("Content-Type"), resp.body)
			}
			checkRecords(t, req, f.records())
		})
	}
}

// TestOTLPJSONHandWritten is OTLP/JSON as a person (or a browser SDK)
// writes it: int64 as numbers and strings, lower-case hex, enum by number
// and by name, unknown fields.
func TestOTLPJSONHandWritten(t *testing.T) {
	f := newFixture(t, Options{}, buffer.Options{})
	body := `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}],"futureField":1},
	 "scopeLogs":[{"scope":{"name":"app"},"logRecords":[
	  {"timeUnixNano":1700000000000000000,"severityNumber":9,"body":{"stringValue":"first"},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
	   "attributes":[{"key":"n","value":{"intValue":"-12"}},{"key":"d","value":{"doubleValue":"NaN"}},{"key":"b","value":{"bytesValue":"_w"}}],"flags":"1"},
	  {"time_unix_nano":"1700000000000000001","severity_number":"SEVERITY_NUMBER_ERROR","body":{"kvlistValue":{"values":[{"key":"k","value":{"boolValue":false}}]}},"unknown":{"x":[1]}}
	 ]}]}]}`
	resp := f.post("/v1/logs", "application/json", []byte(body))
	if resp.status != 200 {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	got := f.records()
	if len(got) != 2 {
		t.Fatalf("%d records", len(got))
	}
	a, b := rebuild(t, &got[0]).lr, rebuild(t, &got[1]).lr
	if a.TimeUnixNano != 1700000000000000000 || a.SeverityNumber != 9 || a.Body.GetStringValue() != "first" || a.Flags != 1 ||
		hex.EncodeToString(a.TraceId) != "5b8efff798038103d269b633813fc60c" || len(a.Attributes) != 3 ||
		a.Attributes[0].Value.GetIntValue() != -12 || !math.IsNaN(a.Attributes[1].Value.GetDoubleValue()) || !bytes.Equal(a.Attributes[2].Value.GetBytesValue(), []byte{0xff}) {
		t.Errorf("first record %v", a)
	}
	if b.TimeUnixNano != 1700000000000000001 || b.SeverityNumber != logspb.SeverityNumber_SEVERITY_NUMBER_ERROR || b.Body.GetKvlistValue().GetValues()[0].Key != "k" {
		t.Errorf("second record %v", b)
	}
	if got[1].Flags&record.FlagJSON == 0 || string(got[1].Message) != `{"k":false}` {
		t.Errorf("a map body's message is %q (flags %b), want its JSON object", got[1].Message, got[1].Flags)
	}
}

// TestOTLPPartialSuccess: records with a trace or span ID of the wrong
// length are refused alone, the others appended, and the answer says how
// many and why, in either encoding.
func TestOTLPPartialSuccess(t *testing.T) {
	f := newFixture(t, Options{}, buffer.Options{})
	req := sampleRequest()
	req.ResourceLogs[0].ScopeLogs[0].LogRecords[1].TraceId = []byte{1, 2, 3, 4, 5}
	req.ResourceLogs[1].ScopeLogs[0].LogRecords[0].SpanId = []byte{1}
	body, _ := proto.Marshal(req)
	resp := f.post("/v1/logs", "application/x-protobuf", body)
	var out collogspb.ExportLogsServiceResponse
	if resp.status != 200 || proto.Unmarshal(resp.body, &out) != nil {
		t.Fatalf("status %d: %q", resp.status, resp.body)
	}
	ps := out.GetPartialSuccess()
	if ps.GetRejectedLogRecords() != 2 || !strings.Contains(ps.GetErrorMessage(), "trace_id is 5 bytes") {
		t.Fatalf("partial_success %v", ps)
	}
	if got := f.records(); len(got) != 3 {
		t.Fatalf("%d records appended, want the 3 valid ones", len(got))
	}
	resp = f.post("/v1/logs", "application/json", otlpJSON(t, req, protojson.MarshalOptions{}))
	var jout collogspb.ExportLogsServiceResponse
	if resp.status != 200 || protojson.Unmarshal(resp.body, &jout) != nil || jout.GetPartialSuccess().GetRejectedLogRecords() != 2 {
		t.Fatalf("JSON: status %d: %s", resp.status, resp.body)
	}
	if got := f.records(); len(got) != 3 {
		t.Fatalf("JSON: %d records appended", len(got))
	}
}

// status decodes a google.rpc.Status body.
func status(t *testing.T, b []byte) (code int64, msg string) {
	t.Helper()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("Status body %q does not decode", b)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			code, n = int64(v), m
		case num == 2 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			msg, n = string(v), m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		b = b[n:]
	}
	return code, msg
}

// TestOTLPMalformed: a request that does not decode is refused with 400
// and a Status naming the problem, and none of its records is appended,
// even those before the bad one.
func TestOTLPMalformed(t *testing.T) {
	f := newFixture(t, Options{}, buffer.Options{})
	good, _ := proto.Marshal(sampleRequest())
	badUTF8 := sampleRequest()
	badUTF8.ResourceLogs[1].ScopeLogs[0].LogRecords[1].Body = str("ok")
	bu, _ := proto.Marshal(badUTF8)
	bu = bytes.Replace(bu, []byte("ok"), []byte{'o', 0xff}, 1)
	deep := str("leaf")
	for range 40 {
		deep = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{deep}}}}
	}
	deepReq := sampleRequest()
	deepReq.ResourceLogs[1].ScopeLogs[0].LogRecords[1].Body = deep
	db, _ := proto.Marshal(deepReq)
	wrongType := protowire.AppendTag(nil, 1, protowire.BytesType)
	wrongType = protowire.AppendBytes(wrongType, protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.BytesType), 5)) // truncated scope_logs
	for name, c := range map[string]struct {
		ct, body, want string
	}{
		"truncated":         {"application/x-protobuf", string(good[:len(good)-3]), "request:"},
		"invalid UTF-8":     {"application/x-protobuf", string(bu), "not valid UTF-8"},
		"too deep":          {"application/x-protobuf", string(db), "nested deeper"},
		"bad nested":        {"application/x-protobuf", string(wrongType), "resource_logs"},
		"JSON syntax":       {"application/json", `{"resourceLogs":[`, "not a JSON"},
		"JSON not object":   {"application/json", `[1,2]`, "not a JSON object"},
		"JSON bad hex":      {"application/json", `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}`, "traceId \"zz\" is not hex"},
		"JSON bad int":      {"application/json", `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}`, "timeUnixNano \"soon\""},
		"JSON two values":   {"application/json", `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a","intValue":1}}]}]}]}`, "more than one value"},
		"JSON bad severity": {"application/json", `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"LOUD"}]}]}]}`, "severityNumber \"LOUD\""},
	} {
		t.Run(name, func(t *testing.T) {
			resp := f.post("/v1/logs", c.ct, []byte(c.body))
			if resp.status != 400 {
				t.Fatalf("status %d: %q", resp.status, resp.body)
			}
			var msg string
			if c.ct == "application/json" {
				var st struct {
					Code    int
					Message string
				}
				if err := json.Unmarshal(resp.body, &st); err != nil || st.Code != grpcInvalidArgument {
					t.Fatalf("JSON Status %q: %v", resp.body, err)
				}
				msg = st.Message
			} else {
				var code int64
				code, msg = status(t, resp.body)
				if code != grpcInvalidArgument || resp.header.Get("Content-Type") != "application/x-protobuf" {
					t.Fatalf("Status code %d, type %q", code, resp.header.Get("Content-Type"))
				}
			}
			if !strings.Contains(msg, c.want) {
				t.Fatalf("message %q lacks %q", msg, c.want)
			}
			if got := f.records(); len(got) != 0 {
				t.Fatalf("%d records of a refused request appended", len(got))
			}
		})
	}
	// An empty request is a success with nothing appended.
	if resp := f.post("/v1/logs", "application/x-protobuf", nil); resp.status != 200 || len(resp.body) != 0 {
		t.Fatalf("empty request: %d %q", resp.status, resp.body)
	}
}

func FuzzOTLPDecode(f *testing.F) {
	good, _ := proto.Marshal(sampleRequest())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00})
	o := Options{}.withDefaults()
	enc := record.NewEncoder("x", record.Kubernetes{}, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		q := getRequest(&o, time.Unix(0, 0), 1)
		defer q.release()
		if err := q.otlpBatch(b); err != nil {
			return
		}
		// Whatever is accepted renders as valid JSON and rebuilds into
		// LogRecords the official definitions read.
		for i := range q.batch.Len() {
			var r record.Record
			if err := r.Decode(q.batch.Record(i)); err != nil {
				t.Fatal(err)
			}
			if out := enc.AppendJSON(nil, &r); !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
			var p record.OTLPParts
			if err := p.Decode(r.OTLP); err != nil {
				t.Fatal(err)
			}
			var lr logspb.LogRecord
			if err := proto.Unmarshal(p.AppendLogRecord(nil, r.Message), &lr); err != nil {
				t.Fatalf("rebuilt LogRecord does not decode: %v", err)
			}
		}
	})
}

func FuzzOTLPJSON(f *testing.F) {
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"a"},"timeUnixNano":"1"}]}]}]}`))
	f.Add([]byte(`{"resourceLogs":[{"resource":{"attributes":[{"key":"k","value":{"arrayValue":{"values":[{"doubleValue":1e3}]}}}]}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pb, err := transcodeRequest(nil, b)
		if err != nil {
			return
		}
		var req collogspb.ExportLogsServiceRequest
		if err := proto.Unmarshal(pb, &req); err != nil {
			t.Fatalf("transcoded %s into protobuf that does not decode: %v", b, err)
		}
	})
}

// BenchmarkDecodeOTLP compares the hand-written decoder (into records in
// the buffer's layout) with the generated types' Unmarshal alone, a lower
// bound of the generated route (which would then marshal each record's
// resource, scope and LogRecord again to keep them as bytes), on a 1 MiB
// request of 250-byte records:
//
//	go test -run '^$' -bench DecodeOTLP -benchmem ./ingest
func BenchmarkDecodeOTLP(b *testing.B) {
	var lrs []*logspb.LogRecord
	for i := range 4000 {
		lrs = append(lrs, &logspb.LogRecord{TimeUnixNano: uint64(i), SeverityNumber: 9,
			Body:       str(strings.Repeat("x", 200)),
			Attributes: []*commonpb.KeyValue{kv("seq", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(i)}})}})
	}
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("bench"))}},
		ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "bench"}, LogRecords: lrs}},
	}}}
	body, _ := proto.Marshal(req)
	o := Options{MaxBodyBytes: 8 << 20}.withDefaults()
	b.Run("hand", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			q := getRequest(&o, time.Unix(0, 0), 1)
			if err := q.otlpBatch(body); err != nil || q.records != 4000 {
				b.Fatal(err)
			}
			q.release()
		}
	})
	b.Run("generated-unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var r collogspb.ExportLogsServiceRequest
			if err := proto.Unmarshal(body, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
