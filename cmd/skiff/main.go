// Command skiff is a log-shipping sidecar: it tails log files on a shared
// volume, keeps every line in a bounded on-disk buffer, and ships the
// records to stdout, Kafka and HTTP sinks. It is configured only through
// SKIFF_* environment variables; run `skiff env` for the list.
//
// Usage:
//
//	skiff [run]     run the agent until SIGTERM or SIGINT
//	skiff check     validate the configuration and print it (exit 2 on problems)
//	skiff env       list every variable with its type, default and meaning
//	skiff health    GET /readyz on SKIFF_METRICS_ADDR (for image health checks)
//	skiff status    print /status, fetched over loopback from SKIFF_METRICS_ADDR
//	skiff redact-test  read lines on stdin, print what the filters would ship
//	skiff version   print the version
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skiff-dev/skiff/internal/config"
	"github.com/skiff-dev/skiff/internal/filter"
)

// version is stamped at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // a runtime failure
	exitConfig = 2 // the configuration or the data dir cannot be used
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "run":
		return runAgent(stdout, stderr)
	case "check":
		return check(stdout, stderr)
	case "env":
		if len(args) > 1 && args[1] == "-markdown" {
			fmt.Fprint(stdout, config.MarkdownTable())
			return exitOK
		}
		printEnv(stdout)
		return exitOK
	case "health":
		return health(stderr)
	case "status":
		return status(stdout, stderr)
	case "redact-test":
		return redactTest(os.Stdin, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "skiff %s\n", version)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "skiff: unknown command %q\n%s", cmd, usage)
	return exitConfig
}

const usage = `usage: skiff [run|check|env|health|status|redact-test|version]
  run          run the agent until SIGTERM or SIGINT (default)
  check        validate the configuration from the environment and print it
  env          list every variable (env -markdown: as README's table)
  health       exit 0 if /readyz on SKIFF_METRICS_ADDR answers ok
  status       print the sinks' state (/status, served on loopback only)
  redact-test  read lines from stdin; print what SKIFF_DROP, SKIFF_KEEP and SKIFF_REDACT would ship
  version      print the version
`

// loadConfig loads and validates; on problems it prints all of them, with
// every secret the configuration holds masked.
func loadConfig(stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load()
	if err != nil {
		sec := config.Secrets(cfg)
		var ps config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintf(stderr, "skiff: %d configuration problem(s):\n", len(ps))
			for _, p := range ps {
				fmt.Fprintf(stderr, "  - %s\n", sec.String(p.Error()))
			}
		} else {
			fmt.Fprintf(stderr, "skiff: configuration: %s\n", sec.String(err.Error()))
		}
		return nil, false
	}
	return cfg, true
}

func check(stdout, stderr io.Writer) int {
	cfg, ok := loadConfig(stderr)
	if !ok {
		return exitConfig
	}
	for _, s := range config.Effective(cfg) {
		fmt.Fprintf(stdout, "%s=%s\n", s.Name, s.Value)
	}
	for _, kv := range []struct{ k, v string }{{"POD_NAME", cfg.Pod}, {"POD_NAMESPACE", cfg.Namespace}, {"POD_UID", cfg.PodUID}, {"NODE_NAME", cfg.Node}} {
		if kv.v != "" {
			fmt.Fprintf(stdout, "%s=%s\n", kv.k, kv.v)
		}
	}
	if cfg.Filters() {
		if f, err := filter.New(cfg.FilterOptions()); err == nil {
			for _, r := range f.Unindexed() {
				fmt.Fprintf(stderr, "skiff: note: filter rule %q names no literal every match contains: it runs the regular expression engine on every line\n", r)
			}
		}
	}
	fmt.Fprintln(stderr, "skiff: configuration ok")
	return exitOK
}

func printEnv(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tDESCRIPTION")
	for _, v := range config.Reference() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Name, v.Type, v.Default, v.Desc)
	}
	_ = tw.Flush() // writing to our own stdout; nothing useful to do on failure
	fmt.Fprintln(w, "\nSink variables are shown for the default sink names; a sink named loki:http reads SKIFF_LOKI_URL and so on.")
	fmt.Fprintln(w, "POD_NAME, POD_NAMESPACE, POD_UID and NODE_NAME (Kubernetes Downward API) become the records' pod identity.")
}

// adminAddr is where a command inside the pod reaches the admin server:
// SKIFF_METRICS_ADDR, with an address bound on every interface reached
// over loopback (where /status and the probes' reasons are served).
func adminAddr() (string, error) {
	addr := os.Getenv("SKIFF_METRICS_ADDR")
	if addr == "" {
		addr = ":9477"
	}
	if addr == "off" {
		return "", errors.New("SKIFF_METRICS_ADDR=off: there is no admin server")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("SKIFF_METRICS_ADDR: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// status prints /status, for `kubectl exec … -- skiff status`.
func status(stdout, stderr io.Writer) int {
	addr, err := adminAddr()
	if err != nil {
		fmt.Fprintf(stderr, "skiff status: %v\n", err)
		return exitFail
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		fmt.Fprintf(stderr, "skiff status: %v\n", err)
		return exitFail
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		fmt.Fprintf(stderr, "skiff status: /status answered %s: %s\n", resp.Status, strings.TrimSpace(string(b)))
		return exitFail
	}
	if _, err := io.Copy(stdout, resp.Body); err != nil {
		fmt.Fprintf(stderr, "skiff status: %v\n", err)
		return exitFail
	}
	return exitOK
}

// health is a probe for images without a shell (docker-compose healthcheck).
func health(stderr io.Writer) int {
	addr, err := adminAddr()
	if err != nil {
		fmt.Fprintf(stderr, "skiff health: %v\n", err)
		return exitFail
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		fmt.Fprintf(stderr, "skiff health: %v\n", err)
		return exitFail
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "skiff health: /readyz answered %s\n", resp.Status)
		return exitFail
	}
	return exitOK
}
