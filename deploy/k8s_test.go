package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/skiff-dev/skiff/internal/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const k8sDir = "kubernetes"

// splitDocs splits a multi-document YAML stream, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// objects is what a manifest set decodes to.
type objects struct {
	deployments []*appsv1.Deployment
	configMaps  map[string]*corev1.ConfigMap
}

// decodeStrict decodes every document into its k8s.io/api type; unknown
// fields, duplicate keys and unexpected kinds are errors.
func decodeStrict(t *testing.T, name string, b []byte) objects {
	t.Helper()
	o := objects{configMaps: map[string]*corev1.ConfigMap{}}
	for i, doc := range splitDocs(b) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s doc %d: %v", name, i, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			o.deployments, obj = append(o.deployments, d), d
		case "v1 ConfigMap":
			cm := &corev1.ConfigMap{}
			obj = cm
			defer func() { o.configMaps[cm.Name] = cm }()
		default:
			t.Fatalf("%s doc %d: unexpected %s %s", name, i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s doc %d (%s): strict decode: %v", name, i, tm.Kind, err)
		}
	}
	return o
}

// TestKubernetesFilesDecodeStrictly decodes every file under
// deploy/kubernetes as written: manifests into k8s.io/api types,
// kustomization.yaml into kustomize's own type.
func TestKubernetesFilesDecodeStrictly(t *testing.T) {
	n := 0
	err := filepath.WalkDir(k8sDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		n++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		t.Run(p, func(t *testing.T) {
			if filepath.Base(p) == "kustomization.yaml" {
				var k kusttypes.Kustomization
				if err := yaml.UnmarshalStrict(b, &k); err != nil {
					t.Fatalf("strict decode: %v", err)
				}
				if k.Kind != kusttypes.KustomizationKind || k.APIVersion != kusttypes.KustomizationVersion {
					t.Errorf("kind %q apiVersion %q", k.Kind, k.APIVersion)
				}
				return
			}
			decodeStrict(t, p, b)
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 6 {
		t.Fatalf("only %d YAML files found under %s", n, k8sDir)
	}
}

// render runs kustomize (what `kubectl apply -k dir` does) and decodes
// its output strictly.
func render(t *testing.T, dir string) objects {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeStrict(t, dir, b)
}

// variant is one deployable kustomization and what must hold for it.
type variant struct {
	dir    string
	native bool // skiff must be a native sidecar
}

var variants = map[string]variant{
	"recommended": {dir: k8sDir, native: true},
	"native":      {dir: filepath.Join(k8sDir, "native-sidecar"), native: true},
	"legacy":      {dir: filepath.Join(k8sDir, "legacy"), native: false},
}

func TestKubernetesVariants(t *testing.T) {
	for name, v := range variants {
		t.Run(name, func(t *testing.T) {
			o := render(t, v.dir)
			if len(o.deployments) != 1 {
				t.Fatalf("%d Deployments, want 1", len(o.deployments))
			}
			pod := &o.deployments[0].Spec.Template.Spec
			for _, p := range podProblems(v, pod, o.configMaps) {
				t.Error(p)
			}
			skiff, _, err := findSkiff(pod)
			if err != nil {
				t.Fatal(err)
			}
			env, _, err := resolveEnv(skiff, o.configMaps)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("skiff accepts its environment", func(t *testing.T) { checkSkiffEnv(t, env) })
		})
	}
}

// problems collects what a check found wrong.
type problems []string

func (r *problems) add(format string, args ...any) { *r = append(*r, fmt.Sprintf(format, args...)) }

func isSkiffImage(image string) bool {
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return path.Base(name) == "skiff"
}

// findSkiff returns the skiff container (the one running the skiff image)
// and whether it is a native sidecar (an init container with
// restartPolicy Always).
func findSkiff(pod *corev1.PodSpec) (*corev1.Container, bool, error) {
	var found *corev1.Container
	native := false
	for i := range pod.InitContainers {
		if c := &pod.InitContainers[i]; isSkiffImage(c.Image) {
			found = c
			native = c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		}
	}
	for i := range pod.Containers {
		if c := &pod.Containers[i]; isSkiffImage(c.Image) {
			if found != nil {
				return nil, false, errors.New("two skiff containers")
			}
			found = c
		}
	}
	if found == nil {
		return nil, false, errors.New("no skiff container (image .../skiff)")
	}
	return found, native, nil
}

// resolveEnv returns c's environment as the kubelet builds it: envFrom
// ConfigMaps first, then env literals; valueFrom entries are returned
// separately.
func resolveEnv(c *corev1.Container, cms map[string]*corev1.ConfigMap) (map[string]string, map[string]*corev1.EnvVarSource, error) {
	env, from := map[string]string{}, map[string]*corev1.EnvVarSource{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			return nil, nil, fmt.Errorf("envFrom other than a ConfigMap: %+v (secrets belong in files)", ef)
		}
		cm := cms[ef.ConfigMapRef.Name]
		if cm == nil {
			return nil, nil, fmt.Errorf("envFrom ConfigMap %q is not in the manifests", ef.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			from[e.Name] = e.ValueFrom
			delete(env, e.Name)
			continue
		}
		env[e.Name] = e.Value
	}
	return env, from, nil
}

func mountOf(c *corev1.Container, p string) (corev1.VolumeMount, bool) {
	best, ok := corev1.VolumeMount{}, false
	for _, m := range c.VolumeMounts {
		mp := strings.TrimSuffix(m.MountPath, "/")
		if (p == mp || strings.HasPrefix(p, mp+"/")) && len(mp) >= len(best.MountPath) {
			best, ok = m, true
		}
	}
	return best, ok
}

func volume(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// globBase is the directory part of a glob before its first meta character.
func globBase(g string) string {
	base, _ := doublestar.SplitPattern(g)
	return base
}

// podProblems lists what is wrong with a rendered pod for variant v, every
// problem a reviewer would flag, short of skiff's own configuration check
// (checkSkiffEnv), which needs the process environment.
func podProblems(v variant, pod *corev1.PodSpec, cms map[string]*corev1.ConfigMap) (r problems) {
	skiff, native, err := findSkiff(pod)
	if err != nil {
		r.add("%v", err)
		return r
	}
	if v.native && !native {
		r.add("skiff is not a native sidecar: want an init container with restartPolicy: Always")
	}
	if !v.native && native {
		r.add("legacy variant uses a native sidecar")
	}
	var apps []*corev1.Container
	for i := range pod.Containers {
		if &pod.Containers[i] != skiff {
			apps = append(apps, &pod.Containers[i])
		}
	}
	if len(apps) == 0 {
		r.add("no application container")
		return r
	}
	env, from, err := resolveEnv(skiff, cms)
	if err != nil {
		r.add("%v", err)
		return r
	}

	// downward API identity
	func() {
		want := map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_UID": "metadata.uid", "NODE_NAME": "spec.nodeName"}
		for name, field := range want {
			src := from[name]
			if src == nil || src.FieldRef == nil || src.FieldRef.FieldPath != field {
				r.add("%s: want valueFrom.fieldRef.fieldPath %s, have %+v", name, field, src)
			}
		}
		for name, src := range from {
			if _, ok := want[name]; ok {
				continue
			}
			if rf := src.ResourceFieldRef; name == "GOMAXPROCS" && rf != nil && rf.ContainerName == skiff.Name &&
				(rf.Resource == "requests.cpu" || rf.Resource == "limits.cpu") && rf.Divisor.Cmp(resource.MustParse("1")) == 0 {
				continue
			}
			r.add("unexpected valueFrom variable %s", name)
		}
		if fields := keyValues(env["SKIFF_FIELDS"]); fields["container"] != apps[0].Name {
			r.add("SKIFF_FIELDS=%q: want container=%s (the application container's name)", env["SKIFF_FIELDS"], apps[0].Name)
		}
	}()

	// shared log volume
	func() {
		globs := strings.Split(env["SKIFF_PATHS"], ",")
		if len(globs) == 0 || globs[0] == "" {
			r.add("SKIFF_PATHS is not set")
			return
		}
		for _, g := range globs {
			g = strings.TrimSpace(g)
			sm, ok := mountOf(skiff, globBase(g))
			if !ok {
				r.add("SKIFF_PATHS %q: skiff mounts nothing at %s", g, globBase(g))
				continue
			}
			if !sm.ReadOnly {
				r.add("skiff should mount the application's logs read-only")
			}
			vol := volume(pod, sm.Name)
			if vol == nil || vol.EmptyDir == nil || vol.EmptyDir.SizeLimit == nil || vol.EmptyDir.SizeLimit.IsZero() {
				r.add("volume %q: want an emptyDir with a sizeLimit, have %+v", sm.Name, vol)
			}
			for _, app := range apps {
				am, ok := appMount(app, sm.Name)
				if !ok {
					r.add("container %s does not mount volume %q that SKIFF_PATHS %q reads", app.Name, sm.Name, g)
					continue
				}
				if am.ReadOnly {
					r.add("container %s mounts %q read-only: it cannot write its logs", app.Name, sm.Name)
				}
				// Where the application writes (loggen -out), seen from
				// skiff's side of the volume, must match the glob.
				if out := flagValue(app.Args, "-out"); out != "" {
					rel, err := filepath.Rel(am.MountPath, out)
					if err != nil || strings.HasPrefix(rel, "..") {
						r.add("container %s writes %s, outside its mount %s", app.Name, out, am.MountPath)
						continue
					}
					seen := path.Join(sm.MountPath, rel)
					if ok, _ := doublestar.Match(g, seen); !ok {
						r.add("container %s writes %s (%s for skiff), which SKIFF_PATHS %q does not match", app.Name, out, seen, g)
					}
				}
			}
		}
	}()

	// data dir
	func() {
		dd := env["SKIFF_DATA_DIR"]
		m, ok := mountOf(skiff, dd)
		if !ok || m.ReadOnly {
			r.add("SKIFF_DATA_DIR %q is not on a writable volume (the root filesystem is read-only)", dd)
			return
		}
		vol := volume(pod, m.Name)
		if vol == nil || vol.EmptyDir == nil || vol.EmptyDir.SizeLimit == nil {
			r.add("data volume %q: want an emptyDir with a sizeLimit", m.Name)
			return
		}
		for _, app := range apps {
			if _, shared := appMount(app, m.Name); shared {
				r.add("container %s mounts skiff's data volume", app.Name)
			}
		}
		need := size(&r, env, "SKIFF_BUFFER_MAX_BYTES", "256MiB") + size(&r, env, "SKIFF_DEAD_LETTER_MAX_BYTES", "64MiB")
		// Segments, checkpoints and cursors need a little more; leave 25%.
		if limit := vol.EmptyDir.SizeLimit.Value(); float64(limit) < 1.25*float64(need) {
			r.add("data volume sizeLimit %s is too small for buffer + dead letters (%d bytes) plus 25%%: the kubelet would evict the pod", vol.EmptyDir.SizeLimit, need)
		}
	}()

	// secrets as files
	func() {
		for _, name := range []string{"SKIFF_KAFKA_SASL_PASSWORD_FILE", "SKIFF_HTTP_TOKEN_FILE"} {
			p, ok := env[name]
			if !ok {
				r.add("%s is not set", name)
				continue
			}
			m, ok := mountOf(skiff, p)
			if !ok || !m.ReadOnly {
				r.add("%s=%s: not on a read-only mount", name, p)
				continue
			}
			vol := volume(pod, m.Name)
			if vol == nil || vol.Secret == nil {
				r.add("%s=%s: volume %q is not a Secret", name, p, m.Name)
				continue
			}
			rel := strings.TrimPrefix(strings.TrimPrefix(p, m.MountPath), "/")
			found := false
			for _, it := range vol.Secret.Items {
				found = found || it.Path == rel
			}
			if !found {
				r.add("%s=%s: Secret %s projects no item to %q", name, p, vol.Secret.SecretName, rel)
			}
			if mode := vol.Secret.DefaultMode; mode == nil || *mode&0o007 != 0 {
				r.add("Secret volume mode %v is readable by others", mode)
			}
		}
		for k := range env {
			if strings.Contains(k, "PASSWORD") && !strings.HasSuffix(k, "_FILE") || strings.HasSuffix(k, "_TOKEN") {
				r.add("%s is set as a plain value: secrets belong in a mounted Secret", k)
			}
		}
	}()

	// probes
	func() {
		_, portStr, err := net.SplitHostPort(cmp(env["SKIFF_METRICS_ADDR"], ":9477"))
		if err != nil {
			r.add("SKIFF_METRICS_ADDR: %v", err)
			return
		}
		metricsPort, _ := strconv.Atoi(portStr)
		if metricsPort != 9477 {
			r.add("metrics port %d, want the documented 9477", metricsPort)
		}
		declared := false
		for _, p := range skiff.Ports {
			declared = declared || p.ContainerPort == int32(metricsPort)
		}
		if !declared {
			r.add("container port %d is not declared", metricsPort)
		}
		for name, pr := range map[string]struct {
			probe *corev1.Probe
			path  string
		}{"liveness": {skiff.LivenessProbe, "/healthz"}, "readiness": {skiff.ReadinessProbe, "/readyz"}} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				r.add("%s probe: want an httpGet probe", name)
				continue
			}
			g := pr.probe.HTTPGet
			if g.Path != pr.path {
				r.add("%s probe path %q, want %q", name, g.Path, pr.path)
			}
			if port := resolvePort(skiff, g.Port); port != metricsPort {
				r.add("%s probe port %s resolves to %d, want %d (SKIFF_METRICS_ADDR)", name, g.Port.String(), port, metricsPort)
			}
			if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
				r.add("%s probe scheme %s: skiff serves plain HTTP", name, g.Scheme)
			}
		}
	}()

	// images are pinned: a tag other than latest, or a digest
	for _, c := range append(append([]*corev1.Container{}, apps...), skiff) {
		name, digest, _ := strings.Cut(c.Image, "@")
		tag := ""
		if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
			tag = name[i+1:]
		}
		if digest == "" && (tag == "" || tag == "latest") {
			r.add("%s: image %q is not pinned (set a tag or digest in kustomization.yaml images)", c.Name, c.Image)
		}
	}

	// security
	func() {
		if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
			r.add("enableServiceLinks must be false")
		}
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			r.add("pod securityContext.runAsNonRoot must be true")
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			r.add("pod seccompProfile must be RuntimeDefault")
		}
		if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
			r.add("pod runs as uid 0")
		}
		for _, c := range append([]*corev1.Container{skiff}, apps...) {
			sc := c.SecurityContext
			if sc == nil {
				r.add("%s: no securityContext", c.Name)
				continue
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				r.add("%s: readOnlyRootFilesystem must be true", c.Name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				r.add("%s: allowPrivilegeEscalation must be false", c.Name)
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				r.add("%s: capabilities must drop ALL and add none", c.Name)
			}
			if sc.Privileged != nil && *sc.Privileged {
				r.add("%s: privileged", c.Name)
			}
		}
	}()

	// resources
	func() {
		rr := skiff.Resources
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := rr.Requests[name]; !ok || q.IsZero() {
				r.add("no %s request", name)
			}
		}
		mem, ok := rr.Limits[corev1.ResourceMemory]
		if !ok {
			r.add("no memory limit")
			return
		}
		if req := rr.Requests[corev1.ResourceMemory]; req.Cmp(mem) > 0 {
			r.add("memory request %s above limit %s", &req, &mem)
		}
		// Unset, skiff derives GOMEMLIMIT from the cgroup's limit (90%).
		gml, ok := env["GOMEMLIMIT"]
		if !ok {
			return
		}
		q, err := resource.ParseQuantity(strings.TrimSuffix(gml, "B"))
		if err != nil {
			r.add("GOMEMLIMIT=%q: %v", gml, err)
			return
		}
		if q.Cmp(mem) >= 0 || q.Value() < mem.Value()*3/4 {
			r.add("GOMEMLIMIT %s should be a little under the memory limit %s", gml, &mem)
		}
	}()

	// termination grace
	func() {
		st, err := time.ParseDuration(cmp(env["SKIFF_SHUTDOWN_TIMEOUT"], "25s"))
		if err != nil {
			r.add("SKIFF_SHUTDOWN_TIMEOUT: %v", err)
			return
		}
		grace := time.Duration(30) * time.Second
		if pod.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		}
		// A native sidecar is stopped after the application, inside the
		// same grace period: leave room for the application's shutdown.
		margin := 5 * time.Second
		if v.native {
			margin = 15 * time.Second
		}
		if grace < st+margin {
			r.add("terminationGracePeriodSeconds %v < SKIFF_SHUTDOWN_TIMEOUT %v + %v: the kubelet would SIGKILL skiff mid-drain", grace, st, margin)
		}
	}()
	return r
}

func appMount(c *corev1.Container, volume string) (corev1.VolumeMount, bool) {
	for _, m := range c.VolumeMounts {
		if m.Name == volume {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func resolvePort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

func size(r *problems, env map[string]string, name, def string) int64 {
	s, err := config.ParseSize(cmp(env[name], def))
	if err != nil {
		r.add("%s: %v", name, err)
	}
	return int64(s)
}

// cmp returns v, or def when v is empty.
func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// keyValues parses SKIFF_FIELDS' comma-separated key=value pairs.
func keyValues(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}
