package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/skiff-dev/skiff/internal/record"
)

// jsonBatch decodes a body of /v1/json into q's records: one JSON object,
// or an array of objects, or (ndjson) one object per line, blank lines
// skipped. Each object becomes a record shipped as the object "json".
func (q *request) jsonBatch(body []byte, ndjson bool) error {
	if ndjson {
		line := 0
		for rest := body; len(rest) > 0; {
			var l []byte
			l, rest, _ = bytes.Cut(rest, []byte{'\n'})
			line++
			l = bytes.TrimSpace(l)
			if len(l) == 0 {
				continue
			}
			if err := q.jsonObject(l, func() string { return fmt.Sprintf("line %d", line) }); err != nil {
				return err
			}
		}
		return nil
	}
	b := bytes.TrimSpace(body)
	if len(b) == 0 {
		return nil
	}
	if !json.Valid(b) {
		return malformed("body is not valid JSON: %v", syntaxError(b))
	}
	switch b[0] {
	case '{':
		return q.jsonObject(b, func() string { return "body" })
	case '[':
	default:
		return malformed("body is a JSON %s, not an object or an array of objects", kindOf(b[0]))
	}
	i := skipSpace(b, 1)
	for n := 0; i < len(b) && b[i] != ']'; n++ {
		end := valueEnd(b, i)
		if err := q.jsonObject(b[i:end], func() string { return fmt.Sprintf("element %d", n) }); err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return nil
}

// jsonObject adds obj, which must be one JSON object, as a record. where
// names it in an error message.
func (q *request) jsonObject(obj []byte, where func() string) error {
	if obj[0] != '{' {
		if !json.Valid(obj) {
			return malformed("%s is not valid JSON: %v", where(), syntaxError(obj))
		}
		return malformed("%s is a JSON %s, not an object", where(), kindOf(obj[0]))
	}
	if !json.Valid(obj) {
		return malformed("%s is not valid JSON: %v", where(), syntaxError(obj))
	}
	if !utf8.Valid(obj) {
		return malformed("%s is not valid UTF-8", where())
	}
	// A line break outside a string is white space: records are shipped
	// one per line, so the object is compacted.
	if bytes.ContainsAny(obj, "\r\n") {
		var c bytes.Buffer
		c.Grow(len(obj))
		_ = json.Compact(&c, obj) // valid JSON compacts
		obj = c.Bytes()
	}
	q.rec = record.Record{Origin: record.OriginJSON, Message: obj, Flags: record.FlagJSON}
	return q.emit(&q.rec)
}

// textBatch decodes a body of /v1/text: one record per line (LF or CRLF;
// a last line without a terminator counts), lines longer than
// MaxLineBytes split into pieces marked partial, as the tailer does.
func (q *request) textBatch(body []byte) error {
	max := q.o.MaxLineBytes
	for rest := body; len(rest) > 0; {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte{'\n'})
		l = bytes.TrimSuffix(l, []byte{'\r'})
		var flags uint8
		if len(l) > max {
			flags = record.FlagPartial
		}
		for {
			piece := l[:min(len(l), max)]
			q.rec = record.Record{Origin: record.OriginText, Message: piece, Flags: flags}
			if err := q.emit(&q.rec); err != nil {
				return err
			}
			l = l[len(piece):]
			if len(l) == 0 {
				break
			}
		}
	}
	return nil
}

func kindOf(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// syntaxError is encoding/json's account of what is wrong with b.
func syntaxError(b []byte) error {
	var v json.RawMessage
	err := json.Unmarshal(b, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%v at byte %d", se, se.Offset)
	}
	if err == nil {
		return errors.New("not one JSON value")
	}
	return err
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index after the JSON value starting at b[i], in b
// known to be valid JSON.
func valueEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			for j++; j < len(b) && b[j] != '"'; j++ {
				if b[j] == '\\' {
					j++
				}
			}
			if depth == 0 {
				return j + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
			if depth < 0 {
				return j
			}
		case ',':
			if depth == 0 {
				return j
			}
		}
	}
	return len(b)
}
