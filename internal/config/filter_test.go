package config

import (
	"slices"
	"strings"
	"testing"
)

func TestFilterVariables(t *testing.T) {
	setenv(t, map[string]string{
		"SKIFF_PATHS":         "/var/log/*.log",
		"SKIFF_DATA_DIR":      t.TempDir(),
		"SKIFF_DROP":          `GET /healthz,level=(debug|trace),a{1\,3}`,
		"SKIFF_KEEP":          `$.level=.`,
		"SKIFF_PARSE":         "json",
		"SKIFF_REDACT":        "all,-credit_card",
		"SKIFF_REDACT_CUSTOM": `ssn=\d{3}-\d{2}-\d{4}`,
	})
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	o := c.FilterOptions()
	if !slices.Equal(o.Drop, []string{`GET /healthz`, `level=(debug|trace)`, `a{1,3}`}) || !o.Fields ||
		!slices.Equal(o.Redact, []string{"all", "-credit_card"}) || !slices.Equal(o.Custom, []string{`ssn=\d{3}-\d{2}-\d{4}`}) {
		t.Fatalf("FilterOptions() = %+v", o)
	}
}

// TestFilterProblems: every bad rule is reported, by variable, with the
// position regexp names, alongside the other problems.
func TestFilterProblems(t *testing.T) {
	setenv(t, map[string]string{
		"SKIFF_PATHS":         "/var/log/*.log",
		"SKIFF_DATA_DIR":      t.TempDir(),
		"SKIFF_DROP":          `ok,GET /(api|v2`,
		"SKIFF_KEEP":          `$.level=^info$`, // no SKIFF_PARSE=json
		"SKIFF_REDACT":        "jwt,jwts",
		"SKIFF_REDACT_CUSTOM": `x=[z-a]`,
		"SKIFF_READ_FROM":     "middle",
	})
	_, err := Load()
	got := strings.Join(problems(t, err), "\n")
	for _, want := range []string{
		"SKIFF_DROP: rule 2 \"GET /(api|v2\": missing closing ) at byte 5: `(api|v2`",
		`SKIFF_KEEP: rule 1 "$.level=^info$": a field rule needs JSON lines (SKIFF_PARSE=json)`,
		`SKIFF_REDACT: rule 2 "jwts": unknown detector`,
		"SKIFF_REDACT_CUSTOM: rule 1 \"x=[z-a]\": invalid character class range at byte 3: `z-a`",
		`SKIFF_READ_FROM: "middle" is not accepted`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing problem %q in:\n%s", want, got)
		}
	}
}

func TestLoadFilterNeedsNoPaths(t *testing.T) {
	setenv(t, map[string]string{"SKIFF_REDACT": "all"})
	c, err := LoadFilter()
	if err != nil || !c.Filters() {
		t.Fatalf("LoadFilter() = %v, %v", c, err)
	}
	setenv(t, map[string]string{"SKIFF_DROP": "(x"})
	if _, err := LoadFilter(); err == nil || !strings.Contains(err.Error(), "SKIFF_DROP: rule 1") {
		t.Fatalf("LoadFilter() error = %v", err)
	}
}
