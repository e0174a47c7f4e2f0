package filter

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/skiff-dev/skiff/internal/record"
)

// SplitList splits a SKIFF_DROP, SKIFF_KEEP or SKIFF_REDACT_CUSTOM value
// into rules: they are separated by commas, and `\,` is a comma inside a
// rule (so `a{1\,3}` is the expression a{1,3}). Every other backslash is
// kept as it is, for the regular expression. Spaces around a rule are
// trimmed and empty rules dropped.
func SplitList(v string) []string {
	var out []string
	var cur strings.Builder
	emit := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && i+1 < len(v) && v[i+1] == ',':
			cur.WriteByte(',')
			i++
		case c == '\\' && i+1 < len(v):
			cur.WriteByte(c)
			cur.WriteByte(v[i+1])
			i++
		case c == ',':
			emit()
		default:
			cur.WriteByte(c)
		}
	}
	emit()
	return out
}

// Rule is one drop or keep rule: a regular expression on the whole line,
// or, written $.path=regex, on a field of a JSON object line. A regular
// expression that starts with "$." could never match anything (an
// end-of-text anchor followed by a character), so the two forms cannot be
// confused. The path is top-level field names joined by dots ($.level,
// $.http.status); the first "=" after $. ends it. A string field is matched
// on its contents as written between the quotes (escapes not decoded); a
// number, true, false or null on its text; an object or array on its JSON
// text. A field that is absent, or a line that is not a JSON object, never
// matches.
type Rule struct {
	Text string   // as configured
	Path []string // nil: the whole line
	re   *regexp.Regexp
	lits [][]byte // every match contains one of these; nil: unknown
}

func parseRules(option string, list []string, fields bool) ([]Rule, error) {
	var out []Rule
	var errs []error
	for i, item := range list {
		r, err := parseRule(item, fields)
		if err != nil {
			errs = append(errs, &ConfigError{Option: option, Rule: i + 1, Text: item, Err: err})
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

func parseRule(item string, fields bool) (Rule, error) {
	r := Rule{Text: item}
	expr := item
	if rest, ok := strings.CutPrefix(item, "$."); ok {
		path, e, ok := strings.Cut(rest, "=")
		if !ok {
			return r, errors.New("a field rule is $.path=regex")
		}
		for _, p := range strings.Split(path, ".") {
			if p == "" {
				return r, fmt.Errorf("field path %q has an empty name", path)
			}
			r.Path = append(r.Path, p)
		}
		if !fields {
			return r, errors.New("a field rule needs JSON lines (SKIFF_PARSE=json)")
		}
		expr = e
	}
	re, lits, err := compile(expr, len(item)-len(expr))
	if err != nil {
		return r, err
	}
	r.re, r.lits = re, lits
	return r, nil
}

// compile compiles expr and names the literals one of which every match
// contains. A syntax error says where it is: the byte offset in expr plus
// base (where expr starts in the rule as configured).
func compile(expr string, base int) (*regexp.Regexp, [][]byte, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			if se.Code == syntax.ErrMissingParen || se.Code == syntax.ErrUnexpectedParen {
				if at := unbalanced(expr); at >= 0 {
					return nil, nil, fmt.Errorf("%s at byte %d: `%s`", se.Code, base+at, expr[at:])
				}
			}
			if at := strings.Index(expr, se.Expr); at >= 0 && se.Expr != "" {
				return nil, nil, fmt.Errorf("%s at byte %d: `%s`", se.Code, base+at, se.Expr)
			}
			return nil, nil, fmt.Errorf("%s: `%s`", se.Code, se.Expr)
		}
		return nil, nil, err
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return re, nil, nil
	}
	var lits [][]byte
	for _, l := range required(tree.Simplify()) {
		lits = append(lits, []byte(l))
	}
	return re, lits, nil
}

// unbalanced returns the offset of the first "(" never closed, or of a
// ")" never opened, in expr; -1 if the parentheses balance.
func unbalanced(expr string) int {
	var open []int
	for i := 0; i < len(expr); i++ {
		switch expr[i] {
		case '\\':
			i++
		case '[':
			// A class: "]" right after "[" or "[^" is a member.
			j := i + 1
			if j < len(expr) && expr[j] == '^' {
				j++
			}
			if j < len(expr) && expr[j] == ']' {
				j++
			}
			for j < len(expr) && expr[j] != ']' {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			i = j
		case '(':
			open = append(open, i)
		case ')':
			if len(open) == 0 {
				return i
			}
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		return open[0]
	}
	return -1
}

// required returns strings one of which is in every match of re, or nil
// when it cannot say (case-folded literals, optional parts, classes).
func required(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return nil
		}
		return []string{string(re.Rune)}
	case syntax.OpCapture, syntax.OpPlus:
		return required(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return required(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []string
		for _, s := range re.Sub {
			if r := required(s); r != nil && (best == nil || shortest(r) > shortest(best)) {
				best = r
			}
		}
		return best
	case syntax.OpAlternate:
		var all []string
		for _, s := range re.Sub {
			r := required(s)
			if r == nil {
				return nil
			}
			all = append(all, r...)
		}
		if len(all) > 8 {
			return nil
		}
		return all
	}
	return nil
}

func shortest(ss []string) int {
	n := 1 << 30
	for _, s := range ss {
		n = min(n, len(s))
	}
	return n
}

func containsAny(b []byte, lits [][]byte) bool {
	for _, l := range lits {
		if bytes.Contains(b, l) {
			return true
		}
	}
	return false
}

func anyMatch(rules []Rule, msg, obj []byte) bool {
	for i := range rules {
		r := &rules[i]
		target := msg
		if r.Path != nil {
			v, ok := field(obj, r.Path)
			if !ok {
				continue
			}
			target = v
		}
		if r.lits != nil && !containsAny(target, r.lits) {
			continue
		}
		if r.re.Match(target) {
			return true
		}
	}
	return false
}

// field returns the value at path in obj, a JSON object: a string's
// contents without the quotes, other values as written.
func field(obj []byte, path []string) ([]byte, bool) {
	v := obj
	for _, name := range path {
		var ok bool
		if v, ok = record.JSONMember(v, name); !ok {
			return nil, false
		}
	}
	if len(v) >= 2 && v[0] == '"' {
		return v[1 : len(v)-1], true
	}
	return v, true
}
