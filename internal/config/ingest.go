package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
)

// Ingest is the ingest server's settings, derived from SKIFF_INGEST_*.
type Ingest struct {
	// Addr is the address to listen on, host:port with an IP literal.
	Addr string
	// Loopback is false when Addr reaches beyond this host (or pod): skiff
	// says so at start.
	Loopback bool
	// MaxBodyBytes is INGEST_MAX_BODY_BYTES with its default applied.
	MaxBodyBytes int64
}

// defaultIngestMaxBody is INGEST_MAX_BODY_BYTES's default, unless a
// sixteenth of the buffer is less.
const defaultIngestMaxBody = 4 << 20

// ParseIngestAddr resolves an INGEST_ADDR value. Exposure beyond the host
// is never an accident: a bare ":port" means loopback (127.0.0.1), and
// "localhost" too; any other host must be an IP literal, such as 0.0.0.0 or
// [::] for every interface, so that no DNS answer decides who can reach it.
// Port 0 picks a free port.
func ParseIngestAddr(v string) (addr string, loopback bool, err error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", false, fmt.Errorf("%q is not host:port (accepted: :4318 for loopback, or IP:port such as 0.0.0.0:4318)", v)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return "", false, fmt.Errorf("%q has no valid port (accepted: 0 to 65535)", v)
	}
	switch host {
	case "", "localhost":
		return net.JoinHostPort("127.0.0.1", port), true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return "", false, fmt.Errorf("host %q of %q is not an IP address (accepted: :port for loopback, or an IP such as 127.0.0.1, 0.0.0.0 or [::] for every interface)", host, v)
	}
	return net.JoinHostPort(ip.String(), port), ip.IsLoopback(), nil
}

// validateIngest checks SKIFF_INGEST_* and sets c.Ingest.
func (c *Config) validateIngest() []error {
	var ps []error
	if c.IngestAddr == "" || c.IngestAddr == "off" {
		c.IngestAddr = ""
		return nil
	}
	addr, loopback, err := ParseIngestAddr(c.IngestAddr)
	if err != nil {
		ps = append(ps, fmt.Errorf("SKIFF_INGEST_ADDR: %w", err))
	}
	maxBody := int64(c.IngestMaxBodyBytes)
	if maxBody == 0 && !c.failed["BufferMaxBytes"] {
		maxBody = min(defaultIngestMaxBody, int64(c.BufferMaxBytes)/16)
	}
	switch {
	case c.failed["IngestMaxBodyBytes"] || c.failed["BufferMaxBytes"]:
	case maxBody < 1<<10:
		ps = append(ps, fmt.Errorf("SKIFF_INGEST_MAX_BODY_BYTES: %s is too small (accepted: at least 1KiB)", c.IngestMaxBodyBytes))
	case maxBody > int64(c.BufferMaxBytes)/16:
		ps = append(ps, fmt.Errorf("SKIFF_INGEST_MAX_BODY_BYTES: %s is too large for SKIFF_BUFFER_MAX_BYTES=%s (accepted: at most a sixteenth of it: a request's records go into the buffer at once)", c.IngestMaxBodyBytes, c.BufferMaxBytes))
	}
	if c.IngestConcurrency < 1 && !c.failed["IngestConcurrency"] {
		ps = append(ps, fmt.Errorf("SKIFF_INGEST_CONCURRENCY: %d is not accepted (accepted: at least 1)", c.IngestConcurrency))
	}
	if (c.IngestTLSCertFile == "") != (c.IngestTLSKeyFile == "") {
		ps = append(ps, fmt.Errorf("SKIFF_INGEST_TLS_CERT_FILE and SKIFF_INGEST_TLS_KEY_FILE go together: set both or neither"))
	}
	for _, f := range []struct{ name, path string }{
		{"SKIFF_INGEST_TOKEN_FILE", c.IngestTokenFile},
		{"SKIFF_INGEST_TLS_CERT_FILE", c.IngestTLSCertFile},
		{"SKIFF_INGEST_TLS_KEY_FILE", c.IngestTLSKeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			ps = append(ps, fmt.Errorf("%s: %v (accepted: a readable file)", f.name, err))
		}
	}
	if len(ps) == 0 {
		c.Ingest = &Ingest{Addr: addr, Loopback: loopback, MaxBodyBytes: maxBody}
	}
	return ps
}
