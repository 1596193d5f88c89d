package k8s

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/bitnet-mesh/bitnet-mesh/services/inference"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// Day-2 operations (issue 14): rolling updates that drop nothing, pod
// identities, memory consistent with the limits, autoscaling on queues.
const (
	// The binary's shutdown after SIGTERM (shared/server, services/mesh):
	// NOT_SERVING, deregistration (bounded), BITNET_DRAIN, GracefulStop
	// (bounded by the shutdown timeout).
	deregisterSeconds = 5
	shutdownSeconds   = 10
	// memOverhead is what a bitnet container needs above its memory
	// budgets: activations, scratch, gRPC buffers, the Go runtime.
	memOverhead = 1 << 30
	// queueMetric is the custom metric the inference HPAs scale on, as the
	// Prometheus adapter names it; queueSeries the node's exported gauge
	// it is read from (requests waiting for a batch slot).
	queueMetric = "bitnet_inference_queue_depth"
	queueSeries = inference.MetricQueueDepth
)

// refModel is the model docs/deploy.md sizes the inference pools for:
// BitNet b1.58 2B4T (GGUF TQ2_0), 4096-token context, fp16 KV cache.
var refModel = model.Config{
	HiddenSize: 2560, IntermediateSize: 6912, NumLayers: 30, NumHeads: 20, NumKVHeads: 5, HeadDim: 128,
	VocabSize: 128256, MaxPositions: 4096, TieWordEmbeddings: true,
}

func checkOps(t reporter, m *manifests) {
	for _, w := range m.workloads() {
		ps := &w.tmpl.Spec
		for i := range ps.Containers {
			c := &ps.Containers[i]
			if !isBitnet(c) {
				continue
			}
			id := w.kind + " " + w.name + " container " + c.Name
			env := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				env[e.Name] = e
			}
			checkShutdown(t, id, c, ps, env)
			checkIdentity(t, id, c, env)
			checkMemory(t, id, m.overlay, c, env)
		}
	}
	checkAutoscaling(t, m)
}

// setting is a flag's value, else its environment variable's (literal).
func setting(c *corev1.Container, env map[string]corev1.EnvVar, flag, envName string) string {
	if v := flagValue(c.Args, flag); v != "" {
		return v
	}
	return env[envName].Value
}

// checkShutdown: the drain is configured, and the grace period outlasts
// any preStop sleep plus the whole shutdown, so the kubelet never SIGKILLs
// a pod still finishing requests.
func checkShutdown(t reporter, id string, c *corev1.Container, ps *corev1.PodSpec, env map[string]corev1.EnvVar) {
	raw := setting(c, env, "--drain", "BITNET_DRAIN")
	drain, err := time.ParseDuration(raw)
	if err != nil || drain != drainSeconds*time.Second {
		t.Errorf("%s: got drain %q (--drain or BITNET_DRAIN), want %ds: the router and kube-proxy need it to stop sending before the pod stops accepting", id, raw, drainSeconds)
	}
	var preStop int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		switch h := c.Lifecycle.PreStop; {
		case h.Sleep != nil:
			preStop = h.Sleep.Seconds
		default:
			t.Errorf("%s: preStop hook is not a sleep (the scratch image has no shell; the binary drains itself)", id)
		}
	}
	need := preStop + deregisterSeconds + int64(drain/time.Second) + shutdownSeconds
	if g := ps.TerminationGracePeriodSeconds; g == nil || *g <= need {
		t.Errorf("%s: got terminationGracePeriodSeconds %v, want > %d (preStop %d + deregister %d + drain %v + shutdown %d s)",
			id, g, need, preStop, deregisterSeconds, drain, shutdownSeconds)
	}
}

// checkIdentity: the discovery ID is unique per pod: the pod's name from
// the downward API, or the default SERVICE-IP-PORT (never spec.nodeName,
// which two pods on one node share).
func checkIdentity(t reporter, id string, c *corev1.Container, env map[string]corev1.EnvVar) {
	name := setting(c, env, "--node-name", "BITNET_NODE_NAME")
	if name == "" {
		return
	}
	ref, ok := strings.CutPrefix(name, "$(")
	ref, ok2 := strings.CutSuffix(ref, ")")
	e := env[ref]
	if !ok || !ok2 || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("%s: --node-name %q is not the pod's name (downward API metadata.name): discovery IDs must be unique per pod", id, name)
	}
}

// checkMemory: limits hold the memory budgets the flags set plus the
// overhead, requests are set, and in the sized overlays the inference
// budget holds the reference model's weights plus the KV cache of a full
// batch at its whole context (what the node checks before loading).
func checkMemory(t reporter, id, overlay string, c *corev1.Container, env map[string]corev1.EnvVar) {
	lim, okLim := c.Resources.Limits[corev1.ResourceMemory]
	req, okReq := c.Resources.Requests[corev1.ResourceMemory]
	if !okLim || !okReq {
		t.Errorf("%s: memory request and limit must both be set", id)
		return
	}
	if g := env["GOMEMLIMIT"].Value; g != "" {
		t.Errorf("%s: GOMEMLIMIT=%s: the binary sets it from the cgroup limit", id, g)
	}
	for _, b := range []struct{ flag, env string }{
		{"--memory-budget", "BITNET_MEMORY_BUDGET"}, {"--job-memory-budget", "BITNET_JOB_MEMORY_BUDGET"},
	} {
		raw := setting(c, env, b.flag, b.env)
		if raw == "" {
			continue // the default: a fraction of the cgroup limit
		}
		budget, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || budget <= 0 {
			t.Errorf("%s: %s %q: want a byte count", id, b.flag, raw)
			continue
		}
		if lim.Value() < budget+memOverhead {
			t.Errorf("%s: memory limit %s < %s %s + %s overhead", id, lim.String(), b.flag, model.FormatBytes(budget), model.FormatBytes(memOverhead))
		}
		if req.Value() < budget {
			t.Errorf("%s: memory request %s does not cover %s %s", id, req.String(), b.flag, model.FormatBytes(budget))
		}
		if b.flag != "--memory-budget" || overlay == "overlays/dev" {
			continue // dev serves small models
		}
		batch := inference.DefaultMaxBatch
		if v := setting(c, env, "--max-batch", "BITNET_MAX_BATCH"); v != "" {
			if batch, err = strconv.Atoi(v); err != nil {
				t.Errorf("%s: --max-batch %q: %v", id, v, err)
			}
		}
		need := refModel.ServeBytes() + refModel.KVBytes(model.KVFloat16, batch, refModel.MaxPositions)
		if budget < need {
			t.Errorf("%s: --memory-budget %s cannot load the reference model: %s weights + %d x %d-token KV = %s",
				id, model.FormatBytes(budget), model.FormatBytes(refModel.ServeBytes()), batch, refModel.MaxPositions, model.FormatBytes(need))
		}
	}
}

// checkAutoscaling: an HPA on an inference pool scales on the per-pod
// queue depth (the Prometheus adapter's custom metric), and a Deployment
// an HPA owns sets no replicas (an apply would reset the count).
func checkAutoscaling(t reporter, m *manifests) {
	owned := map[string]bool{}
	for _, h := range m.hpas {
		owned[h.Spec.ScaleTargetRef.Name] = true
	}
	for _, d := range m.deployments {
		if owned[d.Name] && d.Spec.Replicas != nil {
			t.Errorf("Deployment %s: sets replicas %d, but an HPA owns the count", d.Name, *d.Spec.Replicas)
		}
		if d.Spec.Template.Labels["app.kubernetes.io/component"] != "inference" || !owned[d.Name] {
			continue
		}
		for _, h := range m.hpas {
			if h.Spec.ScaleTargetRef.Name == d.Name && !scalesOnQueue(h) {
				t.Errorf("HPA %s: want a Pods metric %s with an AverageValue target (queue depth per pod)", h.Name, queueMetric)
			}
		}
	}
}

func scalesOnQueue(h *autoscalingv2.HorizontalPodAutoscaler) bool {
	for _, ms := range h.Spec.Metrics {
		if ms.Type == autoscalingv2.PodsMetricSourceType && ms.Pods != nil && ms.Pods.Metric.Name == queueMetric &&
			ms.Pods.Target.Type == autoscalingv2.AverageValueMetricType && ms.Pods.Target.AverageValue != nil &&
			ms.Pods.Target.AverageValue.Cmp(resource.MustParse("0")) > 0 {
			return true
		}
	}
	return false
}

// TestInferenceHPA: the autoscaling overlay scales every inference pool on
// queue depth, and the adapter rule it ships serves that metric.
func TestInferenceHPA(t *testing.T) {
	m := render(t, "monitoring/hpa")
	for name := range pools {
		found := false
		for _, h := range m.hpas {
			found = found || h.Spec.ScaleTargetRef.Name == "bitnet-inference-"+name && scalesOnQueue(h)
		}
		if !found {
			t.Errorf("pool %s: no HPA on %s", name, queueMetric)
		}
	}
	b, err := os.ReadFile("monitoring/hpa/prometheus-adapter-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Rules struct {
			Custom []struct {
				SeriesQuery string `json:"seriesQuery"`
				Resources   struct {
					Overrides map[string]struct {
						Resource string `json:"resource"`
					} `json:"overrides"`
				} `json:"resources"`
				Name struct {
					Matches string `json:"matches"`
					As      string `json:"as"`
				} `json:"name"`
			} `json:"custom"`
		} `json:"rules"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil { // other keys are the chart's
		t.Fatal(err)
	}
	served := false
	for _, r := range values.Rules.Custom {
		if r.Name.As == queueMetric && strings.HasPrefix(r.SeriesQuery, queueSeries+"{") && r.Name.Matches == "^"+regexp.QuoteMeta(queueSeries)+"$" &&
			r.Resources.Overrides["pod"].Resource == "pod" && r.Resources.Overrides["namespace"].Resource == "namespace" {
			served = true
		}
	}
	if !served {
		t.Errorf("prometheus-adapter-values.yaml: no rule serving %s per pod and namespace as %s", queueSeries, queueMetric)
	}
}
