package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/filter"
)

// redactTest reads lines from stdin and prints, one output line per input
// line, what skiff would do with it under SKIFF_DROP, SKIFF_KEEP,
// SKIFF_REDACT and SKIFF_REDACT_CUSTOM (and SKIFF_PARSE=json for field
// rules): "ship", "redact" or "drop:drop" / "drop:keep", a tab, then the
// line as it would be shipped (dropped lines as read). A summary goes to
// stderr. Each line is one record: SKIFF_MULTILINE_START is not applied.
func redactTest(stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := config.LoadFilter()
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintf(stderr, "skiff: %d configuration problem(s):\n", len(ps))
			for _, p := range ps {
				fmt.Fprintf(stderr, "  - %v\n", p)
			}
		}
		return exitConfig
	}
	if !cfg.Filters() {
		fmt.Fprintln(stderr, "skiff redact-test: none of SKIFF_DROP, SKIFF_KEEP, SKIFF_REDACT, SKIFF_REDACT_CUSTOM is set: every line is shipped as it is")
	}
	reg := prometheus.NewRegistry()
	o := cfg.FilterOptions()
	o.Registerer = reg
	f, err := filter.New(o)
	if err != nil {
		fmt.Fprintf(stderr, "skiff redact-test: %v\n", err)
		return exitConfig
	}
	for _, r := range f.Unindexed() {
		fmt.Fprintf(stderr, "skiff redact-test: note: rule %q names no literal every match contains: it runs the regular expression engine on every line\n", r)
	}
	w := bufio.NewWriter(stdout)
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), int(cfg.MaxLineBytes)+1)
	var st filter.Stream
	var buf []byte
	var lines, redacted, byDrop, byKeep int
	for sc.Scan() {
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		lines++
		var obj []byte
		if o.Fields {
			if t := bytes.TrimSpace(line); len(t) > 1 && t[0] == '{' && json.Valid(t) {
				obj = t
			}
		}
		verdict, out := "ship", line
		switch f.Decide(line, obj) {
		case filter.DroppedByDrop:
			verdict = "drop:drop"
			byDrop++
		case filter.DroppedByKeep:
			verdict = "drop:keep"
			byKeep++
		default:
			if r, ok := f.Redact(&st, buf[:0], line); ok {
				verdict, out, buf = "redact", r, r
				redacted++
			}
		}
		fmt.Fprintf(w, "%s\t%s\n", verdict, out)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "skiff redact-test: %v\n", err)
		return exitFail
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "skiff redact-test: read stdin: %v (lines are limited to SKIFF_MAX_LINE_BYTES)\n", err)
		return exitFail
	}
	fmt.Fprintf(stderr, "skiff redact-test: %d lines: %d shipped (%d redacted), %d dropped (%d by SKIFF_DROP, %d by SKIFF_KEEP)\n",
		lines, lines-byDrop-byKeep, redacted, byDrop+byKeep, byDrop, byKeep)
	if counts := redactionCounts(reg); len(counts) > 0 {
		fmt.Fprintf(stderr, "skiff redact-test: redactions: %s\n", counts)
	}
	return exitOK
}

// redactionCounts renders skiff_filter_redactions_total as name=count.
func redactionCounts(reg *prometheus.Registry) string {
	mfs, err := reg.Gather()
	if err != nil {
		return ""
	}
	var parts []string
	for _, mf := range mfs {
		if mf.GetName() != "skiff_filter_redactions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetCounter().GetValue(); v > 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", m.GetLabel()[0].GetValue(), int(v)))
			}
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
