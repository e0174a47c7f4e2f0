package loggen

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestChecker(t *testing.T) {
	line := func(stream string, seq uint64) []byte {
		return AppendLine(nil, FormatPlain, Line{Stream: stream, Seq: seq}, 60)
	}
	tests := map[string]struct {
		feed      func(c *Checker)
		want      map[string]uint64
		allowDups bool
		errHas    []string // empty: Verify must pass
	}{
		"complete in order": {
			feed: func(c *Checker) {
				for i := uint64(1); i <= 200; i++ {
					c.Add(line("a", i))
					c.Add(line("b", i))
				}
			},
			want: map[string]uint64{"a": 200, "b": 200},
		},
		"gap and tail missing": {
			feed: func(c *Checker) {
				for i := uint64(1); i <= 100; i++ {
					if i < 10 || i > 20 {
						c.Add(line("a", i))
					}
				}
			},
			want:   map[string]uint64{"a": 105},
			errHas: []string{"16 of 105 lines missing", "[[10 20] [101 105]]"},
		},
		"duplicates rejected": {
			feed: func(c *Checker) {
				for i := uint64(1); i <= 5; i++ {
					c.Add(line("a", i))
				}
				c.Add(line("a", 3))
			},
			want:   map[string]uint64{"a": 5},
			errHas: []string{"1 duplicate lines"},
		},
		"duplicates allowed": {
			feed: func(c *Checker) {
				for i := uint64(1); i <= 5; i++ {
					c.Add(line("a", i))
				}
				c.Add(line("a", 3))
			},
			want:      map[string]uint64{"a": 5},
			allowDups: true,
		},
		"corrupt and stray": {
			feed: func(c *Checker) {
				c.Add(line("a", 1))
				b := line("a", 2)
				b[len(b)-1] ^= 1
				c.Add(b)
				c.Add(line("zzz", 1))
				c.Add(line("a", 9))
			},
			want:   map[string]uint64{"a": 2},
			errHas: []string{"1 corrupt lines", `unexpected stream "zzz"`, "stream a: 1 of 2 lines missing", "seq 9 seen, only 2 written"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := NewChecker()
			tc.feed(c)
			err := c.Verify(tc.want, tc.allowDups)
			if len(tc.errHas) == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Verify passed, want an error")
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
		})
	}
}

func TestCheckerResult(t *testing.T) {
	c := NewChecker()
	for _, seq := range []uint64{1, 2, 5, 4, 4, 70} {
		c.Add(AppendLine(nil, FormatJSON, Line{Stream: "s", Seq: seq}, 0))
	}
	got := c.Result("s", 0)
	want := StreamResult{Stream: "s", Lines: 6, Distinct: 5, Duplicates: 1, OutOfOrder: 2, Max: 70,
		Missing: [][2]uint64{{3, 3}, {6, 69}}, MissingCount: 65}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Result = %+v\nwant     %+v", got, want)
	}
	if got := fmt.Sprint(c.Streams()); got != "[s]" {
		t.Errorf("Streams = %s", got)
	}
}
