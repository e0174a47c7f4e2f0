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

// Kafka configures a Kafka sink (SKIFF_<NAME>_*, name defaults to "kafka").
type Kafka struct {
	Brokers []string      `envconfig:"BROKERS" required:"true" desc:"comma-separated host:port of seed brokers"`
	Topic   string        `envconfig:"TOPIC" required:"true" desc:"topic to produce to"`
	Timeout time.Duration `envconfig:"TIMEOUT" default:"10s" desc:"deadline of one produce request"`
}

// Validate reports every problem with k.
func (k *Kafka) Validate(prefix string) []error { return nil }
