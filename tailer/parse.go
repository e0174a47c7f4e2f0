package tailer

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/skiff-dev/skiff/internal/record"
)

// jsonObject reports whether msg is one JSON object (surrounding white
// space allowed) that the encoder can embed as is, and returns it trimmed.
// The first-byte test keeps the cost for plain-text lines near zero.
func jsonObject(msg []byte) ([]byte, bool) {
	m := bytes.TrimSpace(msg)
	if len(m) < 2 || m[0] != '{' || m[len(m)-1] != '}' {
		return msg, false
	}
	if !json.Valid(m) || !utf8.Valid(m) {
		return msg, false
	}
	return m, true
}

// eventTime returns the time in field key of obj, a valid JSON object: an
// RFC 3339 string, or a number of seconds (or milliseconds, for values
// above 1e11) since the epoch. It returns the zero time when the field is
// absent or not a time.
func eventTime(obj []byte, key string) time.Time {
	v, ok := record.JSONMember(obj, key)
	if !ok {
		return time.Time{}
	}
	if v[0] == '"' {
		s := v[1 : len(v)-1]
		if bytes.IndexByte(s, '\\') >= 0 {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return time.Time{}
		}
		return t
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) {
		return time.Time{}
	}
	if f > 1e11 {
		ms := math.Floor(f)
		return time.UnixMilli(int64(ms)).Add(time.Duration((f - ms) * 1e6))
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9))
}
