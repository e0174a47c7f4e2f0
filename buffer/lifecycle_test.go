package buffer

import (
	"testing"
)

// The lifecycle rules are pure functions over the segment list: tested here
// without disk or goroutines.

const H = segmentHeaderSize

// three segments: 1 and 2 sealed (10 records of 100 bytes each), 3 active.
var segs3 = []segInfo{
	{id: 1, firstSeq: 0, size: H + 1000},
	{id: 2, firstSeq: 10, size: H + 1000},
	{id: 3, firstSeq: 20, size: H + 500},
}

func TestNormalize(t *testing.T) {
	end, endSeq := int64(H+500), uint64(25)
	cases := map[string]struct {
		in   Pos
		want Pos
		idx  int
	}{
		"zero pos is the oldest record":   {Pos{}, Pos{1, H, 0}, 0},
		"inside a segment stays":          {Pos{1, H + 100, 1}, Pos{1, H + 100, 1}, 0},
		"end of sealed moves to next":     {Pos{1, H + 1000, 10}, Pos{2, H, 10}, 1},
		"deleted segment moves to oldest": {Pos{0, H + 5, 3}, Pos{1, H, 0}, 0},
		"past the end of the log clamps":  {Pos{3, H + 900, 30}, Pos{3, end, endSeq}, 2},
		"future segment clamps":           {Pos{9, H, 99}, Pos{3, end, endSeq}, 2},
		"end of active stays":             {Pos{3, end, endSeq}, Pos{3, end, endSeq}, 2},
		"offset inside header":            {Pos{2, 3, 0}, Pos{2, H, 10}, 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, idx := normalize(segs3, end, endSeq, c.in)
			if got != c.want || idx != c.idx {
				t.Fatalf("normalize(%v) = %v, %d; want %v, %d", c.in, got, idx, c.want, c.idx)
			}
		})
	}
	// A gap (segment 2 quarantined): a position in it moves to segment 3.
	gap := []segInfo{segs3[0], segs3[2]}
	if got, _ := normalize(gap, end, endSeq, Pos{2, H + 10, 11}); got != (Pos{3, H, 20}) {
		t.Fatalf("gap: %v", got)
	}
}

func TestCollectible(t *testing.T) {
	cases := map[string]struct {
		cursors []Pos
		want    int
	}{
		"no cursors: every sealed segment":   {nil, 2},
		"a cursor at the start holds all":    {[]Pos{{1, H, 0}}, 0},
		"a cursor in segment 2":              {[]Pos{{2, H + 100, 11}}, 1},
		"at the end of segment 1":            {[]Pos{{1, H + 1000, 10}}, 1},
		"at the end of segment 2":            {[]Pos{{2, H + 1000, 20}}, 2},
		"the slowest decides":                {[]Pos{{3, H + 100, 21}, {1, H + 500, 5}}, 0},
		"in the active segment":              {[]Pos{{3, H + 100, 21}, {3, H, 20}}, 2},
		"never the active one":               {[]Pos{{3, H + 500, 25}}, 2},
		"a cursor behind the oldest segment": {[]Pos{{0, H, 0}}, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := collectible(segs3, c.cursors); got != c.want {
				t.Fatalf("collectible = %d, want %d", got, c.want)
			}
		})
	}
	if got := collectible(segs3[2:], nil); got != 0 {
		t.Fatalf("only the active segment: %d", got)
	}
}

func TestLag(t *testing.T) {
	end, endSeq := int64(H+500), uint64(25)
	cases := map[string]struct {
		p              Pos
		records, bytes int64
	}{
		"from the start":  {Pos{}, 25, 2500},
		"mid segment 1":   {Pos{1, H + 300, 3}, 22, 2200},
		"at the end":      {Pos{3, end, endSeq}, 0, 0},
		"end of sealed 2": {Pos{2, H + 1000, 20}, 5, 500},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r, b := lag(segs3, end, endSeq, c.p)
			if r != c.records || b != c.bytes {
				t.Fatalf("lag = %d records %d bytes, want %d, %d", r, b, c.records, c.bytes)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	recs := func(sizes ...int) []int { // the ends of frames of these payloads
		var b Batch
		for _, n := range sizes {
			b.Add(make([]byte, n))
		}
		return b.ends
	}
	cases := map[string]struct {
		recs      []int
		size, seg int64
		free      int64
		n         int
		bytes     int64
		roll      bool
	}{
		"all fit":                      {recs(92, 92), H, 1 << 20, 1 << 20, 2, 200, false},
		"segment full after one":       {recs(92, 92), 1<<20 - 150, 1 << 20, 1 << 20, 1, 100, false},
		"segment full: roll":           {recs(92), 1<<20 - 50, 1 << 20, 1 << 20, 0, 0, true},
		"bound reached":                {recs(92), 4090, 1 << 20, 0, 0, 0, false},
		"same block costs nothing":     {recs(92), H, 1 << 20, 0, 1, 100, false},
		"fits in the block's slack":    {recs(92), 100, 1 << 20, 0, 1, 100, false},
		"next block needs free":        {recs(92), 4000, 1 << 20, 4096, 1, 100, false},
		"one byte short of a block":    {recs(92), 4000, 1 << 20, 4095, 0, 0, false},
		"next block with no free":      {recs(92), 4050, 1 << 20, 0, 0, 0, false},
		"big record in empty segment":  {recs(2 << 20), H, 1 << 20, 4 << 20, 1, 2<<20 + 8, false},
		"big record rolls a used one":  {recs(2 << 20), H + 100, 1 << 20, 4 << 20, 0, 0, true},
		"partial fit within the bound": {recs(4000, 4000, 4000), H, 1 << 20, 4096, 2, 8016, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			n, bytes, roll := plan(c.recs, 0, c.size, c.seg, c.free)
			if n != c.n || bytes != c.bytes || roll != c.roll {
				t.Fatalf("plan = %d, %d, %v; want %d, %d, %v", n, bytes, roll, c.n, c.bytes, c.roll)
			}
		})
	}
	// Later in a batch: frame sizes are measured from start.
	ends := recs(92, 92, 92) // 100, 200, 300
	if n, bytes, roll := plan(ends[1:], ends[0], 1<<20-250, 1<<20, 1<<20); n != 2 || bytes != 200 || roll {
		t.Fatalf("plan from the second frame = %d, %d, %v; want 2, 200, false", n, bytes, roll)
	}
}

func TestDropSkips(t *testing.T) {
	cases := map[string]struct {
		p    Pos
		want int64
	}{
		"at the start of the oldest": {Pos{1, H, 0}, 10},
		"mid oldest":                 {Pos{1, H + 300, 3}, 7},
		"at the end of the oldest":   {Pos{1, H + 1000, 10}, 0},
		"past the oldest":            {Pos{2, H + 100, 11}, 0},
		"behind the oldest":          {Pos{0, H, 0}, 10},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := dropSkips(segs3, c.p); got != c.want {
				t.Fatalf("dropSkips = %d, want %d", got, c.want)
			}
		})
	}
}

func TestDiskSize(t *testing.T) {
	for n, want := range map[int64]int64{0: 0, 1: 4096, 4096: 4096, 4097: 8192, H: 4096} {
		if got := diskSize(n); got != want {
			t.Fatalf("diskSize(%d) = %d, want %d", n, got, want)
		}
	}
}
