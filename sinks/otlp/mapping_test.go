package otlp

import (
	"context"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/record"
	"github.com/skiff-dev/skiff/sinks"
)

var (
	collected = time.Date(2026, 11, 27, 9, 0, 1, 377000000, time.UTC)
	eventTime = time.Date(2026, 11, 27, 8, 59, 59, 123456789, time.UTC)
)

func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}

func kvs(pairs ...*commonpb.KeyValue) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: pairs}}}
}

// testEncoder is the record encoder of an instance in a pod with one
// static field, which is also a semantic-convention resource attribute.
func testEncoder() *record.Encoder {
	return record.NewEncoder("0123456789abcdef", record.Kubernetes{Pod: "web-1", Namespace: "shop", PodUID: "uid-1", Node: "node-4"},
		map[string]string{"container": "app", "service.name": "shop-web"})
}

// fileRecord is a line of /var/log/app/web.log.
func fileRecord(offset int64, msg string, flags uint8) record.Record {
	return record.Record{Collected: collected, Source: 0x3f6e2a91c0d84b17, Offset: offset, End: offset + int64(len(msg)) + 1,
		Path: []byte("/var/log/app/web.log"), Message: []byte(msg), Flags: flags}
}

// otlpRecord is a record that came in over OTLP: lr (with its body) in the
// given resource and scope, stored as the ingest endpoint stores it.
func otlpRecord(t testing.TB, n int64, res *resourcepb.Resource, resURL string, scope *commonpb.InstrumentationScope, scopeURL string, lr *logspb.LogRecord) record.Record {
	t.Helper()
	body := lr.GetBody()
	rest := proto.Clone(lr).(*logspb.LogRecord)
	rest.Body = nil
	mustMarshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p := record.OTLPParts{Resource: mustMarshal(res), ResourceSchemaURL: []byte(resURL), Scope: mustMarshal(scope),
		ScopeSchemaURL: []byte(scopeURL), Log: mustMarshal(rest)}
	r := record.Record{Collected: collected, Source: 99, Offset: n, End: n, Origin: record.OriginOTLP}
	switch v := body.GetValue().(type) {
	case nil:
	case *commonpb.AnyValue_StringValue:
		p.BodyKind, r.Message = record.BodyString, []byte(v.StringValue)
	default:
		p.BodyKind, p.Body = record.BodyValue, mustMarshal(body)
		r.Message = record.AppendAnyValueJSON(nil, p.Body)
	}
	r.OTLP = p.AppendBinary(nil)
	return r
}

// The records of TestMapping: every kind the sink maps, with records that
// came in over OTLP between them.
func mappingRecords(t testing.TB) ([]record.Record, map[string]*logspb.LogRecord, []*resourcepb.Resource, []*commonpb.InstrumentationScope) {
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("checkout")), kv("host.name", str("h1"))}, DroppedAttributesCount: 2}
	scopeA := &commonpb.InstrumentationScope{Name: "io.opentelemetry.logback", Version: "1.2", Attributes: []*commonpb.KeyValue{kv("a", str("b"))}}
	scopeB := &commonpb.InstrumentationScope{Name: "other"}
	ingested := map[string]*logspb.LogRecord{
		"otlp1": {TimeUnixNano: 1, ObservedTimeUnixNano: 2, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, SeverityText: "E",
			Body: str("payment failed"), Attributes: []*commonpb.KeyValue{kv("order.id", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 7}})},
			DroppedAttributesCount: 1, Flags: 1, TraceId: []byte("0123456789abcdef"), SpanId: []byte("01234567"), EventName: "payment.failed"},
		"otlp2": {ObservedTimeUnixNano: 3, Body: kvs(kv("k", str("v")), kv("n", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}})),
			Attributes: []*commonpb.KeyValue{kv("tags", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("a"), kvs(kv("b", str("c")))}}}})}},
		"otlp3": {ObservedTimeUnixNano: 4}, // no body
	}
	recs := []record.Record{
		fileRecord(0, "GET /api/v1/orders 200", 0),
		otlpRecord(t, 0, res, "https://opentelemetry.io/schemas/1.26.0", scopeA, "https://scope/1", ingested["otlp1"]),
		fileRecord(23, `{"level":"WARN","msg":"disk \"low\" \u00e9\ud83d\ude00","n":-3,"big":12345678901234567890,"f":1.5,"ok":true,"no":false,"nil":null,"arr":[1,"a",[]],"obj":{"k":{"x":{}}},"ts":"2026-11-27T08:59:59.123456789Z"}`, record.FlagJSON),
		fileRecord(300, "panic: boom\n\tat main.go:12\n\tat runtime.go:1", 0),
		otlpRecord(t, 1, res, "https://opentelemetry.io/schemas/1.26.0", scopeA, "https://scope/1", ingested["otlp2"]),
		fileRecord(4096, "a piece of a long line", record.FlagPartial),
		fileRecord(5000, "bad \xff\xfe bytes", 0),
		otlpRecord(t, 2, res, "https://opentelemetry.io/schemas/1.26.0", scopeB, "", ingested["otlp3"]),
		fileRecord(6000, `{"level":30,"msg":"pino"}`, record.FlagJSON),
		fileRecord(7000, `{"msg":"no level"}`, record.FlagJSON),
		// A JSON object POSTed to the ingest endpoint /v1/json: no file.
		{Collected: collected, Source: 77, Offset: 3, End: 3, Origin: record.OriginJSON, Message: []byte(`{"level":"error","msg":"from /v1/json"}`), Flags: record.FlagJSON},
	}
	recs[2].EventTime = eventTime
	return recs, ingested, []*resourcepb.Resource{res}, []*commonpb.InstrumentationScope{scopeA, scopeB}
}

// TestMapping decodes the request with the official OTLP definitions and
// checks every field of docs/OTLP.md's mapping table: plain, JSON-parsed
// (body as a map, severity, event time), multiline, partial and non-UTF-8
// lines, and records that came in over OTLP, which go out with their own
// resource, scope and log record unchanged, grouped by resource and scope.
func TestMapping(t *testing.T) {
	for _, encoding := range []string{"protobuf", "json"} {
		t.Run(encoding, func(t *testing.T) {
			c := newCollector(t)
			cfg := testConfig(c.srv.URL)
			cfg.Encoding = encoding
			cfg.SeverityField = "level"
			cfg.SeverityNumbers = "bunyan"
			enc := testEncoder()
			s, err := New("otlp", cfg, sinks.Deps{Encoder: enc})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			recs, ingested, res, scopes := mappingRecords(t)
			if err := s.Send(context.Background(), &sinks.Batch{Records: recs}); err != nil {
				t.Fatal(err)
			}
			got := c.received()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			if got[0].path != "/v1/logs" {
				t.Errorf("path %q: a bare base URL gets /v1/logs", got[0].path)
			}

			own := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				kv("k8s.pod.name", str("web-1")), kv("k8s.namespace.name", str("shop")), kv("k8s.pod.uid", str("uid-1")), kv("k8s.node.name", str("node-4")),
				kv("container", str("app")), kv("service.name", str("shop-web")),
			}}
			fileAttrs := func(r *record.Record, extra ...*commonpb.KeyValue) []*commonpb.KeyValue {
				return append([]*commonpb.KeyValue{
					kv("log.file.path", str("/var/log/app/web.log")), kv("log.file.name", str("web.log")), kv("log.record.uid", str(enc.ID(r))),
				}, extra...)
			}
			i64 := func(v int64) *commonpb.AnyValue {
				return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}
			}
			dbl := func(v float64) *commonpb.AnyValue {
				return &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v}}
			}
			boolean := func(v bool) *commonpb.AnyValue {
				return &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}
			}
			arr := func(vs ...*commonpb.AnyValue) *commonpb.AnyValue {
				return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vs}}}
			}
			obs := uint64(collected.UnixNano())
			want := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{
				{Resource: own, ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
					{ObservedTimeUnixNano: obs, Body: str("GET /api/v1/orders 200"), Attributes: fileAttrs(&recs[0])},
					{TimeUnixNano: uint64(eventTime.UnixNano()), ObservedTimeUnixNano: obs,
						SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN, SeverityText: "WARN",
						Body: kvs(kv("level", str("WARN")), kv("msg", str("disk \"low\" é😀")), kv("n", i64(-3)), kv("big", dbl(12345678901234567890)),
							kv("f", dbl(1.5)), kv("ok", boolean(true)), kv("no", boolean(false)), kv("nil", &commonpb.AnyValue{}),
							kv("arr", arr(i64(1), str("a"), arr())), kv("obj", kvs(kv("k", kvs(kv("x", kvs()))))), kv("ts", str("2026-11-27T08:59:59.123456789Z"))),
						Attributes: fileAttrs(&recs[2])},
					{ObservedTimeUnixNano: obs, Body: str("panic: boom\n\tat main.go:12\n\tat runtime.go:1"), Attributes: fileAttrs(&recs[3])},
					{ObservedTimeUnixNano: obs, Body: str("a piece of a long line"),
						Attributes: fileAttrs(&recs[5], kv("skiff.partial", boolean(true)), kv("skiff.offset", i64(4096)))},
					{ObservedTimeUnixNano: obs, Body: str("bad \uFFFD\uFFFD bytes"),
						Attributes: fileAttrs(&recs[6], kv("skiff.message_bytes", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte("bad \xff\xfe bytes")}}))},
					{ObservedTimeUnixNano: obs, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO, SeverityText: "30",
						Body: kvs(kv("level", i64(30)), kv("msg", str("pino"))), Attributes: fileAttrs(&recs[8])},
					{ObservedTimeUnixNano: obs, Body: kvs(kv("msg", str("no level"))), Attributes: fileAttrs(&recs[9])},
					{ObservedTimeUnixNano: obs, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, SeverityText: "error",
						Body: kvs(kv("level", str("error")), kv("msg", str("from /v1/json"))), Attributes: []*commonpb.KeyValue{kv("log.record.uid", str(enc.ID(&recs[10])))}},
				}}}},
				{Resource: res[0], SchemaUrl: "https://opentelemetry.io/schemas/1.26.0", ScopeLogs: []*logspb.ScopeLogs{
					{Scope: scopes[0], SchemaUrl: "https://scope/1", LogRecords: []*logspb.LogRecord{ingested["otlp1"], ingested["otlp2"]}},
					{Scope: scopes[1], LogRecords: []*logspb.LogRecord{ingested["otlp3"]}},
				}},
			}}
			if encoding == "json" {
				// protojson reads the hex trace and span IDs of the OTLP
				// JSON mapping as base64; TestJSONEncoding checks them.
				lr := got[0].req.ResourceLogs[1].ScopeLogs[0].LogRecords[0]
				lr.TraceId, lr.SpanId = ingested["otlp1"].TraceId, ingested["otlp1"].SpanId
			}
			if !proto.Equal(want, got[0].req) {
				opts := prototext.MarshalOptions{Multiline: true}
				t.Errorf("request\n%s\nwant\n%s", opts.Format(got[0].req), opts.Format(want))
			}
		})
	}
}
