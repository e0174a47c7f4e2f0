package config

// Stdout configures a stdout sink (SKIFF_<NAME>_*, name defaults to "stdout").
type Stdout struct {
	Format string `envconfig:"FORMAT" default:"json" desc:"json (one JSON record per line) or raw (the line as read)"`
}

// Validate reports every problem with s.
func (s *Stdout) Validate(prefix string) []error {
	return oneOf(nil, prefix+"FORMAT", s.Format, "json", "raw")
}
