package filter

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusLine is one line of testdata/corpus/<detector>.txt: "+ " lines
// carry secrets marked «like this» (or ‹like this› where the marker is a
// JSON value and so comes quoted), "- " lines must come out unchanged.
type corpusLine struct {
	file    string
	n       int
	secret  bool
	text    string   // the line as logged (marks removed)
	secrets []string // the marked parts
	want    string   // with every mark replaced by [REDACTED:<file's detector>]
}

func loadCorpus(t *testing.T) map[string][]corpusLine {
	t.Helper()
	paths, err := filepath.Glob("testdata/corpus/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	out := map[string][]corpusLine{}
	for _, p := range paths {
		det := strings.TrimSuffix(filepath.Base(p), ".txt")
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			l := sc.Text()
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if len(l) < 2 || (l[0] != '+' && l[0] != '-') || l[1] != ' ' {
				t.Fatalf("%s:%d: a corpus line starts with '+ ' or '- '", p, n)
			}
			cl := corpusLine{file: filepath.Base(p), n: n, secret: l[0] == '+'}
			var text, want strings.Builder
			rest := l[2:]
			for {
				a := strings.IndexAny(rest, "«‹")
				if a < 0 {
					break
				}
				open, close, marker := "«", "»", "[REDACTED:"+det+"]"
				if strings.HasPrefix(rest[a:], "‹") {
					open, close, marker = "‹", "›", `"`+marker+`"`
				}
				b := strings.Index(rest[a:], close)
				if b < 0 {
					t.Fatalf("%s:%d: unclosed %s", p, n, open)
				}
				sec := rest[a+len(open) : a+b]
				text.WriteString(rest[:a])
				text.WriteString(sec)
				want.WriteString(rest[:a])
				want.WriteString(marker)
				cl.secrets = append(cl.secrets, sec)
				rest = rest[a+b+len(close):]
			}
			text.WriteString(rest)
			want.WriteString(rest)
			cl.text, cl.want = text.String(), want.String()
			if cl.secret != (len(cl.secrets) > 0) {
				t.Fatalf("%s:%d: '+' lines mark their secrets, '-' lines have none", p, n)
			}
			out[det] = append(out[det], cl)
		}
		f.Close()
	}
	return out
}

func redact(t *testing.T, f *Filter, line string) (string, bool) {
	t.Helper()
	var st Stream
	out, red := f.Redact(&st, nil, []byte(line))
	return string(out), red
}

// TestCorpusEachDetector runs each detector alone on its own corpus:
// every marked secret becomes that detector's marker and every other byte
// stays; the negative lines stay whole.
func TestCorpusEachDetector(t *testing.T) {
	for det, lines := range loadCorpus(t) {
		if det == "negatives" {
			continue // no detector's own: TestCorpusAll
		}
		t.Run(det, func(t *testing.T) {
			f, err := New(Options{Redact: []string{det}})
			if err != nil {
				t.Fatal(err)
			}
			pos, neg := 0, 0
			for _, cl := range lines {
				want := cl.text
				if cl.secret {
					want = cl.want
					pos++
				} else {
					neg++
				}
				// The prefilter reads pairs at even offsets: the same line
				// one byte further must give the same result.
				for _, shift := range []string{"", " "} {
					got, red := redact(t, f, shift+cl.text)
					if got != shift+want || red != cl.secret {
						t.Errorf("%s:%d (shifted %d):\n in   %s\n got  %s\n want %s", cl.file, cl.n, len(shift), cl.text, got, want)
					}
				}
			}
			t.Logf("%s: %d true positives, %d negatives", det, pos, neg)
		})
	}
}

// TestCorpusAll runs every detector (SKIFF_REDACT=all) on every corpus: no
// marked secret survives, the text around them does, in order, every
// negative line of every corpus is left alone, and a JSON line stays valid
// JSON.
func TestCorpusAll(t *testing.T) {
	f, err := New(Options{Redact: []string{"all"}})
	if err != nil {
		t.Fatal(err)
	}
	pos, neg := 0, 0
	for _, lines := range loadCorpus(t) {
		for _, cl := range lines {
			got, red := redact(t, f, cl.text)
			if !cl.secret {
				neg++
				if red || got != cl.text {
					t.Errorf("false positive %s:%d:\n in  %s\n got %s", cl.file, cl.n, cl.text, got)
				}
				continue
			}
			pos++
			for _, s := range cl.secrets {
				if strings.Contains(got, s) {
					t.Errorf("%s:%d: secret %q survived: %s", cl.file, cl.n, s, got)
				}
			}
			rest := got
			marker := "[REDACTED:" + strings.TrimSuffix(cl.file, ".txt") + "]"
			for _, part := range strings.Split(strings.ReplaceAll(cl.want, `"`+marker+`"`, marker), marker) {
				i := strings.Index(rest, part)
				if i < 0 {
					t.Errorf("%s:%d: %q is not kept in %s", cl.file, cl.n, part, got)
					break
				}
				rest = rest[i+len(part):]
			}
			if json.Valid([]byte(cl.text)) && !json.Valid([]byte(got)) {
				t.Errorf("%s:%d: valid JSON became invalid: %s", cl.file, cl.n, got)
			}
		}
	}
	t.Logf("all detectors: %d true positives, %d negatives", pos, neg)
}
