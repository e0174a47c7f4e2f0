package filter

import (
	"bytes"
	"strings"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/skiff-dev/skiff/internal/record"
)

func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}

// withoutBody is what ingest stores as OTLPParts.Log: the LogRecord
// without field 5.
func withoutBody(t *testing.T, lr *logspb.LogRecord) []byte {
	t.Helper()
	c := proto.Clone(lr).(*logspb.LogRecord)
	c.Body = nil
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApplyRedactsOTLPAttributes: a secret in an attribute of an ingested
// OTLP record (log record, resource, scope; nested in arrays and maps) or
// in a map body is redacted before the record reaches the buffer, and
// everything else of the record stays as the client sent it.
func TestApplyRedactsOTLPAttributes(t *testing.T) {
	const (
		jwt    = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
		awsKey = "AKIAIOSFODNN7EXAMPLE"
		ghTok  = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
	)
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("shop")), kv("deploy.token", str("Bearer "+jwt))}}
	scope := &commonpb.InstrumentationScope{Name: "lib", Attributes: []*commonpb.KeyValue{kv("key", str("id="+awsKey))}}
	lr := &logspb.LogRecord{
		TimeUnixNano:   7,
		SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN,
		Attributes: []*commonpb.KeyValue{
			kv("http.request.header.authorization", str("Bearer "+jwt)),
			kv("count", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}),
			kv("nested", &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
				kv("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("plain"), str("token " + ghTok)}}}}),
			}}}}),
		},
		Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{kv("msg", str("login with "+awsKey))}}}},
	}
	mres, _ := proto.Marshal(res)
	mscope, _ := proto.Marshal(scope)
	body, _ := proto.Marshal(lr.Body)
	p := record.OTLPParts{Resource: mres, Scope: mscope, Log: withoutBody(t, lr), BodyKind: record.BodyValue, Body: body}
	r := record.Record{Origin: record.OriginOTLP, Message: record.AppendAnyValueJSON(nil, body), Flags: record.FlagJSON, OTLP: p.AppendBinary(nil)}

	f, err := New(Options{Redact: []string{"all"}})
	if err != nil {
		t.Fatal(err)
	}
	if !f.Apply(&r) {
		t.Fatal("record dropped")
	}
	if r.Flags&record.FlagRedacted == 0 {
		t.Error("record not flagged redacted")
	}
	all := string(r.Message) + string(r.OTLP)
	for _, sec := range []string{jwt, awsKey, ghTok} {
		if strings.Contains(all, sec) {
			t.Errorf("secret %.12s… survives in the record", sec)
		}
	}

	var got record.OTLPParts
	if err := got.Decode(r.OTLP); err != nil {
		t.Fatal(err)
	}
	gotLR := &logspb.LogRecord{}
	if err := proto.Unmarshal(got.AppendLogRecord(nil, r.Message), gotLR); err != nil {
		t.Fatal(err)
	}
	gotRes, gotScope := &resourcepb.Resource{}, &commonpb.InstrumentationScope{}
	if err := proto.Unmarshal(got.Resource, gotRes); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(got.Scope, gotScope); err != nil {
		t.Fatal(err)
	}
	want := func(v *commonpb.AnyValue, s string) {
		t.Helper()
		if v.GetStringValue() != s {
			t.Errorf("value %q, want %q", v.GetStringValue(), s)
		}
	}
	want(gotLR.Attributes[0].Value, "Bearer [REDACTED:jwt]")
	if gotLR.Attributes[1].Value.GetIntValue() != 42 || gotLR.TimeUnixNano != 7 || gotLR.SeverityNumber != logspb.SeverityNumber_SEVERITY_NUMBER_WARN {
		t.Errorf("fields other than strings changed: %v", gotLR)
	}
	list := gotLR.Attributes[2].Value.GetKvlistValue().Values[0].Value.GetArrayValue().Values
	want(list[0], "plain")
	want(list[1], "token [REDACTED:github_token]")
	want(gotLR.Body.GetKvlistValue().Values[0].Value, "login with [REDACTED:aws_access_key_id]")
	want(gotRes.Attributes[0].Value, "shop")
	want(gotRes.Attributes[1].Value, "Bearer [REDACTED:jwt]")
	want(gotScope.Attributes[0].Value, "id=[REDACTED:aws_access_key_id]")
	if gotScope.Name != "lib" {
		t.Errorf("scope name %q", gotScope.Name)
	}
}

// TestApplyLeavesCleanOTLPAlone: without a secret, the OTLP parts are not
// rewritten (the same bytes, no new memory).
func TestApplyLeavesCleanOTLPAlone(t *testing.T) {
	lr := &logspb.LogRecord{Attributes: []*commonpb.KeyValue{kv("user", str("alice")), kv("path", str("/api/v1/orders"))}}
	p := record.OTLPParts{Log: withoutBody(t, lr), BodyKind: record.BodyString}
	orig := p.AppendBinary(nil)
	r := record.Record{Origin: record.OriginOTLP, Message: []byte("GET /api/v1/orders 200"), OTLP: orig}
	f, err := New(Options{Redact: []string{"all"}})
	if err != nil {
		t.Fatal(err)
	}
	f.Apply(&r)
	if r.Flags&record.FlagRedacted != 0 || &r.OTLP[0] != &orig[0] || !bytes.Equal(r.OTLP, orig) {
		t.Error("a record without secrets was rewritten")
	}
}
