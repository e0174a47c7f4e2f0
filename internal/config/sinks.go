package config

import "time"

// Stdout configures a stdout sink (SKIFF_<NAME>_*, name defaults to "stdout").
type Stdout struct {
	Format string `envconfig:"FORMAT" default:"json" desc:"json (one JSON record per line) or raw (the line as read)"`
}

// Validate reports every problem with s.
func (s *Stdout) Validate(prefix string) []error {
	return oneOf(nil, prefix+"FORMAT", s.Format, "json", "raw")
}

// HTTP configures an HTTP sink (SKIFF_<NAME>_*, name defaults to "http").
type HTTP struct {
	URL     string        `envconfig:"URL" required:"true" desc:"endpoint records are POSTed to"`
	Timeout time.Duration `envconfig:"TIMEOUT" default:"10s" desc:"deadline of one request"`
}

// Validate reports every problem with h.
func (h *HTTP) Validate(prefix string) []error { return nil }
