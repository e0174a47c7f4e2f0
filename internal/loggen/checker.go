package loggen

import (
	"fmt"
	"sort"
	"strings"
)

// Checker tallies lines that came out the far end of a pipeline and
// reports, per stream, which sequence numbers are missing, duplicated or
// arrived corrupted. It keeps one bit per sequence number seen.
//
// A Checker is not safe for concurrent use.
type Checker struct {
	streams map[string]*streamTally
	corrupt int
	// firstCorrupt keeps the first few corrupt lines for error messages.
	firstCorrupt []string
}

type streamTally struct {
	seen  []uint64 // bitset indexed by seq-1
	lines int
	dups  int
	max   uint64
	// outOfOrder counts lines whose seq is lower than one seen before.
	outOfOrder int
}

// NewChecker returns an empty Checker.
func NewChecker() *Checker { return &Checker{streams: map[string]*streamTally{}} }

// Add records one line (with or without its newline) and reports whether
// it was intact.
func (c *Checker) Add(line []byte) bool {
	l, err := Decode(line)
	if err != nil {
		c.corrupt++
		if len(c.firstCorrupt) < 5 {
			c.firstCorrupt = append(c.firstCorrupt, fmt.Sprintf("%q: %v", truncate(line, 120), err))
		}
		return false
	}
	s := c.streams[l.Stream]
	if s == nil {
		s = &streamTally{}
		c.streams[l.Stream] = s
	}
	s.lines++
	i := l.Seq - 1
	for uint64(len(s.seen))*64 <= i {
		s.seen = append(s.seen, 0)
	}
	if s.seen[i/64]&(1<<(i%64)) != 0 {
		s.dups++
	}
	s.seen[i/64] |= 1 << (i % 64)
	if l.Seq < s.max {
		s.outOfOrder++
	}
	s.max = max(s.max, l.Seq)
	return true
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// StreamResult is what a Checker saw of one stream.
type StreamResult struct {
	Stream string
	// Lines counts intact lines, duplicates included.
	Lines int
	// Distinct counts distinct sequence numbers seen.
	Distinct uint64
	// Duplicates counts lines whose sequence number was already seen.
	Duplicates int
	// OutOfOrder counts lines that arrived after a higher sequence number.
	OutOfOrder int
	// Max is the highest sequence number seen.
	Max uint64
	// Missing lists the absent sequence numbers in 1..want, as ranges
	// [from, to], at most 10 of them; MissingCount counts all.
	Missing      [][2]uint64
	MissingCount uint64
}

// Result reports what was seen of stream, given that want lines
// (sequence numbers 1..want) were written to it. With want 0, the highest
// sequence number seen is taken as want.
func (c *Checker) Result(stream string, want uint64) StreamResult {
	r := StreamResult{Stream: stream}
	s := c.streams[stream]
	if s == nil {
		s = &streamTally{}
	}
	r.Lines, r.Duplicates, r.OutOfOrder, r.Max = s.lines, s.dups, s.outOfOrder, s.max
	if want == 0 {
		want = s.max
	}
	var run *[2]uint64
	for seq := uint64(1); seq <= max(want, s.max); seq++ {
		i := seq - 1
		have := i/64 < uint64(len(s.seen)) && s.seen[i/64]&(1<<(i%64)) != 0
		if have {
			r.Distinct++
			run = nil
			continue
		}
		if seq > want {
			continue
		}
		r.MissingCount++
		if run != nil {
			run[1] = seq
			continue
		}
		if len(r.Missing) < 10 {
			r.Missing = append(r.Missing, [2]uint64{seq, seq})
			run = &r.Missing[len(r.Missing)-1]
		}
	}
	return r
}

// Streams lists the stream ids seen, sorted.
func (c *Checker) Streams() []string {
	ids := make([]string, 0, len(c.streams))
	for id := range c.streams {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Corrupt counts the lines that failed Decode.
func (c *Checker) Corrupt() int { return c.corrupt }

// Verify returns nil if every stream in want (stream id → lines written)
// arrived complete, uncorrupted and with no stream unaccounted for; with
// allowDuplicates false, duplicates are errors too (skiff promises
// at-least-once, so tests of restarts allow them). The error describes
// every problem found.
func (c *Checker) Verify(want map[string]uint64, allowDuplicates bool) error {
	var problems []string
	if c.corrupt > 0 {
		problems = append(problems, fmt.Sprintf("%d corrupt lines, first: %s", c.corrupt, strings.Join(c.firstCorrupt, "; ")))
	}
	for _, id := range c.Streams() {
		if _, ok := want[id]; !ok {
			problems = append(problems, fmt.Sprintf("unexpected stream %q", id))
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r := c.Result(id, want[id])
		if r.MissingCount > 0 {
			problems = append(problems, fmt.Sprintf("stream %s: %d of %d lines missing, first ranges %v", id, r.MissingCount, want[id], r.Missing))
		}
		if r.Max > want[id] {
			problems = append(problems, fmt.Sprintf("stream %s: seq %d seen, only %d written", id, r.Max, want[id]))
		}
		if r.Duplicates > 0 && !allowDuplicates {
			problems = append(problems, fmt.Sprintf("stream %s: %d duplicate lines", id, r.Duplicates))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("loggen check: %s", strings.Join(problems, "\n"))
	}
	return nil
}
