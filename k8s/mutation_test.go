package k8s

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// recorder collects policy violations instead of failing the test.
type recorder struct{ msgs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func deployment(m *manifests, name string) *corev1.PodSpec {
	for _, d := range m.deployments {
		if d.Name == name {
			return &d.Spec.Template.Spec
		}
	}
	return nil
}

func statefulSet(m *manifests, name string) *appsv1.StatefulSet {
	for _, s := range m.statefulSets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// TestPoliciesCatchViolations breaks the rendered dev overlay one way at a
// time and checks the policies notice, so a check cannot silently pass.
func TestPoliciesCatchViolations(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(m *manifests)
		want   string // part of one reported violation
	}{
		{"no readiness probe", func(m *manifests) {
			deployment(m, "bitnet-router").Containers[0].ReadinessProbe = nil
		}, "want readiness and liveness probes"},
		{"probe on a missing port", func(m *manifests) {
			statefulSet(m, "bitnet-quantizer").Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port = intstr.FromInt32(9191)
		}, "is not a container port"},
		{"writable root", func(m *manifests) {
			f := false
			statefulSet(m, "bitnet-trainer").Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem is not true"},
		{"capability added", func(m *manifests) {
			deployment(m, "bitnet-router").Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, "want drop [ALL]"},
		{"no memory limit", func(m *manifests) {
			delete(deployment(m, "bitnet-router").Containers[0].Resources.Limits, corev1.ResourceMemory)
		}, "memory request true / limit false"},
		{"short grace period", func(m *manifests) {
			g := int64(15)
			deployment(m, "bitnet-router").TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds"},
		{"wrong kernel", func(m *manifests) {
			c := &deployment(m, "bitnet-inference-avx2").Containers[0]
			c.Args[slices.Index(c.Args, "--kernel")+1] = "avx512"
		}, `got --kernel "avx512", want "avx2"`},
		{"avx2 pool takes avx512 nodes", func(m *manifests) {
			deployment(m, "bitnet-inference-avx2").Affinity = nil
		}, "does not exclude nodes with"},
		{"threads above the CPU limit", func(m *manifests) {
			c := &deployment(m, "bitnet-inference-arm64").Containers[0]
			c.Args[slices.Index(c.Args, "--threads")+1] = "8"
		}, "want the CPU limit"},
		{"second avx512 pool", func(m *manifests) {
			for _, d := range m.deployments {
				if d.Name == "bitnet-inference-avx2" {
					d.Spec.Template.Labels["bitnet.dev/pool"] = "avx512"
				}
			}
		}, "got 2 inference Deployments for pool avx512"},
		{"service targets a missing port", func(m *manifests) {
			for _, s := range m.services {
				if s.Name == "bitnet-router" {
					s.Spec.Ports[0].TargetPort = intstr.FromInt32(9999)
				}
			}
		}, "is not a container port"},
		{"selector misses pods", func(m *manifests) {
			m.deployments[0].Spec.Selector.MatchLabels["extra"] = "x"
		}, "does not match pod labels"},
		{"PDB matches nothing", func(m *manifests) {
			m.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "nope"}
		}, "matches no workload"},
		{"HPA targets nothing", func(m *manifests) {
			m.hpas[0].Spec.ScaleTargetRef.Name = "nope"
		}, "is not a Deployment here"},
		{"no default deny", func(m *manifests) {
			m.netpols = slices.DeleteFunc(m.netpols, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "default-deny" })
		}, "no default-deny NetworkPolicy"},
		{"keys off", func(m *manifests) {
			setEnv(deployment(m, "bitnet-router"), "BITNET_AUTH", "false")
		}, "BITNET_AUTH"},
		{"inference without mTLS", func(m *manifests) {
			setEnv(deployment(m, "bitnet-inference-avx2"), "BITNET_TLS_CLIENT_CA", "")
		}, "BITNET_TLS_CLIENT_CA"},
		{"insecure", func(m *manifests) {
			setEnv(&statefulSet(m, "bitnet-quantizer").Spec.Template.Spec, "BITNET_INSECURE", "true")
		}, "BITNET_INSECURE"},
		{"reflection on", func(m *manifests) {
			setEnv(&statefulSet(m, "bitnet-trainer").Spec.Template.Spec, "BITNET_REFLECTION", "true")
		}, "BITNET_REFLECTION"},
		{"plaintext probe", func(m *manifests) {
			deployment(m, "bitnet-router").Containers[0].ReadinessProbe.HTTPGet.Scheme = corev1.URISchemeHTTP
		}, "readiness probe is not an HTTPS GET"},
		{"metrics on the public Service", func(m *manifests) {
			for _, s := range m.services {
				if s.Name == "bitnet-router" {
					s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromString("metrics")})
				}
			}
		}, "exposes the metrics port"},
		{"advertise missing", func(m *manifests) {
			c := &deployment(m, "bitnet-router").Containers[0]
			i := slices.Index(c.Args, "--advertise")
			c.Args = slices.Delete(c.Args, i, i+2)
		}, `got --advertise ""`},
		{"node name from spec.nodeName", func(m *manifests) {
			for i, e := range deployment(m, "bitnet-inference-avx2").Containers[0].Env {
				if e.Name == "POD_NAME" {
					deployment(m, "bitnet-inference-avx2").Containers[0].Env[i].ValueFrom.FieldRef.FieldPath = "spec.nodeName"
				}
			}
		}, "is not the pod's name"},
		{"no drain", func(m *manifests) {
			setEnv(deployment(m, "bitnet-router"), "BITNET_DRAIN", "")
		}, `got drain ""`},
		{"preStop exec", func(m *manifests) {
			deployment(m, "bitnet-router").Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
				Exec: &corev1.ExecAction{Command: []string{"sleep", "5"}}}}
		}, "preStop hook is not a sleep"},
		{"preStop sleep eats the grace period", func(m *manifests) {
			deployment(m, "bitnet-router").Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
				Sleep: &corev1.SleepAction{Seconds: 10}}}
		}, "want > 35 (preStop 10"},
		{"memory limit below budget", func(m *manifests) {
			deployment(m, "bitnet-inference-avx2").Containers[0].Resources.Limits[corev1.ResourceMemory] = resource.MustParse("1536Mi")
		}, "memory limit 1536Mi < --memory-budget"},
		{"GOMEMLIMIT in the manifest", func(m *manifests) {
			setEnv(deployment(m, "bitnet-router"), "GOMEMLIMIT", "1GiB")
		}, "GOMEMLIMIT"},
		{"job store on an emptyDir", func(m *manifests) {
			s := statefulSet(m, "bitnet-trainer")
			s.Spec.VolumeClaimTemplates = nil
			s.Spec.Template.Spec.Volumes = append(s.Spec.Template.Spec.Volumes, corev1.Volume{Name: "work",
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}, "an emptyDir, lost when the pod is replaced"},
		{"emptyDir over the job store's directory", func(m *manifests) {
			ps := &statefulSet(m, "bitnet-quantizer").Spec.Template.Spec
			ps.Volumes = append(ps.Volumes, corev1.Volume{Name: "scratch",
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			ps.Containers[0].VolumeMounts = append(ps.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "scratch", MountPath: "/work/work"})
		}, `store /work/work/quantizer/jobs.db is on volume "scratch"`},
		{"job store on a shared volume", func(m *manifests) {
			s := statefulSet(m, "bitnet-quantizer")
			s.Spec.VolumeClaimTemplates[0].Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		}, "is not ReadWriteOnce"},
		{"job store in a Deployment", func(m *manifests) {
			s := statefulSet(m, "bitnet-trainer")
			tmpl := *s.Spec.Template.DeepCopy()
			tmpl.Spec.Volumes = append(tmpl.Spec.Volumes, corev1.Volume{Name: "work", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "trainer-work"}}})
			m.statefulSets = slices.DeleteFunc(m.statefulSets, func(x *appsv1.StatefulSet) bool { return x == s })
			m.deployments = append(m.deployments, &appsv1.Deployment{ObjectMeta: s.ObjectMeta,
				Spec: appsv1.DeploymentSpec{Replicas: s.Spec.Replicas, Selector: s.Spec.Selector, Template: tmpl}})
		}, "keeps its store /work/work/trainer/jobs.db in a Deployment"},
		{"inference HPA on CPU", func(m *manifests) {
			h := m.hpas[0].DeepCopy()
			h.Name, h.Spec.ScaleTargetRef.Name = "bitnet-inference-avx2", "bitnet-inference-avx2"
			m.hpas = append(m.hpas, h)
		}, "want a Pods metric bitnet_inference_queue_depth"},
	}
	dev := build(t, "overlays/dev")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := dev.decode(t)
			var clean recorder
			checkAll(&clean, m)
			if len(clean.msgs) != 0 {
				t.Fatalf("unbroken overlay reports %q", clean.msgs)
			}
			tt.mutate(m)
			var r recorder
			checkAll(&r, m)
			for _, msg := range r.msgs {
				if strings.Contains(msg, tt.want) {
					return
				}
			}
			t.Errorf("got violations %q, want one containing %q", r.msgs, tt.want)
		})
	}
}

// setEnv sets (or, with value "", removes) an environment variable of the
// first container of ps.
func setEnv(ps *corev1.PodSpec, name, value string) {
	c := &ps.Containers[0]
	c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	if value != "" {
		c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
	}
}
