package config

import (
	"errors"
	"fmt"

	"github.com/skiff-dev/skiff/internal/filter"
)

// FilterOptions is SKIFF_DROP, SKIFF_KEEP, SKIFF_REDACT and
// SKIFF_REDACT_CUSTOM as filter.Options (without a Registerer). Rules on
// JSON fields are allowed when JSON records can arrive: SKIFF_PARSE=json,
// or the ingest endpoints, whose /v1/json records are objects.
func (c *Config) FilterOptions() filter.Options {
	return filter.Options{
		Drop:   filter.SplitList(c.Drop),
		Keep:   filter.SplitList(c.Keep),
		Redact: c.Redact,
		Custom: filter.SplitList(c.RedactCustom),
		Fields: c.Parse == "json" || c.IngestAddr != "",
	}
}

// Filters reports whether any filter variable is set.
func (c *Config) Filters() bool {
	return c.Drop != "" || c.Keep != "" || len(c.Redact) > 0 || c.RedactCustom != ""
}

func (c *Config) validateFilter() []error {
	if !c.Filters() {
		return nil
	}
	_, err := filter.New(c.FilterOptions())
	return filterProblems(err)
}

var filterVars = map[string]string{
	"drop": "SKIFF_DROP", "keep": "SKIFF_KEEP", "redact": "SKIFF_REDACT", "custom": "SKIFF_REDACT_CUSTOM",
}

// filterProblems names each of filter.New's problems by its variable.
func filterProblems(err error) []error {
	if err == nil {
		return nil
	}
	var ps []error
	var walk func(error)
	walk = func(e error) {
		var ce *filter.ConfigError
		if multi, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range multi.Unwrap() {
				walk(inner)
			}
			return
		}
		if errors.As(e, &ce) {
			ps = append(ps, fmt.Errorf("%s: rule %d %q: %v", filterVars[ce.Option], ce.Rule, ce.Text, ce.Err))
			return
		}
		ps = append(ps, e)
	}
	walk(err)
	return ps
}

// LoadFilter reads only what `skiff redact-test` needs: the filter
// variables and SKIFF_PARSE, validated, without requiring the rest (paths,
// data dir, sinks) to be set.
func LoadFilter() (*Config, error) {
	c := &Config{failed: map[string]bool{}}
	ps := Problems(process(Prefix, c, c.failed))
	ps = oneOf(ps, "SKIFF_PARSE", c.Parse, "none", "json")
	ps = append(ps, c.validateFilter()...)
	if len(ps) > 0 {
		return c, ps
	}
	return c, nil
}
