package filter

import "slices"

// rewrite appends s to dst with every span in st replaced by its marker.
// Overlapping spans become one, named by the most specific detector.
func (f *Filter) rewrite(st *Stream, dst, s []byte) []byte {
	spans := st.spans
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		last := &merged[len(merged)-1]
		if sp.start < last.end {
			last.end = max(last.end, sp.end)
			if sp.id < last.id {
				last.id = sp.id
			}
			continue
		}
		merged = append(merged, sp)
	}
	st.spans = merged
	prev := 0
	for _, sp := range merged {
		dst = append(dst, s[prev:sp.start]...)
		if sp.quote {
			dst = append(dst, '"')
		}
		dst = append(dst, "[REDACTED:"...)
		dst = append(dst, f.names[sp.id]...)
		dst = append(dst, ']')
		if sp.quote {
			dst = append(dst, '"')
		}
		prev = sp.end
		if c := f.m.redactions[sp.id]; c != nil {
			c.Inc()
		}
	}
	return append(dst, s[prev:]...)
}
