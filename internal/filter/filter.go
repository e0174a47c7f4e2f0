package filter

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configures a Filter. The zero value filters nothing.
type Options struct {
	// Drop rules: a line matching any of them is not shipped. A rule is a
	// regular expression (Go syntax) on the whole line, or $.path=regex on
	// a field of a JSON object line (see Rule).
	Drop []string
	// Keep rules: when set, only lines matching at least one are shipped.
	Keep []string
	// Redact names the built-in detectors to run ("all" for every one; a
	// name prefixed with "-" removes it, e.g. all,-credit_card).
	Redact []string
	// Custom are extra detectors as name=regex; a match (or, when the
	// expression has a capturing group, the first group's text) becomes
	// [REDACTED:name].
	Custom []string
	// Fields says the caller passes JSON object lines to Keep (in skiff:
	// SKIFF_PARSE=json). Field rules are an error without it: they could
	// never match.
	Fields bool
	// Registerer receives the filter's metrics; nil means none.
	Registerer prometheus.Registerer
}

// Filter drops, keeps and redacts lines. Build it with New. It is safe for
// concurrent use.
type Filter struct {
	drop, keep []Rule
	custom     []custom
	enabled    [numBuiltin]bool
	redacting  bool
	pre        *prefilter // nil when no built-in detector is enabled
	names      []string   // detector names by id: built-ins, then custom
	m          metrics
}

type custom struct {
	name  string
	re    *regexp.Regexp
	group bool // redact the first capturing group, not the whole match
	lits  [][]byte
}

// ConfigError is one problem New found in Options.
type ConfigError struct {
	Option string // "drop", "keep", "redact" or "custom"
	Rule   int    // 1-based position of the rule in its option
	Text   string // the rule as given
	Err    error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s rule %d %q: %v", e.Option, e.Rule, e.Text, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// New compiles o. Every problem is reported, each as a *ConfigError, joined.
func New(o Options) (*Filter, error) {
	f := &Filter{names: builtinNames[:]}
	var errs []error
	var err error
	f.drop, err = parseRules("drop", o.Drop, o.Fields)
	errs = append(errs, err)
	f.keep, err = parseRules("keep", o.Keep, o.Fields)
	errs = append(errs, err)
	f.enabled, err = parseDetectors(o.Redact)
	errs = append(errs, err)
	f.custom, err = parseCustom(o.Custom)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f.names = slices.Clone(f.names)
	for _, c := range f.custom {
		f.names = append(f.names, c.name)
	}
	for _, on := range f.enabled {
		if on {
			f.pre = newPrefilter(&f.enabled)
			break
		}
	}
	f.redacting = f.pre != nil || len(f.custom) > 0
	m, err := newMetrics(o.Registerer, f.names, f.active())
	if err != nil {
		return nil, fmt.Errorf("new filter: %w", err)
	}
	f.m = m
	return f, nil
}

// active reports, by detector id, whether it runs.
func (f *Filter) active() []bool {
	a := make([]bool, len(f.names))
	copy(a, f.enabled[:])
	for i := range f.custom {
		a[int(numBuiltin)+i] = true
	}
	return a
}

// Detectors returns the names of the detectors that run, built-in first.
func (f *Filter) Detectors() []string {
	var out []string
	for i, on := range f.active() {
		if on {
			out = append(out, f.names[i])
		}
	}
	return out
}

// Unindexed lists the drop, keep and custom rules that name no literal
// every match contains: those run the regular expression engine on every
// line (see docs/REDACTION.md, "Cost").
func (f *Filter) Unindexed() []string {
	var out []string
	for _, rs := range [][]Rule{f.drop, f.keep} {
		for _, r := range rs {
			if r.lits == nil {
				out = append(out, r.Text)
			}
		}
	}
	for _, c := range f.custom {
		if c.lits == nil {
			out = append(out, c.name+"="+c.re.String())
		}
	}
	return out
}

// Drops reports whether f has any drop or keep rule.
func (f *Filter) Drops() bool { return len(f.drop) > 0 || len(f.keep) > 0 }

// Redacts reports whether f runs any detector.
func (f *Filter) Redacts() bool { return f.redacting }

// Verdict is why Keep dropped a line.
type Verdict uint8

const (
	// Ship: no rule drops the line.
	Ship Verdict = iota
	// DroppedByDrop: a SKIFF_DROP rule matched.
	DroppedByDrop
	// DroppedByKeep: SKIFF_KEEP is set and no rule of it matched.
	DroppedByKeep
)

// Keep reports whether msg is shipped and counts it when it is not. obj
// is msg as a JSON object when the caller knows it is one (field rules
// look into it), else nil. It allocates nothing.
func (f *Filter) Keep(msg, obj []byte) bool { return f.Decide(msg, obj) == Ship }

// Decide is Keep, telling why a line is dropped.
func (f *Filter) Decide(msg, obj []byte) Verdict {
	if len(f.keep) > 0 && !anyMatch(f.keep, msg, obj) {
		f.m.droppedKeep.Inc()
		return DroppedByKeep
	}
	if len(f.drop) > 0 && anyMatch(f.drop, msg, obj) {
		f.m.droppedDrop.Inc()
		return DroppedByDrop
	}
	return Ship
}

// Stream is the state Redact keeps between records of one source (a file,
// an ingest request): a PEM private key split over several records, and
// scratch memory. The zero value is ready; it must not be used by two
// goroutines at once.
type Stream struct {
	inPEM  bool // inside a PEM private key block begun in an earlier record
	spans  []span
	skip   int // the prefilter need not look before this offset
	keyEnd int // end of the last key keyValue judged
}

// Redact returns msg with every secret found replaced by a marker naming
// its detector, appended to dst (which may be nil) when there was one, and
// whether it replaced anything. Without a secret it returns msg itself and
// allocates nothing. The result may alias dst and msg; st carries state to
// the next record of the same source.
func (f *Filter) Redact(st *Stream, dst, msg []byte) ([]byte, bool) {
	if !f.redacting {
		return msg, false
	}
	st.spans = st.spans[:0]
	st.skip, st.keyEnd = 0, 0
	if st.inPEM {
		f.pemContinued(st, msg)
	}
	if f.pre != nil {
		f.pre.scan(f, st, msg)
	}
	for i := range f.custom {
		f.custom[i].find(st, msg, detector(int(numBuiltin)+i))
	}
	if len(st.spans) == 0 {
		return msg, false
	}
	out := f.rewrite(st, dst, msg)
	f.m.redacted.Inc()
	return out, true
}

func (c *custom) find(st *Stream, msg []byte, id detector) {
	if c.lits != nil && !containsAny(msg, c.lits) {
		return
	}
	for _, m := range c.re.FindAllSubmatchIndex(msg, -1) {
		s, e := m[0], m[1]
		if c.group {
			if m[2] < 0 {
				continue
			}
			s, e = m[2], m[3]
		}
		if e > s {
			st.add(s, e, id)
		}
	}
}

// parseCustom compiles name=regex rules.
func parseCustom(list []string) ([]custom, error) {
	var out []custom
	var errs []error
	seen := map[string]bool{}
	for i, item := range list {
		bad := func(err error) {
			errs = append(errs, &ConfigError{Option: "custom", Rule: i + 1, Text: item, Err: err})
		}
		name, expr, ok := strings.Cut(item, "=")
		switch {
		case !ok || expr == "":
			bad(errors.New("want name=regex"))
			continue
		case !validName(name):
			bad(fmt.Errorf("name %q is not accepted (accepted: [a-z][a-z0-9_]*, at most 32 bytes)", name))
			continue
		case slices.Contains(builtinNames[:], name) || name == "all":
			bad(fmt.Errorf("name %q is a built-in detector's", name))
			continue
		case seen[name]:
			bad(fmt.Errorf("name %q is used twice", name))
			continue
		}
		seen[name] = true
		re, lits, err := compile(expr, len(name)+1)
		if err != nil {
			bad(err)
			continue
		}
		if re.MatchString("") {
			bad(errors.New("matches the empty string"))
			continue
		}
		out = append(out, custom{name: name, re: re, group: re.NumSubexp() > 0, lits: lits})
	}
	return out, errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// parseDetectors turns a SKIFF_REDACT list into the set of detectors on.
func parseDetectors(list []string) ([numBuiltin]bool, error) {
	var on [numBuiltin]bool
	var errs []error
	for i, item := range list {
		name, remove := strings.CutPrefix(item, "-")
		if name == "all" {
			for d := range on {
				on[d] = !remove
			}
			continue
		}
		d := slices.Index(builtinNames[:], name)
		if d < 0 {
			errs = append(errs, &ConfigError{Option: "redact", Rule: i + 1, Text: item,
				Err: fmt.Errorf("unknown detector (accepted: all, %s; -name removes one)", strings.Join(builtinNames[:], ", "))})
			continue
		}
		on[d] = !remove
	}
	return on, errors.Join(errs...)
}

// DetectorNames lists the built-in detectors.
func DetectorNames() []string { return slices.Clone(builtinNames[:]) }

type metrics struct {
	droppedDrop, droppedKeep prometheus.Counter
	redacted                 prometheus.Counter
	redactions               []prometheus.Counter // by detector id
}

func newMetrics(reg prometheus.Registerer, names []string, active []bool) (metrics, error) {
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_filter_dropped_records_total",
		Help: "Records not shipped: reason=drop (a SKIFF_DROP rule matched) or keep (no SKIFF_KEEP rule matched).",
	}, []string{"reason"})
	redacted := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skiff_filter_redacted_records_total",
		Help: "Records in which at least one secret was replaced before they were buffered.",
	})
	redactions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_filter_redactions_total",
		Help: "Secrets replaced by a [REDACTED:<detector>] marker, by detector.",
	}, []string{"detector"})
	m := metrics{
		droppedDrop: dropped.WithLabelValues("drop"),
		droppedKeep: dropped.WithLabelValues("keep"),
		redacted:    redacted,
		redactions:  make([]prometheus.Counter, len(names)),
	}
	for i, n := range names {
		if active[i] {
			m.redactions[i] = redactions.WithLabelValues(n)
		}
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{dropped, redacted, redactions} {
		if err := reg.Register(c); err != nil {
			return m, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
