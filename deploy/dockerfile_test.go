package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// image is what a Dockerfile stage promises about the image it makes.
type image struct {
	stage     string
	binary    string // the binary's path in the image, also the entrypoint
	pkg       string // the Go package built into it
	ports     []string
	wantStamp bool // -X main.version=
}

var images = []image{
	{stage: "loggen", binary: "/loggen", pkg: "./cmd/loggen"},
	{stage: "skiff", binary: "/skiff", pkg: "./cmd/skiff", ports: []string{"9477"}, wantStamp: true},
}

// parseDockerfile parses with BuildKit's own parser and instruction
// decoder, with its default lint rules; warnings are returned as problems.
func parseDockerfile(b []byte) ([]instructions.Stage, problems, error) {
	var r problems
	res, err := parser.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	for _, w := range res.Warnings {
		r.add("parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		r.add("lint %s: %s (line %v)", rule, msg, loc)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	return stages, r, err
}

// dockerfileProblems checks the stages against images.
func dockerfileProblems(stages []instructions.Stage) (r problems) {
	byName := map[string]*instructions.Stage{}
	for i := range stages {
		byName[stages[i].Name] = &stages[i]
	}
	if last := stages[len(stages)-1]; last.Name != "skiff" {
		r.add("the last stage (docker build's default target) is %q, want skiff", last.Name)
	}
	for _, img := range images {
		st := byName[img.stage]
		if st == nil {
			r.add("no stage %q", img.stage)
			continue
		}
		if !strings.HasPrefix(st.BaseName, "gcr.io/distroless/static") || !strings.HasSuffix(st.BaseName, ":nonroot") {
			r.add("%s: base %q, want distroless static :nonroot", img.stage, st.BaseName)
		}
		var user string
		var entry *instructions.EntrypointCommand
		var ports []string
		var copied string
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.UserCommand:
				user = c.User
			case *instructions.EntrypointCommand:
				entry = c
			case *instructions.ExposeCommand:
				ports = append(ports, c.Ports...)
			case *instructions.RunCommand:
				r.add("%s: RUN in the final image (it has no shell): %s", img.stage, c)
			case *instructions.CopyCommand:
				if slices.Contains(c.SourcePaths, "/out"+img.binary) && c.DestPath == img.binary {
					copied = c.From
				}
			}
		}
		if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
			r.add("%s: USER %q, want a non-root numeric uid (runAsNonRoot needs a number)", img.stage, user)
		} else if strings.Trim(u, "0123456789") != "" {
			r.add("%s: USER %q is not numeric: Kubernetes cannot verify runAsNonRoot for a name", img.stage, user)
		}
		if entry == nil || entry.PrependShell || !slices.Equal(entry.CmdLine, []string{img.binary}) {
			r.add("%s: ENTRYPOINT %v, want exec form [%q]", img.stage, entry, img.binary)
		}
		if !slices.Equal(ports, img.ports) {
			r.add("%s: EXPOSE %v, want %v", img.stage, ports, img.ports)
		}
		build := byName[copied]
		if build == nil {
			r.add("%s: %s is not copied from a build stage", img.stage, img.binary)
			continue
		}
		// The build stage compiles the binary statically and reproducibly.
		var cmd string
		for _, c := range build.Commands {
			if run, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(run.CmdLine, " "), "-o /out"+img.binary+" "+img.pkg) {
				cmd = strings.Join(run.CmdLine, " ")
			}
		}
		if cmd == "" {
			r.add("%s: no RUN in stage %q builds %s into /out%s", img.stage, copied, img.pkg, img.binary)
			continue
		}
		// The RUN may build several binaries: look at this one's command.
		i := strings.Index(cmd, "-o /out"+img.binary+" "+img.pkg)
		one := cmd[:i]
		if j := strings.LastIndex(one, "&&"); j >= 0 {
			one = one[j:]
		}
		for _, want := range []string{"CGO_ENABLED=0", "go build", "-trimpath", "-buildvcs=false", "-buildid="} {
			if !strings.Contains(one, want) {
				r.add("%s: the go build of %s lacks %s", img.stage, img.pkg, want)
			}
		}
		if img.wantStamp && !strings.Contains(one, "-X main.version=${VERSION}") {
			r.add("%s: the go build of %s does not stamp -X main.version=${VERSION}", img.stage, img.pkg)
		}
	}
	return r
}

func readDockerfile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDockerfile(t *testing.T) {
	stages, warnings, err := parseDockerfile(readDockerfile(t))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, w := range warnings {
		t.Error(w)
	}
	for _, p := range dockerfileProblems(stages) {
		t.Error(p)
	}
	// The compose demo builds these targets.
	p := loadCompose(t, nil)
	for _, s := range p.Services {
		if s.Build == nil {
			continue
		}
		found := false
		for _, st := range stages {
			found = found || st.Name == s.Build.Target
		}
		if !found {
			t.Errorf("compose service %s builds target %q, which the Dockerfile lacks", s.Name, s.Build.Target)
		}
		if filepath.Clean(s.Build.Context) != mustAbs(t, repoRoot) {
			t.Errorf("compose service %s builds in %s, want the repository root", s.Name, s.Build.Context)
		}
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDockerfileChecksCatchMistakes(t *testing.T) {
	good := string(readDockerfile(t))
	tests := map[string]struct {
		from, to string
		want     string
	}{
		"root user":        {"USER 65532:65532\n# /metrics", "USER root\n# /metrics", `skiff: USER "root"`},
		"named user":       {"USER 65532:65532\n# /metrics", "USER nonroot\n# /metrics", "is not numeric"},
		"shell entry":      {`ENTRYPOINT ["/skiff"]`, `ENTRYPOINT /skiff`, "want exec form"},
		"cgo":              {"CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \\\n    go build -trimpath -buildvcs=false -ldflags=\"-s -w -buildid= -X", "GOOS=${TARGETOS} GOARCH=${TARGETARCH} \\\n    go build -trimpath -buildvcs=false -ldflags=\"-s -w -buildid= -X", "lacks CGO_ENABLED=0"},
		"no stamp":         {" -X main.version=${VERSION}", "", "does not stamp"},
		"no expose":        {"EXPOSE 9477\n", "", "EXPOSE []"},
		"debian base":      {"FROM gcr.io/distroless/static-debian12:nonroot AS skiff", "FROM debian:12 AS skiff", "want distroless static"},
		"stage renamed":    {"FROM gcr.io/distroless/static-debian12:nonroot AS loggen", "FROM gcr.io/distroless/static-debian12:nonroot AS loggen2", "no stage \"loggen\""},
		"lint: bad casing": {"AS build", "as build", "lint FromAsCasing"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatalf("mutation %q does not apply", tc.from)
			}
			stages, ps, err := parseDockerfile([]byte(bad))
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, dockerfileProblems(stages)...)
			if !strings.Contains(strings.Join(ps, "\n"), tc.want) {
				t.Fatalf("problems %q lack %q", ps, tc.want)
			}
		})
	}
}

// goListed is the part of `go list -json` output used here.
type goListed struct {
	ImportPath string
	Dir        string
	Module     *struct{ Path, Dir string }
	GoFiles    []string
	EmbedFiles []string
	Error      *struct{ Err string }
}

// buildInputs lists, relative to the repository root, every file `go
// build` reads to build pkgs: go.mod, go.sum and each main-module
// package's Go and embedded files.
func buildInputs(t *testing.T, pkgs ...string) []string {
	t.Helper()
	root := mustAbs(t, repoRoot)
	cmd := exec.Command("go", append([]string{"list", "-e", "-deps", "-json"}, pkgs...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p goListed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.ImportPath, "github.com/skiff-dev/skiff/") && p.ImportPath != "github.com/skiff-dev/skiff" {
			continue
		}
		if p.Error != nil || p.Dir == "" {
			t.Fatalf("go list %s: %+v", p.ImportPath, p.Error)
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	return files
}

// TestDockerignore checks .dockerignore with Docker's own pattern matcher:
// nothing the Go build reads is excluded, and the bulky or sensitive
// things are.
func TestDockerignore(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	ignored := func(p string) bool {
		ok, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	var pkgs []string
	for _, img := range images {
		pkgs = append(pkgs, img.pkg)
	}
	files := buildInputs(t, pkgs...)
	if len(files) < 20 {
		t.Fatalf("only %d build inputs: %v", len(files), files)
	}
	for _, f := range files {
		if ignored(f) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", f)
		}
	}
	// The check can fail: one more pattern excluding a package is caught.
	stricter, err := patternmatcher.New(append(slices.Clone(patterns), "internal/config"))
	if err != nil {
		t.Fatal(err)
	}
	caught := false
	for _, f := range files {
		ok, _ := stricter.MatchesOrParentMatches(f)
		caught = caught || ok
	}
	if !caught {
		t.Error("excluding internal/config went unnoticed: the build inputs are incomplete")
	}
	for _, f := range []string{".git/config", "deploy/go.mod", "internal/loggen/line_test.go", "e2e/doc.go", "docs/DEPLOYING.md", "README.md", "buffer/FORMAT.md", "internal/config/testdata/x"} {
		if !ignored(f) {
			t.Errorf(".dockerignore lets %s into the build context", f)
		}
	}
}
