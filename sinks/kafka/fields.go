package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/record"
)

// fieldRef is a record field named by KEY or in a TOPIC template.
type fieldRef struct {
	path []string
	// static fields (fields.*, kubernetes.*) are the same for every record
	// of this instance; their value is resolved once by newFieldResolver.
	static      bool
	staticValue string
	staticOK    bool
}

// recordFields resolves fields of one record. It decodes the record's JSON
// form at most once, and only for fields that need it (json.*, id, time…).
type recordFields struct {
	rec     *record.Record
	value   []byte // the record's JSON form
	decoded map[string]any
	done    bool
}

// newFieldRef parses a field reference and, for a static field, resolves it
// from the Encoder's rendering of an empty record.
func newFieldRef(path []string, enc *record.Encoder) fieldRef {
	f := fieldRef{path: path}
	if path[0] == "fields" || path[0] == "kubernetes" {
		f.static = true
		var zero record.Record
		rf := recordFields{rec: &zero, value: enc.AppendJSON(nil, &zero)}
		f.staticValue, f.staticOK = rf.lookup(path)
	}
	return f
}

// resolve returns the field's value in rf's record as text, and whether the
// record has it as a string, number or bool.
func (f *fieldRef) resolve(rf *recordFields) (string, bool) {
	switch {
	case f.static:
		return f.staticValue, f.staticOK
	case len(f.path) == 1 && f.path[0] == "path":
		return string(rf.rec.Path), len(rf.rec.Path) > 0
	}
	return rf.lookup(f.path)
}

func (rf *recordFields) lookup(path []string) (string, bool) {
	if !rf.done {
		rf.done = true
		d := json.NewDecoder(bytes.NewReader(rf.value))
		d.UseNumber()
		// Decoded into a local so that rf itself stays on the stack.
		var m map[string]any
		_ = d.Decode(&m) // our own encoder's output; on error nothing resolves
		rf.decoded = m
	}
	var v any = rf.decoded
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[p]; !ok {
			return "", false
		}
	}
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return fmt.Sprint(x), true
	}
	return "", false
}

// topicTemplate renders TOPIC for a record.
type topicTemplate struct {
	parts []config.TopicPart
	refs  []fieldRef // aligned with parts; zero for literals
	// fixed is the topic when it needs no per-record field.
	fixed string
	// templated is set when TOPIC has a field, even one that is the same for
	// every record: a missing topic is then dead-lettered after
	// UNKNOWN_TOPIC_TIMEOUT instead of retried forever.
	templated bool
}

// topic reasons, also dead-letter reasons.
const (
	reasonTopicUnresolved = "topic_unresolved"
	reasonInvalidTopic    = "invalid_topic"
)

func newTopicTemplate(s string, enc *record.Encoder) (*topicTemplate, error) {
	parts, err := config.ParseTopic(s)
	if err != nil {
		return nil, fmt.Errorf("topic %q %w", s, err)
	}
	t := &topicTemplate{parts: parts, refs: make([]fieldRef, len(parts))}
	dynamic := false
	for i, p := range parts {
		if p.Field == nil {
			continue
		}
		t.templated = true
		t.refs[i] = newFieldRef(p.Field, enc)
		if !t.refs[i].static {
			dynamic = true
		}
	}
	if !dynamic {
		topic, reason := t.render(nil)
		if reason != "" {
			return nil, fmt.Errorf("topic %q: %s for every record (is the field in SKIFF_FIELDS or the pod's Downward API variables?)", s, strings.ReplaceAll(reason, "_", " "))
		}
		t.fixed = topic
	}
	return t, nil
}

// render returns the record's topic, or the dead-letter reason why it has
// none. rf may be nil when no field is per-record.
func (t *topicTemplate) render(rf *recordFields) (topic, reason string) {
	if t.fixed != "" {
		return t.fixed, ""
	}
	var b strings.Builder
	for i, p := range t.parts {
		if p.Field == nil {
			b.WriteString(p.Literal)
			continue
		}
		v, ok := t.refs[i].resolve(rf)
		if !ok || v == "" {
			if !p.HasFallback {
				return "", reasonTopicUnresolved
			}
			v = p.Fallback
		}
		b.WriteString(v)
	}
	topic = b.String()
	if !validTopic(topic) {
		return "", reasonInvalidTopic
	}
	return topic, ""
}

func validTopic(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 249 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !config.TopicChar(r) }) < 0
}
