package deploy

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

var composeFile = filepath.Join("compose", "docker-compose.yml")

// loadCompose loads the compose file the way `docker compose` does, with
// the compose specification's own loader (schema validation, interpolation,
// env_file resolution, profiles, consistency checks), with only the given
// variables in its environment.
func loadCompose(t *testing.T, env []string, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithEnv(env),
		cli.WithProfiles(profiles),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

// composeVariants are the documented ways to run the demo.
var composeVariants = map[string]struct {
	env      []string
	profiles []string
	services []string // services that must be running
}{
	"stdout": {nil, nil, []string{"app", "secrets", "skiff"}},
	"kafka":  {[]string{"SKIFF_DEMO_SINK=kafka"}, []string{"kafka"}, []string{"app", "secrets", "skiff", "kafka"}},
	"http":   {[]string{"SKIFF_DEMO_SINK=http"}, []string{"http"}, []string{"app", "secrets", "skiff", "http-echo"}},
}

func TestCompose(t *testing.T) {
	for name, cv := range composeVariants {
		t.Run(name, func(t *testing.T) {
			p := loadCompose(t, cv.env, cv.profiles...)
			if got := p.ServiceNames(); !sameSet(got, cv.services) {
				t.Fatalf("services %v, want %v", got, cv.services)
			}
			skiff := p.Services["skiff"]
			env := map[string]string{}
			for k, v := range skiff.Environment {
				if v == nil {
					t.Errorf("%s has no value", k)
					continue
				}
				env[k] = *v
			}
			if env["SKIFF_SINKS"] != cmp(strings.TrimPrefix(strings.Join(cv.env, ""), "SKIFF_DEMO_SINK="), "stdout") {
				t.Errorf("SKIFF_SINKS=%q", env["SKIFF_SINKS"])
			}
			for _, pr := range composeProblems(p, env) {
				t.Error(pr)
			}
			t.Run("skiff accepts its environment", func(t *testing.T) { checkSkiffEnv(t, env) })
		})
	}
}

// composeProblems lists what is wrong with a loaded demo project.
func composeProblems(p *types.Project, env map[string]string) (r problems) {
	skiff, ok := p.Services["skiff"]
	if !ok {
		r.add("no skiff service")
		return r
	}
	app, ok := p.Services["app"]
	if !ok {
		r.add("no app service")
		return r
	}
	mountOf := func(s types.ServiceConfig, p string) (types.ServiceVolumeConfig, bool) {
		var best types.ServiceVolumeConfig
		found := false
		for _, v := range s.Volumes {
			if (p == v.Target || strings.HasPrefix(p, strings.TrimSuffix(v.Target, "/")+"/")) && len(v.Target) >= len(best.Target) {
				best, found = v, true
			}
		}
		return best, found
	}

	// Shared named volume for the logs, where SKIFF_PATHS points.
	for _, g := range strings.Split(env["SKIFF_PATHS"], ",") {
		g = strings.TrimSpace(g)
		sv, ok := mountOf(skiff, globBase(g))
		if !ok || sv.Type != types.VolumeTypeVolume {
			r.add("SKIFF_PATHS %q: skiff has no named volume at %s", g, globBase(g))
			continue
		}
		if !sv.ReadOnly {
			r.add("skiff should mount the application's logs read-only")
		}
		var av *types.ServiceVolumeConfig
		for i := range app.Volumes {
			if app.Volumes[i].Type == types.VolumeTypeVolume && app.Volumes[i].Source == sv.Source {
				av = &app.Volumes[i]
			}
		}
		if av == nil {
			r.add("app does not mount volume %q that SKIFF_PATHS %q reads", sv.Source, g)
			continue
		}
		if av.ReadOnly {
			r.add("app mounts %q read-only", sv.Source)
		}
		out := flagValue(app.Command, "-out")
		rel, err := filepath.Rel(av.Target, out)
		if out == "" || err != nil || strings.HasPrefix(rel, "..") {
			r.add("app writes %q, not into its log volume at %s", out, av.Target)
			continue
		}
		if ok, _ := doublestar.Match(g, path.Join(sv.Target, rel)); !ok {
			r.add("app writes %s, which SKIFF_PATHS %q does not match", out, g)
		}
	}

	// Data dir on its own writable named volume.
	if dv, ok := mountOf(skiff, env["SKIFF_DATA_DIR"]); !ok || dv.ReadOnly || dv.Type != types.VolumeTypeVolume {
		r.add("SKIFF_DATA_DIR %q is not on a writable named volume", env["SKIFF_DATA_DIR"])
	} else {
		for _, v := range app.Volumes {
			if v.Source == dv.Source {
				r.add("app mounts skiff's data volume")
			}
		}
	}

	// Health check without a shell, on skiff's own readiness endpoint.
	if hc := skiff.HealthCheck; hc == nil || !slices.Equal([]string(hc.Test), []string{"CMD", "/skiff", "health"}) {
		r.add("skiff healthcheck %v, want [CMD /skiff health] (the image has no shell)", hc)
	}
	if d := app.DependsOn["skiff"]; d.Condition != types.ServiceConditionHealthy {
		r.add("app must depend on skiff with condition service_healthy (skiff starts first and stops last), have %+v", d)
	}

	// The published port is the metrics port.
	_, port, err := net.SplitHostPort(cmp(env["SKIFF_METRICS_ADDR"], ":9477"))
	if err != nil {
		r.add("SKIFF_METRICS_ADDR: %v", err)
	}
	published := false
	for _, pc := range skiff.Ports {
		published = published || strconv.Itoa(int(pc.Target)) == port
	}
	if !published {
		r.add("metrics port %s is not published", port)
	}

	// Restart policies, read-only root, non-root user, no capabilities.
	for _, s := range []types.ServiceConfig{skiff, app} {
		if s.Restart != types.RestartPolicyUnlessStopped && s.Restart != types.RestartPolicyAlways {
			r.add("%s: restart %q, want unless-stopped or always", s.Name, s.Restart)
		}
		if !s.ReadOnly {
			r.add("%s: read_only must be true", s.Name)
		}
		if u, _, _ := strings.Cut(s.User, ":"); u == "" || u == "0" || u == "root" {
			r.add("%s: user %q, want a non-root uid", s.Name, s.User)
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			r.add("%s: cap_drop must include ALL", s.Name)
		}
	}
	for _, pair := range [][2]string{{"skiff", "skiff"}, {"app", "loggen"}} {
		if b := p.Services[pair[0]].Build; b == nil || b.Target != pair[1] {
			r.add("%s: want build target %q of the repository's Dockerfile", pair[0], pair[1])
		}
	}

	// Grace to drain.
	if st, err := time.ParseDuration(cmp(env["SKIFF_SHUTDOWN_TIMEOUT"], "25s")); err != nil {
		r.add("SKIFF_SHUTDOWN_TIMEOUT: %v", err)
	} else if skiff.StopGracePeriod == nil || time.Duration(*skiff.StopGracePeriod) < st+5*time.Second {
		r.add("skiff stop_grace_period %v < SKIFF_SHUTDOWN_TIMEOUT %v + 5s: docker would SIGKILL skiff mid-drain", skiff.StopGracePeriod, st)
	}

	// Secret files come from compose secrets the service declares, or from
	// a volume, mounted read-only, that a service skiff waits for writes
	// (the generated demo token). No secret's content is in the repository.
	for k, v := range env {
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		if sv, ok := mountOf(skiff, v); ok && sv.Type == types.VolumeTypeVolume {
			writer := ""
			for _, s := range p.Services {
				for _, w := range s.Volumes {
					if s.Name != "skiff" && w.Source == sv.Source && !w.ReadOnly {
						writer = s.Name
					}
				}
			}
			switch {
			case !sv.ReadOnly:
				r.add("%s=%s: skiff should mount volume %q read-only", k, v, sv.Source)
			case writer == "":
				r.add("%s=%s: no service writes volume %q", k, v, sv.Source)
			case skiff.DependsOn[writer].Condition != types.ServiceConditionCompletedSuccessfully:
				r.add("%s=%s: skiff must depend on %s with condition service_completed_successfully, or may start before the secret exists", k, v, writer)
			}
			continue
		}
		name, ok := strings.CutPrefix(v, "/run/secrets/")
		declared := false
		for _, s := range skiff.Secrets {
			declared = declared || (s.Target == "" && s.Source == name) || s.Target == v
		}
		if !ok || !declared {
			r.add("%s=%s is not a secret the skiff service mounts", k, v)
		} else if _, ok := p.Secrets[name]; !ok {
			r.add("%s: secret %q is not defined", k, name)
		}
	}
	for name, s := range p.Secrets {
		if s.File != "" && tracked(s.File) {
			r.add("secret %s: %s is committed to the repository; anyone could copy the token into production", name, s.File)
		}
	}

	// Sink endpoints name services of the project.
	if b := env["SKIFF_KAFKA_BROKERS"]; b != "" {
		for _, addr := range strings.Split(b, ",") {
			host, _, err := net.SplitHostPort(addr)
			if _, ok := p.Services[host]; err != nil || !ok {
				r.add("SKIFF_KAFKA_BROKERS %q: %q is not a service of the project", b, host)
			}
		}
	}
	if u := env["SKIFF_HTTP_URL"]; u != "" {
		pu, err := url.Parse(u)
		if _, ok := p.Services[pu.Hostname()]; err != nil || !ok {
			r.add("SKIFF_HTTP_URL %q: host is not a service of the project", u)
		}
	}
	return r
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestComposeChecksCatchMistakes(t *testing.T) {
	p := loadCompose(t, nil)
	env := map[string]string{}
	for k, v := range p.Services["skiff"].Environment {
		env[k] = *v
	}
	tests := map[string]struct {
		mutate func(p *types.Project, env map[string]string)
		want   string
	}{
		"glob misses the file": {func(_ *types.Project, env map[string]string) { env["SKIFF_PATHS"] = "/var/log/app/*.txt" }, "does not match"},
		"paths off the volume": {func(_ *types.Project, env map[string]string) { env["SKIFF_PATHS"] = "/logs/*.log" }, "no named volume at /logs"},
		"data dir on the root": {func(_ *types.Project, env map[string]string) { env["SKIFF_DATA_DIR"] = "/data" }, "not on a writable named volume"},
		"shell health check": {func(p *types.Project, _ map[string]string) {
			s := p.Services["skiff"]
			s.HealthCheck.Test = types.HealthCheckTest{"CMD-SHELL", "wget -qO- localhost:9477/readyz"}
			p.Services["skiff"] = s
		}, "the image has no shell"},
		"no start order": {func(p *types.Project, _ map[string]string) {
			s := p.Services["app"]
			s.DependsOn = nil
			p.Services["app"] = s
		}, "condition service_healthy"},
		"writable root": {func(p *types.Project, _ map[string]string) {
			s := p.Services["skiff"]
			s.ReadOnly = false
			p.Services["skiff"] = s
		}, "skiff: read_only"},
		"no restart": {func(p *types.Project, _ map[string]string) {
			s := p.Services["app"]
			s.Restart = ""
			p.Services["app"] = s
		}, "app: restart"},
		"short grace": {func(p *types.Project, _ map[string]string) {
			s := p.Services["skiff"]
			d := types.Duration(10 * time.Second)
			s.StopGracePeriod = &d
			p.Services["skiff"] = s
		}, "SIGKILL skiff mid-drain"},
		"secret not mounted": {func(_ *types.Project, env map[string]string) { env["SKIFF_HTTP_TOKEN_FILE"] = "/run/secrets/other" }, "is not a secret the skiff service mounts"},
		"secret before its writer": {func(p *types.Project, env map[string]string) {
			env["SKIFF_HTTP_TOKEN_FILE"] = "/run/skiff-secrets/http-token"
			s := p.Services["skiff"]
			s.DependsOn = nil
			p.Services["skiff"] = s
		}, "service_completed_successfully"},
		"committed secret": {func(p *types.Project, env map[string]string) {
			env["SKIFF_HTTP_TOKEN_FILE"] = "/run/secrets/demo"
			s := p.Services["skiff"]
			s.Secrets = append(s.Secrets, types.ServiceSecretConfig{Source: "demo"})
			p.Services["skiff"] = s
			p.Secrets = types.Secrets{"demo": types.SecretConfig{File: composeFile}} // a tracked file
		}, "is committed to the repository"},
		"broker not a service": {func(_ *types.Project, env map[string]string) { env["SKIFF_KAFKA_BROKERS"] = "kafka.example:9092" }, "is not a service"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := loadCompose(t, nil)
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			tc.mutate(p, e)
			if ps := composeProblems(p, e); !strings.Contains(strings.Join(ps, "\n"), tc.want) {
				t.Fatalf("problems %q lack %q", ps, tc.want)
			}
		})
	}
	if ps := composeProblems(p, env); len(ps) > 0 {
		t.Fatalf("unmutated project has problems %q", ps)
	}
}

// TestComposeLoaderIsStrict shows that the loader used above rejects an
// unknown key (a misspelling would otherwise be silently ignored).
func TestComposeLoaderIsStrict(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Dir(composeFile))); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "    restart: unless-stopped", "    restrat: unless-stopped", 1)
	f := filepath.Join(dir, "docker-compose.yml")
	if err := os.WriteFile(f, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{f}, cli.WithWorkingDirectory(dir), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opts.LoadProject(context.Background()); err == nil || !strings.Contains(err.Error(), "restrat") {
		t.Fatalf("LoadProject with a misspelled key: %v", err)
	}
}

// tracked reports whether git tracks the file at path (resolved paths are
// absolute). Without git, it assumes so, so that the check cannot pass by
// accident.
func tracked(path string) bool {
	out, err := exec.Command("git", "-C", filepath.Dir(path), "ls-files", "--error-unmatch", filepath.Base(path)).CombinedOutput()
	if err != nil {
		return !strings.Contains(string(out), "did not match")
	}
	return true
}

// TestComposeGeneratesTheDemoToken runs the secrets service's script, as
// compose passes it to sh, on a directory standing in for its volume: it
// writes a random 64-hex-digit token, mode 0600, owned by skiff's uid (here
// the test's own, when not root), a different one for another volume, and
// keeps the token on a second start. No token is committed.
func TestComposeGeneratesTheDemoToken(t *testing.T) {
	p := loadCompose(t, nil)
	svc, ok := p.Services["secrets"]
	if !ok {
		t.Fatal("no secrets service")
	}
	if len(svc.Command) != 3 || svc.Command[0] != "sh" {
		t.Fatalf("command %q, want sh -ec <script>", svc.Command)
	}
	var target string
	for _, v := range svc.Volumes {
		if v.Source == "skiff-secrets" {
			target = v.Target
		}
	}
	if target == "" {
		t.Fatal("the secrets service does not mount skiff-secrets")
	}
	run := func(dir string) string {
		t.Helper()
		script := strings.ReplaceAll(svc.Command[2], target, dir)
		if os.Getuid() != 0 {
			script = strings.ReplaceAll(script, "65532:65532", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()))
		}
		if out, err := exec.Command("sh", "-ec", script).CombinedOutput(); err != nil {
			t.Fatalf("script: %v\n%s", err, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, "http-token"))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(filepath.Join(dir, "http-token"))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("token mode %v, want 0600", fi.Mode().Perm())
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Getuid() == 0 && st.Uid != 65532 {
			t.Errorf("token owned by uid %d, want 65532 (skiff)", st.Uid)
		}
		return string(b)
	}
	a, b := t.TempDir(), t.TempDir()
	tok := run(a)
	if len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("token %q is not 64 hex digits", tok)
	}
	if again := run(a); again != tok {
		t.Error("a second start replaced the token")
	}
	if other := run(b); other == tok {
		t.Error("two volumes got the same token")
	}
	if out, _ := exec.Command("git", "ls-files", filepath.Join("compose", "secrets")).Output(); len(out) > 0 {
		t.Errorf("files committed under compose/secrets:\n%s", out)
	}
}
