package deploy

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// maxImageBytes bounds the final image (the issue: "well under 20 MB").
const maxImageBytes = 20 << 20

// finalStage is what the Dockerfile's skiff stage configures.
type finalStage struct {
	user       string
	entrypoint []string
	ports      []string
	binary     string   // destination of the skiff binary
	dirs       []string // directories copied in, owned by user
}

func skiffStage(t *testing.T) finalStage {
	t.Helper()
	stages, _, err := parseDockerfile(readDockerfile(t))
	if err != nil {
		t.Fatal(err)
	}
	var fs finalStage
	st := stages[len(stages)-1]
	for _, c := range st.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			fs.user = c.User
		case *instructions.EntrypointCommand:
			fs.entrypoint = c.CmdLine
		case *instructions.ExposeCommand:
			fs.ports = append(fs.ports, c.Ports...)
		case *instructions.CopyCommand:
			switch {
			case slices.Contains(c.SourcePaths, "/out/skiff"):
				fs.binary = c.DestPath
			case c.Chown != "":
				fs.dirs = append(fs.dirs, c.DestPath)
			}
		}
	}
	if fs.binary == "" || len(fs.entrypoint) == 0 || fs.user == "" {
		t.Fatalf("final stage %q: cannot find binary, entrypoint and user: %+v", st.Name, fs)
	}
	return fs
}

// TestImage assembles skiff's final image with buildah, the way the
// Dockerfile's last stage does but on scratch (no base image can be pulled
// here; distroless static adds only CA certificates, tzdata and
// /etc/passwd), and checks its config and that the binary in it runs.
func TestImage(t *testing.T) {
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Skip("buildah is not installed (apt-get install -y buildah); the image is checked only through the Dockerfile")
	}
	fs := skiffStage(t)
	tmp := t.TempDir()

	// Build the binary as the Dockerfile does.
	pkg, dir := "./cmd/skiff", repoRoot
	version := "test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	bin := filepath.Join(tmp, "skiff")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid= -X main.version="+version, "-o", bin, pkg)
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	checkStatic(t, bin)

	root := filepath.Join(tmp, "storage")
	bh := func(args ...string) (string, error) {
		cmd := exec.Command("buildah", append([]string{"--root", root, "--runroot", filepath.Join(tmp, "run"), "--storage-driver", "vfs"}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err != nil {
			return stdout.String(), fmt.Errorf("buildah %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(stdout.String()), nil
	}
	ctr, err := bh("from", "--quiet", "scratch")
	if err != nil {
		t.Skipf("buildah cannot create a container here (environment): %v", err)
	}
	t.Cleanup(func() {
		_, _ = bh("umount", ctr) // best effort: the storage dir is removed next
		_, _ = bh("rm", ctr)
	})
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	steps := [][]string{{"copy", ctr, bin, fs.binary}}
	for _, d := range fs.dirs {
		steps = append(steps, []string{"copy", "--chown", fs.user, ctr, empty, d})
	}
	entry, _ := json.Marshal(fs.entrypoint)
	cfg := []string{"config", "--user", fs.user, "--entrypoint", string(entry)}
	for _, p := range fs.ports {
		cfg = append(cfg, "--port", p)
	}
	steps = append(steps, append(cfg, ctr))
	ref := "localhost/skiff-image-test:" + version
	steps = append(steps, []string{"commit", "--quiet", ctr, ref})
	for _, s := range steps {
		if _, err := bh(s...); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = bh("rmi", ref) })

	// The image's config is what Kubernetes and Docker will run.
	out, err := bh("inspect", "--type", "image", ref)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		OCIv1 struct {
			Config struct {
				User         string
				Entrypoint   []string
				ExposedPorts map[string]struct{}
			} `json:"config"`
		}
		Manifest string
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	c := info.OCIv1.Config
	if c.User != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532 (distroless nonroot)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/skiff"}) {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if _, ok := c.ExposedPorts["9477/tcp"]; !ok {
		if _, ok := c.ExposedPorts["9477"]; !ok {
			t.Errorf("exposed ports %v lack 9477", c.ExposedPorts)
		}
	}
	var manifest struct {
		Config struct{ Size int64 }
		Layers []struct{ Size int64 }
	}
	if err := json.Unmarshal([]byte(info.Manifest), &manifest); err != nil {
		t.Fatal(err)
	}
	size := manifest.Config.Size
	for _, l := range manifest.Layers {
		size += l.Size
	}
	t.Logf("image %s: %d layers, %.1f MiB (uncompressed), binary %.1f MiB", ref, len(manifest.Layers), float64(size)/(1<<20), fileMiB(t, bin))
	if size == 0 || size >= maxImageBytes {
		t.Errorf("image size %d bytes, want under %d", size, maxImageBytes)
	}

	// The binary inside the image runs: from the mounted root file system,
	// and inside the image's own root with chroot isolation.
	mnt, err := bh("mount", ctr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(filepath.Join(mnt, fs.binary), "version").Output()
	if err != nil || string(got) != "skiff "+version+"\n" {
		t.Errorf("%s version = %q, %v; want %q", fs.binary, got, err, "skiff "+version)
	}
	for _, d := range fs.dirs {
		fi, err := os.Stat(filepath.Join(mnt, d))
		if err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (st.Uid != 65532 || st.Gid != 65532) {
			t.Errorf("%s is owned by %d:%d, want 65532:65532 (Docker seeds named volumes from it)", d, st.Uid, st.Gid)
		}
	}
	if out, err := bh("run", "--isolation", "chroot", ctr, "--", fs.binary, "version"); err != nil {
		t.Logf("buildah run --isolation chroot is not available here (%v); the binary ran from the mounted root above", err)
	} else if out != "skiff "+version {
		t.Errorf("in the image, skiff version = %q", out)
	}
}

// checkStatic fails unless bin is a statically linked ELF executable (no
// interpreter, no shared libraries): distroless static has no libc.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	if err := staticELF(bin); err != nil {
		t.Error(err)
	}
}

func staticELF(bin string) error {
	f, err := elf.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s has an ELF interpreter: not static", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v (%v): not static", bin, libs, err)
	}
	return nil
}

func TestStaticELFRejectsDynamic(t *testing.T) {
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls")
	}
	if err := staticELF(ls); err == nil {
		t.Fatalf("%s (dynamically linked on Debian) passed as static", ls)
	}
}

func fileMiB(t *testing.T, p string) float64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return float64(fi.Size()) / (1 << 20)
}
