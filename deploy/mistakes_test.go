package deploy

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestKubernetesChecksCatchMistakes breaks the recommended manifest one
// way at a time and requires podProblems to name each mistake: the checks
// that pass on the real manifests are not vacuous.
func TestKubernetesChecksCatchMistakes(t *testing.T) {
	o := render(t, variants["recommended"].dir)
	base := &o.deployments[0].Spec.Template.Spec
	skiffOf := func(pod *corev1.PodSpec) *corev1.Container { return &pod.InitContainers[0] }
	setEnv := func(c *corev1.Container, name, value string) {
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].Value = value
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
	tests := map[string]struct {
		mutate func(pod *corev1.PodSpec)
		want   string
	}{
		"GOMAXPROCS from another container": {func(p *corev1.PodSpec) {
			c := skiffOf(p)
			c.Env = append(c.Env, corev1.EnvVar{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{
				ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "requests.cpu", Divisor: resource.MustParse("1")},
			}})
		}, "unexpected valueFrom variable GOMAXPROCS"},
		"image unpinned":       {func(p *corev1.PodSpec) { skiffOf(p).Image = "ghcr.io/skiff-dev/skiff:latest" }, "is not pinned"},
		"not a native sidecar": {func(p *corev1.PodSpec) { skiffOf(p).RestartPolicy = nil }, "not a native sidecar"},
		"paths outside the volume": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "SKIFF_PATHS", "/logs/*.log") },
			"skiff mounts nothing at /logs"},
		"glob misses the app's file": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "SKIFF_PATHS", "/var/log/app/*.txt") },
			"which SKIFF_PATHS \"/var/log/app/*.txt\" does not match"},
		"app mounts the volume elsewhere": {func(p *corev1.PodSpec) { p.Containers[0].VolumeMounts[0].Name = "other" },
			"does not mount volume \"app-logs\""},
		"log volume unbounded": {func(p *corev1.PodSpec) { p.Volumes[0].EmptyDir.SizeLimit = nil }, "want an emptyDir with a sizeLimit"},
		"data dir on the root fs": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "SKIFF_DATA_DIR", "/data") },
			"SKIFF_DATA_DIR \"/data\" is not on a writable volume"},
		"buffer larger than its volume": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "SKIFF_BUFFER_MAX_BYTES", "1GiB") },
			"too small for buffer + dead letters"},
		"liveness on readyz": {func(p *corev1.PodSpec) { skiffOf(p).LivenessProbe.HTTPGet.Path = "/readyz" }, "liveness probe path \"/readyz\""},
		"readiness on the wrong port": {func(p *corev1.PodSpec) { skiffOf(p).ReadinessProbe.HTTPGet.Port = intstr.FromInt32(8080) },
			"readiness probe port 8080 resolves to 8080"},
		"probe port name unknown": {func(p *corev1.PodSpec) { skiffOf(p).ReadinessProbe.HTTPGet.Port = intstr.FromString("http") },
			"resolves to -1"},
		"metrics addr moved": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "SKIFF_METRICS_ADDR", ":9000") }, "want 9000"},
		"service links on":   {func(p *corev1.PodSpec) { p.EnableServiceLinks = nil }, "enableServiceLinks must be false"},
		"writable root fs": {func(p *corev1.PodSpec) { *skiffOf(p).SecurityContext.ReadOnlyRootFilesystem = false },
			"skiff: readOnlyRootFilesystem"},
		"capabilities kept": {func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.Capabilities = nil },
			"app: capabilities must drop ALL"},
		"root allowed":    {func(p *corev1.PodSpec) { p.SecurityContext.RunAsNonRoot = nil }, "runAsNonRoot must be true"},
		"no memory limit": {func(p *corev1.PodSpec) { delete(skiffOf(p).Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
		"GOMEMLIMIT above the limit": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "GOMEMLIMIT", "80MiB") },
			"should be a little under the memory limit"},
		"GOMEMLIMIT far below the limit": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "GOMEMLIMIT", "16MiB") },
			"should be a little under the memory limit"},
		"grace too short": {func(p *corev1.PodSpec) { s := int64(25); p.TerminationGracePeriodSeconds = &s },
			"the kubelet would SIGKILL skiff mid-drain"},
		"identity missing": {func(p *corev1.PodSpec) {
			c := skiffOf(p)
			for i := range c.Env {
				if c.Env[i].Name == "POD_UID" {
					c.Env[i].ValueFrom.FieldRef.FieldPath = "metadata.name"
				}
			}
		}, "POD_UID: want valueFrom.fieldRef.fieldPath metadata.uid"},
		"container field wrong": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "SKIFF_FIELDS", "container=web") }, "want container=app"},
		"secret as plain env":   {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "SKIFF_HTTP_TOKEN", "hunter2") }, "set as a plain value"},
		"secret file not projected": {func(p *corev1.PodSpec) { setEnv(skiffOf(p), "SKIFF_HTTP_TOKEN_FILE", "/etc/skiff/secrets/token") },
			"projects no item to \"token\""},
		"secret world-readable": {func(p *corev1.PodSpec) { m := int32(0o644); p.Volumes[2].Secret.DefaultMode = &m }, "readable by others"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := base.DeepCopy()
			tc.mutate(pod)
			ps := podProblems(variants["recommended"], pod, o.configMaps)
			if !strings.Contains(strings.Join(ps, "\n"), tc.want) {
				t.Fatalf("problems %q lack %q", ps, tc.want)
			}
		})
	}
	// The unmutated pod has none (TestKubernetesVariants shows them all).
	if ps := podProblems(variants["recommended"], base.DeepCopy(), o.configMaps); len(ps) > 0 {
		t.Fatalf("base has problems: %q", ps)
	}
	// The legacy check rejects a native sidecar.
	if ps := podProblems(variant{dir: filepath.Join(k8sDir, "legacy")}, base.DeepCopy(), o.configMaps); !strings.Contains(strings.Join(ps, "\n"), "legacy variant uses a native sidecar") {
		t.Fatalf("problems %q", ps)
	}
}

// TestSkiffEnvCheckCatchesMistakes proves envProblems reports what skiff's
// loader rejects: unknown (misspelled) variables and bad values.
func TestSkiffEnvCheckCatchesMistakes(t *testing.T) {
	ok := map[string]string{"SKIFF_PATHS": "/var/log/app/*.log", "SKIFF_DATA_DIR": "/var/lib/skiff", "SKIFF_SINKS": "stdout"}
	tests := map[string]struct {
		set  map[string]string
		want string
	}{
		"valid":                 {nil, ""},
		"typo":                  {map[string]string{"SKIFF_PATH": "/x/*.log"}, "SKIFF_PATH is not a skiff variable"},
		"bad value":             {map[string]string{"SKIFF_BUFFER_WHEN_FULL": "sometimes"}, "SKIFF_BUFFER_WHEN_FULL"},
		"relative glob":         {map[string]string{"SKIFF_PATHS": "logs/*.log"}, "is not absolute"},
		"sink var without sink": {map[string]string{"SKIFF_KAFKA_TOPIC": "x"}, "SKIFF_KAFKA_TOPIC is not a skiff variable"},
		"bad duration":          {map[string]string{"SKIFF_SHUTDOWN_TIMEOUT": "soon"}, "SKIFF_SHUTDOWN_TIMEOUT"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range ok {
				env[k] = v
			}
			for k, v := range tc.set {
				env[k] = v
			}
			got := strings.Join(envProblems(t, env), "\n")
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
		})
	}
}
