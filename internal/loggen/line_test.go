package loggen

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAppendLineRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 27, 9, 0, 0, 120000000, time.UTC)
	tests := map[string]struct {
		format Format
		line   Line
		size   int
		want   string // exact rendering, when given
	}{
		"plain minimal":        {format: FormatPlain, line: Line{Stream: "s0", Seq: 1}, size: 0, want: "stream=s0 seq=1 crc=02ce2263"},
		"plain padded":         {format: FormatPlain, line: Line{Stream: "s0", Seq: 1}, size: 32, want: "stream=s0 seq=1 crc=5e4b6423 BCD"},
		"plain header plus 1":  {format: FormatPlain, line: Line{Stream: "s0", Seq: 1}, size: 29, want: "stream=s0 seq=1 crc=02ce2263 "},
		"plain with ts":        {format: FormatPlain, line: Line{Stream: "app-1.x_y", Seq: 123456789, Time: ts}, size: 200},
		"plain long padding":   {format: FormatPlain, line: Line{Stream: "a", Seq: 61}, size: 1000},
		"json minimal":         {format: FormatJSON, line: Line{Stream: "s0", Seq: 1}, size: 0, want: `{"stream":"s0","seq":1,"crc":"02ce2263","pad":""}`},
		"json padded with ts":  {format: FormatJSON, line: Line{Stream: "s0", Seq: 99, Time: ts}, size: 150},
		"json max seq":         {format: FormatJSON, line: Line{Stream: "s", Seq: 1<<64 - 1}, size: 10},
		"plain max seq stream": {format: FormatPlain, line: Line{Stream: strings.Repeat("z", 64), Seq: 1<<64 - 1}, size: 10},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := AppendLine([]byte("prefix"), tc.format, tc.line, tc.size)
			if !bytes.HasPrefix(got, []byte("prefix")) {
				t.Fatalf("AppendLine clobbered dst: %q", got)
			}
			got = got[len("prefix"):]
			if tc.want != "" && string(got) != tc.want {
				t.Errorf("AppendLine = %q, want %q", got, tc.want)
			}
			if wantLen := max(tc.size, HeaderLen(tc.format, tc.line)); len(got) != wantLen {
				t.Errorf("len = %d, want %d (%q)", len(got), wantLen, got)
			}
			l, err := Decode(append(got, '\n'))
			if err != nil {
				t.Fatalf("Decode(%q): %v", got, err)
			}
			if l.Stream != tc.line.Stream || l.Seq != tc.line.Seq || !l.Time.Equal(tc.line.Time) {
				t.Errorf("Decode = %+v, want %+v", l, tc.line)
			}
			if tc.format == FormatJSON && !json.Valid(got) {
				t.Errorf("not valid JSON: %q", got)
			}
			stream, seq, ok := Parse(got)
			if !ok || stream != tc.line.Stream || seq != tc.line.Seq {
				t.Errorf("Parse = %q %d %v", stream, seq, ok)
			}
		})
	}
}

func TestChecksumMatchesPadding(t *testing.T) {
	for _, n := range []int{0, 1, 61, 62, 63, 200, len(cycle) - 1, len(cycle), len(cycle) + 1, 10000} {
		for _, seq := range []uint64{1, 61, 62, 1000} {
			if got, want := paddedChecksum("s", seq, n), Checksum("s", seq, Padding(seq, n)); got != want {
				t.Errorf("paddedChecksum(s, %d, %d) = %08x, want %08x", seq, n, got, want)
			}
			if got := appendPadding(nil, seq, n); !bytes.Equal(got, Padding(seq, n)) {
				t.Errorf("appendPadding(%d, %d) = %q", seq, n, got)
			}
		}
	}
}

// Every single-byte change to a line must be caught: either the line no
// longer decodes, or it decodes to a different (stream, seq), which a
// Checker counts as a duplicate or out-of-range line.
func TestDecodeDetectsEveryByteFlip(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, f := range []Format{FormatPlain, FormatJSON} {
		orig := AppendLine(nil, f, Line{Stream: "s7", Seq: 4242, Time: ts}, 120)
		for i := range orig {
			for _, repl := range []byte{'0', 'A', 'z', ' ', '"', '\x00', orig[i] ^ 1} {
				if repl == orig[i] {
					continue
				}
				b := bytes.Clone(orig)
				b[i] = repl
				l, err := Decode(b)
				if err == nil && l.Stream == "s7" && l.Seq == 4242 && l.Time.Equal(ts) {
					// JSON may tolerate whitespace changes between tokens
					// only; our format has none, so any accepted change
					// must alter the content.
					t.Errorf("%s: byte %d %q->%q accepted unchanged: %q", f, i, orig[i], repl, b)
				}
				if err != nil && !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: error does not wrap ErrCorrupt: %v", f, err)
				}
			}
		}
		// Truncation at every length is caught.
		for n := range len(orig) {
			if _, err := Decode(orig[:n]); err == nil {
				t.Errorf("%s: truncated to %d bytes accepted: %q", f, n, orig[:n])
			}
		}
	}
}

func TestDecodeJSONReencoded(t *testing.T) {
	// A shipper may re-render the object: other key order, spacing.
	line := AppendLine(nil, FormatJSON, Line{Stream: "s1", Seq: 5, Time: time.Unix(0, 0)}, 100)
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	re, err := json.MarshalIndent(m, "", "  ") // sorted keys, new spacing
	if err != nil {
		t.Fatal(err)
	}
	if stream, seq, ok := Parse(re); !ok || stream != "s1" || seq != 5 {
		t.Fatalf("Parse(%s) = %q %d %v", re, stream, seq, ok)
	}
	m["pad"] = "X" + m["pad"].(string)[1:]
	re, _ = json.Marshal(m)
	if _, _, ok := Parse(re); ok {
		t.Fatalf("changed padding accepted: %s", re)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := map[string]string{
		"empty":         "",
		"no fields":     "hello world",
		"leading zero":  "stream=s0 seq=01 crc=02ce2263",
		"seq zero json": `{"stream":"s0","seq":0,"crc":"00000000","pad":""}`,
		"upper hex":     "stream=s0 seq=1 crc=0C5D64D6",
		"extra field":   `{"stream":"s0","seq":1,"crc":"02ce2263","pad":"","x":1}`,
		"bad stream":    "stream=s 0 seq=1 crc=02ce2263",
		"bad padding":   "stream=s0 seq=1 crc=02ce2263 a-b",
		"two objects":   `{"stream":"s0","seq":1,"crc":"02ce2263","pad":""}{}`,
	}
	for name, line := range tests {
		t.Run(name, func(t *testing.T) {
			if l, err := Decode([]byte(line)); err == nil {
				t.Fatalf("Decode(%q) = %+v, want error", line, l)
			}
		})
	}
}

func TestFormatAndModeNames(t *testing.T) {
	for _, s := range []string{"plain", "json"} {
		f, err := ParseFormat(s)
		if err != nil || f.String() != s {
			t.Errorf("ParseFormat(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) accepted")
	}
	if _, err := ParseRotateMode("move"); err == nil {
		t.Error("ParseRotateMode(move) accepted")
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(AppendLine(nil, FormatPlain, Line{Stream: "s0", Seq: 1, Time: time.Unix(1, 0)}, 80))
	f.Add(AppendLine(nil, FormatJSON, Line{Stream: "s0", Seq: 1}, 80))
	f.Fuzz(func(t *testing.T, b []byte) {
		// The fast JSON path agrees with encoding/json wherever it answers.
		if fl, ferr, ok := decodeJSONCanonical(b); ok {
			gl, gerr := decodeJSONGeneral(b)
			if (ferr == nil) != (gerr == nil) || ferr == nil && (fl.Stream != gl.Stream || fl.Seq != gl.Seq || !fl.Time.Equal(gl.Time)) {
				t.Fatalf("%q: fast %+v %v, general %+v %v", b, fl, ferr, gl, gerr)
			}
		}
		l, err := Decode(b)
		if err != nil {
			return
		}
		if !ValidStream(l.Stream) || l.Seq == 0 {
			t.Fatalf("Decode(%q) accepted invalid %+v", b, l)
		}
	})
}

func BenchmarkAppendLine(b *testing.B) {
	for _, f := range []Format{FormatPlain, FormatJSON} {
		for _, ts := range []bool{false, true} {
			name := f.String()
			if ts {
				name += "/ts"
			}
			b.Run(name, func(b *testing.B) {
				var buf []byte
				l := Line{Stream: "s0"}
				b.SetBytes(200)
				for i := 0; b.Loop(); i++ {
					l.Seq = uint64(i + 1)
					if ts {
						l.Time = time.Now()
					}
					buf = AppendLine(buf[:0], f, l, 200)
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, f := range []Format{FormatPlain, FormatJSON} {
		line := AppendLine(nil, f, Line{Stream: "s0", Seq: 12345, Time: time.Now()}, 200)
		b.Run(f.String(), func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := Decode(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
