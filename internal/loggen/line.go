package loggen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"time"
)

// Format selects how lines are rendered.
type Format int

const (
	// FormatPlain renders "stream=<id> seq=<n> crc=<8hex> <padding>".
	FormatPlain Format = iota
	// FormatJSON renders {"stream":…,"seq":…,"crc":…,"pad":…}.
	FormatJSON
)

// ParseFormat maps "plain" and "json" to a Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "plain":
		return FormatPlain, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("format %q is not accepted (accepted: plain, json)", s)
}

// String returns "plain" or "json".
func (f Format) String() string {
	if f == FormatJSON {
		return "json"
	}
	return "plain"
}

// Line is the content of one generated line, less its padding.
type Line struct {
	Stream string
	Seq    uint64
	// Time is the generation time; zero means the line has no ts field.
	Time time.Time
}

// TimeLayout is the fixed-width layout of the optional ts field.
const TimeLayout = "2006-01-02T15:04:05.000000000Z"

const (
	maxStreamLen = 64
	alphabet     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// cycle is the alphabet repeated (a whole number of times, about 4 KiB):
// padding is a window of it, so it is appended and checksummed in a few
// large pieces without allocating.
var cycle = []byte(strings.Repeat(alphabet, 4096/len(alphabet)+1))

// ValidStream reports whether id may be used as a stream id.
func ValidStream(id string) bool {
	if len(id) == 0 || len(id) > maxStreamLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !streamByte(id[i]) {
			return false
		}
	}
	return true
}

func streamByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

func padByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Padding returns n padding bytes for sequence number seq. The content
// rotates with seq so that a line swapped for another of the same length
// fails its checksum.
func Padding(seq uint64, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = alphabet[(seq+uint64(i))%uint64(len(alphabet))]
	}
	return p
}

// Checksum returns the CRC-32C of "<stream> <seq> <padding>".
func Checksum(stream string, seq uint64, padding []byte) uint32 {
	var num [24]byte
	c := crc32.Update(0, castagnoli, []byte(stream))
	n := append(num[:0], ' ')
	n = strconv.AppendUint(n, seq, 10)
	n = append(n, ' ')
	c = crc32.Update(c, castagnoli, n)
	return crc32.Update(c, castagnoli, padding)
}

// HeaderLen is the length of l rendered in f with no padding: the
// shortest line AppendLine can produce for it.
func HeaderLen(f Format, l Line) int {
	n := len(l.Stream) + decimalLen(l.Seq) + 8
	if f == FormatJSON {
		n += len(`{"stream":"","seq":,"crc":"","pad":""}`)
		if !l.Time.IsZero() {
			n += len(`"ts":"",`) + len(TimeLayout)
		}
		return n
	}
	n += len("stream= seq= crc=")
	if !l.Time.IsZero() {
		n += len("ts= ") + len(TimeLayout)
	}
	return n
}

func decimalLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// AppendLine appends l rendered in f and padded to size bytes, or to
// HeaderLen(f, l) bytes if that is longer; no newline. l.Stream must be ValidStream.
func AppendLine(dst []byte, f Format, l Line, size int) []byte {
	h := HeaderLen(f, l)
	pad, space := 0, false
	if f == FormatPlain {
		if size > h {
			pad, space = size-h-1, true // one space before the padding
		}
	} else if size > h {
		pad = size - h
	}
	dst = growBy(dst, h+pad+1)
	var hexsum [8]byte
	hexCRC(hexsum[:], paddedChecksum(l.Stream, l.Seq, pad))
	if f == FormatJSON {
		dst = append(dst, '{')
		if !l.Time.IsZero() {
			dst = append(dst, `"ts":"`...)
			dst = l.Time.UTC().AppendFormat(dst, TimeLayout)
			dst = append(dst, `",`...)
		}
		dst = append(dst, `"stream":"`...)
		dst = append(dst, l.Stream...)
		dst = append(dst, `","seq":`...)
		dst = strconv.AppendUint(dst, l.Seq, 10)
		dst = append(dst, `,"crc":"`...)
		dst = append(dst, hexsum[:]...)
		dst = append(dst, `","pad":"`...)
		dst = appendPadding(dst, l.Seq, pad)
		return append(dst, `"}`...)
	}
	if !l.Time.IsZero() {
		dst = append(dst, "ts="...)
		dst = l.Time.UTC().AppendFormat(dst, TimeLayout)
		dst = append(dst, ' ')
	}
	dst = append(dst, "stream="...)
	dst = append(dst, l.Stream...)
	dst = append(dst, " seq="...)
	dst = strconv.AppendUint(dst, l.Seq, 10)
	dst = append(dst, " crc="...)
	dst = append(dst, hexsum[:]...)
	if space {
		dst = append(dst, ' ')
		dst = appendPadding(dst, l.Seq, pad)
	}
	return dst
}

// paddingChunks calls f with consecutive pieces of Padding(seq, n).
func paddingChunks(seq uint64, n int, f func([]byte)) {
	off := int(seq % uint64(len(alphabet)))
	for n > 0 {
		// cycle[i] is alphabet[i%len(alphabet)], so the next piece
		// continues the rotation from its phase, not from cycle's end.
		chunk := cycle[off:]
		if len(chunk) > n {
			chunk = chunk[:n]
		}
		f(chunk)
		n -= len(chunk)
		off = (off + len(chunk)) % len(alphabet)
	}
}

// appendPadding appends Padding(seq, n) without allocating.
func appendPadding(dst []byte, seq uint64, n int) []byte {
	paddingChunks(seq, n, func(b []byte) { dst = append(dst, b...) })
	return dst
}

// paddedChecksum is Checksum(stream, seq, Padding(seq, n)) without
// materialising the padding.
func paddedChecksum(stream string, seq uint64, n int) uint32 {
	var buf [maxStreamLen + 24]byte
	b := append(buf[:0], stream...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, ' ')
	c := crc32.Update(0, castagnoli, b)
	paddingChunks(seq, n, func(p []byte) { c = crc32.Update(c, castagnoli, p) })
	return c
}

func growBy(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), 2*cap(b)+n)
	copy(nb, b)
	return nb
}

const hexDigits = "0123456789abcdef"

func hexCRC(dst []byte, v uint32) {
	for i := 7; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// Parse reports the stream and sequence number of a line produced by
// AppendLine (either format, with or without a trailing newline), and
// whether it is intact: well formed and its checksum matches.
func Parse(line []byte) (stream string, seq uint64, ok bool) {
	l, err := Decode(line)
	if err != nil {
		return "", 0, false
	}
	return l.Stream, l.Seq, true
}

// ErrCorrupt is wrapped by every error Decode returns for a line that is
// not an intact generated line.
var ErrCorrupt = errors.New("corrupt line")

// Decode parses and verifies a line produced by AppendLine. A trailing
// "\n" or "\r\n" is ignored. Errors wrap ErrCorrupt.
func Decode(line []byte) (Line, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > 0 && line[0] == '{' {
		return decodeJSON(line)
	}
	return decodePlain(line)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

func decodePlain(line []byte) (Line, error) {
	var l Line
	rest := line
	if v, ok := bytes.CutPrefix(rest, []byte("ts=")); ok {
		if len(v) < len(TimeLayout)+1 || v[len(TimeLayout)] != ' ' {
			return l, corrupt("bad ts field")
		}
		t, err := time.Parse(TimeLayout, string(v[:len(TimeLayout)]))
		if err != nil {
			return l, corrupt("bad ts field: %v", err)
		}
		l.Time = t
		rest = v[len(TimeLayout)+1:]
	}
	v, ok := bytes.CutPrefix(rest, []byte("stream="))
	if !ok {
		return l, corrupt("no stream field")
	}
	id, rest, ok := bytes.Cut(v, []byte(" seq="))
	if !ok || !ValidStream(string(id)) {
		return l, corrupt("bad stream field")
	}
	num, rest, ok := bytes.Cut(rest, []byte(" crc="))
	if !ok {
		return l, corrupt("no crc field")
	}
	seq, err := parseSeq(num)
	if err != nil {
		return l, err
	}
	if len(rest) < 8 {
		return l, corrupt("short crc field")
	}
	sum, err := parseCRC(rest[:8])
	if err != nil {
		return l, err
	}
	padding := rest[8:]
	if len(padding) > 0 {
		if padding[0] != ' ' {
			return l, corrupt("bad crc field")
		}
		padding = padding[1:]
	}
	l.Stream, l.Seq = string(id), seq
	return l, verify(l, sum, padding)
}

// jsonLine is the shape of a JSON line for the encoding/json fallback.
type jsonLine struct {
	TS     *string
	Stream *string
	Seq    *uint64
	CRC    *string
	Pad    *string
}

func decodeJSON(line []byte) (Line, error) {
	if l, err, ok := decodeJSONCanonical(line); ok {
		return l, err
	}
	return decodeJSONGeneral(line)
}

// decodeJSONGeneral decodes any JSON object with exactly the line's keys.
func decodeJSONGeneral(line []byte) (Line, error) {
	var l Line
	// Decode field by field: encoding/json matches struct keys without
	// regard to case, and a corrupted key must not pass.
	var m map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(line))
	if err := d.Decode(&m); err != nil {
		return l, corrupt("bad JSON: %v", err)
	}
	if d.More() {
		return l, corrupt("trailing data after JSON object")
	}
	var j jsonLine
	for k, v := range m {
		var dst any
		switch k {
		case "ts":
			dst = &j.TS
		case "stream":
			dst = &j.Stream
		case "seq":
			dst = &j.Seq
		case "crc":
			dst = &j.CRC
		case "pad":
			dst = &j.Pad
		default:
			return l, corrupt("unknown field %q", k)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return l, corrupt("bad %s field: %v", k, err)
		}
	}
	if j.Stream == nil || j.Seq == nil || j.CRC == nil || j.Pad == nil {
		return l, corrupt("missing field")
	}
	if !ValidStream(*j.Stream) {
		return l, corrupt("bad stream field")
	}
	if *j.Seq == 0 {
		return l, corrupt("seq is 0")
	}
	if j.TS != nil {
		t, err := time.Parse(TimeLayout, *j.TS)
		if err != nil {
			return l, corrupt("bad ts field: %v", err)
		}
		l.Time = t
	}
	if len(*j.CRC) != 8 {
		return l, corrupt("bad crc field")
	}
	sum, err := parseCRC([]byte(*j.CRC))
	if err != nil {
		return l, err
	}
	l.Stream, l.Seq = *j.Stream, *j.Seq
	return l, verify(l, sum, []byte(*j.Pad))
}

// decodeJSONCanonical decodes a JSON line exactly as AppendLine renders
// it, without encoding/json; ok is false for any other shape, which the
// caller then decodes the slow, general way.
func decodeJSONCanonical(line []byte) (l Line, err error, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`{`))
	if !ok {
		return l, nil, false
	}
	if v, ok := bytes.CutPrefix(rest, []byte(`"ts":"`)); ok {
		if len(v) < len(TimeLayout)+2 || string(v[len(TimeLayout):len(TimeLayout)+2]) != `",` {
			return l, nil, false
		}
		t, err := time.Parse(TimeLayout, string(v[:len(TimeLayout)]))
		if err != nil {
			return l, nil, false
		}
		l.Time = t
		rest = v[len(TimeLayout)+2:]
	}
	rest, ok = bytes.CutPrefix(rest, []byte(`"stream":"`))
	if !ok {
		return l, nil, false
	}
	id, rest, ok := bytes.Cut(rest, []byte(`","seq":`))
	if !ok || !ValidStream(string(id)) {
		return l, nil, false
	}
	num, rest, ok := bytes.Cut(rest, []byte(`,"crc":"`))
	if !ok {
		return l, nil, false
	}
	seq, perr := parseSeq(num)
	if perr != nil || len(rest) < 8+len(`","pad":"`) || string(rest[8:8+len(`","pad":"`)]) != `","pad":"` {
		return l, nil, false
	}
	sum, perr := parseCRC(rest[:8])
	if perr != nil {
		return l, nil, false
	}
	padding, ok := bytes.CutSuffix(rest[8+len(`","pad":"`):], []byte(`"}`))
	if !ok || bytes.IndexByte(padding, '"') >= 0 {
		return l, nil, false
	}
	l.Stream, l.Seq = string(id), seq
	return l, verify(l, sum, padding), true
}

func parseSeq(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 || (b[0] == '0') {
		return 0, corrupt("bad seq field")
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, corrupt("bad seq field")
	}
	return v, nil
}

func parseCRC(b []byte) (uint32, error) {
	var v uint32
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		default:
			return 0, corrupt("bad crc field")
		}
		v = v<<4 | uint32(d)
	}
	return v, nil
}

func verify(l Line, sum uint32, padding []byte) error {
	for _, c := range padding {
		if !padByte(c) {
			return corrupt("bad padding in stream %s seq %d", l.Stream, l.Seq)
		}
	}
	if got := Checksum(l.Stream, l.Seq, padding); got != sum {
		return corrupt("checksum mismatch in stream %s seq %d: line says %08x, content is %08x", l.Stream, l.Seq, sum, got)
	}
	return nil
}
