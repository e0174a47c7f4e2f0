package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// loadKafka reads SKIFF_KAFKA_* as Load does and validates it.
func loadKafka(t *testing.T, env map[string]string) (*Kafka, []error) {
	t.Helper()
	for k, v := range env {
		t.Setenv("SKIFF_KAFKA_"+k, v)
	}
	k := &Kafka{}
	if ps := process("SKIFF_KAFKA", k, nil); len(ps) > 0 {
		return k, ps
	}
	return k, k.Validate("SKIFF_KAFKA_")
}

func TestKafkaDefaultsAreValid(t *testing.T) {
	k, ps := loadKafka(t, map[string]string{"BROKERS": "kafka-0:9092,kafka-1:9092", "TOPIC": "logs"})
	if len(ps) > 0 {
		t.Fatalf("defaults: %v", ps)
	}
	if k.Acks != "all" || k.Key != "none" || k.MessageMaxBytes != 1000000 || k.TLSEnabled() || k.SASLMechanism != "none" {
		t.Fatalf("unexpected defaults: %+v", k)
	}
}

func TestKafkaValidateNamesVariableAndValue(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "pw")
	if err := os.WriteFile(secret, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want []string // substrings of one reported problem
	}{
		"broker without port":    {map[string]string{"BROKERS": "kafka-0"}, []string{"SKIFF_KAFKA_BROKERS", `"kafka-0"`, "host:port"}},
		"broker port range":      {map[string]string{"BROKERS": "k:70000"}, []string{"SKIFF_KAFKA_BROKERS", `"k:70000"`}},
		"empty brokers":          {map[string]string{"BROKERS": ""}, []string{"SKIFF_KAFKA_BROKERS is empty"}},
		"topic bad char":         {map[string]string{"TOPIC": "logs/app"}, []string{"SKIFF_KAFKA_TOPIC", `"logs/app"`, `"/"`}},
		"topic unclosed":         {map[string]string{"TOPIC": "logs-{fields.app"}, []string{"SKIFF_KAFKA_TOPIC", "without its '}'"}},
		"topic unknown field":    {map[string]string{"TOPIC": "logs-{app}"}, []string{"SKIFF_KAFKA_TOPIC", `"app"`, "fields.<name>"}},
		"topic too long":         {map[string]string{"TOPIC": strings.Repeat("a", 250)}, []string{"SKIFF_KAFKA_TOPIC", "longer than 249"}},
		"topic bad fallback":     {map[string]string{"TOPIC": "logs-{json.app|a b}"}, []string{"SKIFF_KAFKA_TOPIC", `"a b"`}},
		"key":                    {map[string]string{"KEY": "fields"}, []string{"SKIFF_KAFKA_KEY", `"fields"`, "none, path"}},
		"compression":            {map[string]string{"COMPRESSION": "brotli"}, []string{"SKIFF_KAFKA_COMPRESSION", `"brotli"`, "lz4"}},
		"acks":                   {map[string]string{"ACKS": "-1"}, []string{"SKIFF_KAFKA_ACKS", `"-1"`, "all, one, none"}},
		"batch records":          {map[string]string{"BATCH_MAX_RECORDS": "0"}, []string{"SKIFF_KAFKA_BATCH_MAX_RECORDS", "0", "1 to"}},
		"batch bytes":            {map[string]string{"BATCH_MAX_BYTES": "10"}, []string{"SKIFF_KAFKA_BATCH_MAX_BYTES", "10", "1KiB"}},
		"batch bytes unparsable": {map[string]string{"BATCH_MAX_BYTES": "lots"}, []string{"SKIFF_KAFKA_BATCH_MAX_BYTES", `"lots"`}},
		"linger":                 {map[string]string{"LINGER": "-1s"}, []string{"SKIFF_KAFKA_LINGER", "-1s"}},
		"message max":            {map[string]string{"MESSAGE_MAX_BYTES": "100"}, []string{"SKIFF_KAFKA_MESSAGE_MAX_BYTES", "100", "message.max.bytes"}},
		"timeout":                {map[string]string{"TIMEOUT": "0s"}, []string{"SKIFF_KAFKA_TIMEOUT", "positive"}},
		"unknown topic timeout":  {map[string]string{"UNKNOWN_TOPIC_TIMEOUT": "0s"}, []string{"SKIFF_KAFKA_UNKNOWN_TOPIC_TIMEOUT", "positive"}},
		"concurrency":            {map[string]string{"CONCURRENCY": "0"}, []string{"SKIFF_KAFKA_CONCURRENCY", "0", "1 to 64"}},
		"backoff":                {map[string]string{"BACKOFF_MIN": "1s", "BACKOFF_MAX": "10ms"}, []string{"SKIFF_KAFKA_BACKOFF_MAX", "10ms", "at least BACKOFF_MIN"}},
		"breaker":                {map[string]string{"BREAKER_FAILURES": "-1"}, []string{"SKIFF_KAFKA_BREAKER_FAILURES", "-1"}},
		"ca file":                {map[string]string{"TLS_CA_FILE": "/nonexistent/ca.pem"}, []string{"SKIFF_KAFKA_TLS_CA_FILE", "/nonexistent/ca.pem", "not readable"}},
		"cert without key":       {map[string]string{"TLS_CERT_FILE": secret}, []string{"SKIFF_KAFKA_TLS_CERT_FILE", "SKIFF_KAFKA_TLS_KEY_FILE", "both or neither"}},
		"mechanism":              {map[string]string{"SASL_MECHANISM": "gssapi"}, []string{"SKIFF_KAFKA_SASL_MECHANISM", `"gssapi"`, "scram-sha-512"}},
		"sasl without user":      {map[string]string{"SASL_MECHANISM": "plain", "SASL_PASSWORD_FILE": secret}, []string{"SKIFF_KAFKA_SASL_USERNAME is required"}},
		"sasl without password":  {map[string]string{"SASL_MECHANISM": "plain", "SASL_USERNAME": "u"}, []string{"SKIFF_KAFKA_SASL_PASSWORD_FILE", "required"}},
		"sasl both passwords":    {map[string]string{"SASL_MECHANISM": "plain", "SASL_USERNAME": "u", "SASL_PASSWORD": "p", "SASL_PASSWORD_FILE": secret}, []string{"both set"}},
		"sasl password missing":  {map[string]string{"SASL_MECHANISM": "plain", "SASL_USERNAME": "u", "SASL_PASSWORD_FILE": "/nonexistent/pw"}, []string{"SKIFF_KAFKA_SASL_PASSWORD_FILE", "/nonexistent/pw", "not readable"}},
		"user without mechanism": {map[string]string{"SASL_USERNAME": "u"}, []string{"SKIFF_KAFKA_SASL_MECHANISM is none"}},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"BROKERS": "kafka:9092", "TOPIC": "logs"}
			for k, v := range tc.env {
				env[k] = v
			}
			_, ps := loadKafka(t, env)
			for _, p := range ps {
				ok := true
				for _, w := range tc.want {
					ok = ok && strings.Contains(p.Error(), w)
				}
				if ok {
					return
				}
			}
			t.Fatalf("no problem mentions all of %q; got %v", tc.want, ps)
		})
	}
}

// TestKafkaValidateReportsEveryProblem: several bad values, several
// problems, not just the first.
func TestKafkaValidateReportsEveryProblem(t *testing.T) {
	_, ps := loadKafka(t, map[string]string{"BROKERS": "kafka:9092", "TOPIC": "a/b", "ACKS": "2", "COMPRESSION": "brotli"})
	if len(ps) != 3 {
		t.Fatalf("%d problems, want 3: %v", len(ps), ps)
	}
}

func TestKafkaPasswordIsSecret(t *testing.T) {
	for _, v := range Vars("SKIFF_KAFKA_", &Kafka{}) {
		if (v.Name == "SKIFF_KAFKA_SASL_PASSWORD") != v.Secret {
			t.Fatalf("%s secret = %v", v.Name, v.Secret)
		}
	}
}

func TestParseTopic(t *testing.T) {
	for in, want := range map[string][]TopicPart{
		"logs":                    {{Literal: "logs"}},
		"logs-{fields.app}":       {{Literal: "logs-"}, {Field: []string{"fields", "app"}}},
		"{kubernetes.namespace}":  {{Field: []string{"kubernetes", "namespace"}}},
		"{json.a.b|x}.v1":         {{Field: []string{"json", "a", "b"}, Fallback: "x", HasFallback: true}, {Literal: ".v1"}},
		"{path|none}{json.level}": {{Field: []string{"path"}, Fallback: "none", HasFallback: true}, {Field: []string{"json", "level"}}},
	} {
		got, err := ParseTopic(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		eq := slices.EqualFunc(got, want, func(a, b TopicPart) bool {
			return a.Literal == b.Literal && slices.Equal(a.Field, b.Field) && a.Fallback == b.Fallback && a.HasFallback == b.HasFallback
		})
		if !eq {
			t.Fatalf("%q: %+v, want %+v", in, got, want)
		}
	}
	for _, bad := range []string{"", "{", "a{}", "{fields}", "{x.y}", "{path.x}", "{json.a|}", "{json..a}", "a b"} {
		if _, err := ParseTopic(bad); err == nil {
			t.Fatalf("%q parsed", bad)
		}
	}
}
