package k8s

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The binary's contract (issue 4 / the H19 brief).
const (
	grpcPort      = 50051
	httpPort      = 8080
	nonRootUID    = 65532
	drainSeconds  = 10 // SIGTERM -> NOT_SERVING, then drain
	hardStopTotal = 20 // GracefulStop hard deadline, counted from SIGTERM
	namespace     = "bitnet"
	nfdAVX512F    = "feature.node.kubernetes.io/cpu-cpuid.AVX512F"
	nfdAVX2       = "feature.node.kubernetes.io/cpu-cpuid.AVX2"
	archLabel     = "kubernetes.io/arch"
)

var services = []string{"registry", "quantizer", "inference", "router", "trainer"}

// reporter is the part of testing.T the policy checks use, so a test can
// count the violations they find in deliberately broken manifests.
type reporter interface {
	Errorf(format string, args ...any)
}

// workload is a pod template with the object that owns it.
type workload struct {
	kind, name string
	selector   *metav1.LabelSelector
	replicas   *int32
	tmpl       *corev1.PodTemplateSpec
	claims     []string // StatefulSet volumeClaimTemplates
	rwoClaims  []string // those whose only access mode is ReadWriteOnce(Pod)
}

func (m *manifests) workloads() []workload {
	var ws []workload
	for _, d := range m.deployments {
		ws = append(ws, workload{"Deployment", d.Name, d.Spec.Selector, d.Spec.Replicas, &d.Spec.Template, nil, nil})
	}
	for _, s := range m.statefulSets {
		var claims, rwo []string
		for _, c := range s.Spec.VolumeClaimTemplates {
			claims = append(claims, c.Name)
			if m := c.Spec.AccessModes; len(m) == 1 && (m[0] == corev1.ReadWriteOnce || m[0] == corev1.ReadWriteOncePod) {
				rwo = append(rwo, c.Name)
			}
		}
		ws = append(ws, workload{"StatefulSet", s.Name, s.Spec.Selector, s.Spec.Replicas, &s.Spec.Template, claims, rwo})
	}
	return ws
}

// isBitnet reports whether c runs the bitnet binary.
func isBitnet(c *corev1.Container) bool {
	return strings.Contains(c.Image, "bitnet")
}

func TestPolicies(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			checkAll(t, render(t, dir))
		})
	}
}

func checkAll(t reporter, m *manifests) {
	checkNamespaces(t, m)
	checkWorkloads(t, m)
	checkServices(t, m)
	checkInferencePools(t, m)
	checkScaling(t, m)
	checkNetworkPolicies(t, m)
	checkOps(t, m)
}

func checkNamespaces(t reporter, m *manifests) {
	for _, s := range m.services {
		if s.Namespace != namespace {
			t.Errorf("Service %s: got namespace %q, want %q", s.Name, s.Namespace, namespace)
		}
	}
	for _, w := range m.workloads() {
		if w.tmpl.Namespace != "" {
			t.Errorf("%s %s: pod template sets a namespace", w.kind, w.name)
		}
	}
}

func checkWorkloads(t reporter, m *manifests) {
	seen := map[string]bool{}
	for _, w := range m.workloads() {
		id := w.kind + " " + w.name
		sel, err := metav1.LabelSelectorAsSelector(w.selector)
		if err != nil || w.selector == nil || sel.Empty() {
			t.Errorf("%s: bad or empty selector %v: %v", id, w.selector, err)
		} else if !sel.Matches(labels.Set(w.tmpl.Labels)) {
			t.Errorf("%s: selector %s does not match pod labels %v", id, sel, w.tmpl.Labels)
		}
		ps := &w.tmpl.Spec
		checkPodSecurity(t, id, ps)
		vols := map[string]bool{}
		for _, v := range ps.Volumes {
			vols[v.Name] = true
		}
		for _, c := range w.claims {
			vols[c] = true
		}
		if len(ps.Containers) == 0 {
			t.Errorf("%s: no containers", id)
		}
		for i := range ps.Containers {
			c := &ps.Containers[i]
			cid := id + " container " + c.Name
			checkContainer(t, cid, c, ps)
			for _, vm := range c.VolumeMounts {
				if !vols[vm.Name] {
					t.Errorf("%s: mounts %q, which no volume or claim template provides", cid, vm.Name)
				}
			}
			if isBitnet(c) {
				svc := checkBitnetContainer(t, cid, c, ps)
				seen[svc] = true
				if store, ok := stores[svc]; ok {
					checkStore(t, w, cid, c, store)
				}
			}
		}
	}
	for _, s := range services {
		if !seen[s] {
			t.Errorf("no workload runs `bitnet serve %s`", s)
		}
	}
}

// stores are the services that keep state under --data, each with the
// path of its store there (services/mesh: DATA/registry/registry.db, the
// registry's database; DATA/work/SERVICE/jobs.db, the quantizer's and the
// trainer's job stores, beside their jobs' work files).
var stores = map[string]string{
	"registry":  "registry/registry.db",
	"quantizer": "work/quantizer/jobs.db",
	"trainer":   "work/trainer/jobs.db",
}

// checkStore: a service's store survives a new pod (rolling update,
// eviction, node drain), not only a container restart: the volume that
// holds it (the deepest mount above it) is a ReadWriteOnce claim from the
// StatefulSet's volume claim templates, never an emptyDir. A StatefulSet's
// update removes the old pod before the new one mounts the volume, and its
// scaling gives each pod its own claim (a Deployment's rolling update
// would start the new pod first and leave it waiting on the volume, or on
// the bbolt lock, while the old one runs).
func checkStore(t reporter, w workload, id string, c *corev1.Container, store string) {
	data := flagValue(c.Args, "--data")
	if data == "" {
		return // checkBitnetContainer reports it
	}
	file := path.Join(data, store)
	if w.kind != "StatefulSet" {
		t.Errorf("%s: keeps its store %s in a %s: want a StatefulSet with a volume claim template", id, file, w.kind)
	}
	vm := mountOf(c, file)
	switch {
	case vm == nil:
		t.Errorf("%s: store %s is on the container's root filesystem: want a PersistentVolumeClaim at --data %s", id, file, data)
	case !slices.Contains(w.claims, vm.Name):
		what := "a volume that is not a PersistentVolumeClaim"
		for _, v := range w.tmpl.Spec.Volumes {
			switch {
			case v.Name != vm.Name:
			case v.EmptyDir != nil:
				what = "an emptyDir, lost when the pod is replaced"
			case v.PersistentVolumeClaim != nil:
				what = "one claim for every pod of the workload"
			}
		}
		t.Errorf("%s: store %s is on volume %q at %s, %s: want a volume claim template (ReadWriteOnce)", id, file, vm.Name, vm.MountPath, what)
	case !slices.Contains(w.rwoClaims, vm.Name):
		t.Errorf("%s: volume claim template %q holding %s is not ReadWriteOnce: the store has one writer", id, vm.Name, file)
	}
}

// mountOf returns c's mount that holds file: the one with the longest
// mount path above it (nil when none: the root filesystem).
func mountOf(c *corev1.Container, file string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		mp := path.Clean(vm.MountPath)
		if file != mp && !strings.HasPrefix(file, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if best == nil || len(mp) > len(path.Clean(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	return best
}

func checkPodSecurity(t reporter, id string, ps *corev1.PodSpec) {
	sc := ps.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", id)
	}
	if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", id)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken is not false (no pod needs the API)", id)
	}
	if g := ps.TerminationGracePeriodSeconds; g == nil || *g <= hardStopTotal || *g < 30 {
		t.Errorf("%s: got terminationGracePeriodSeconds %v, want >= 30 (> %d s drain, %d s hard stop)", id, g, drainSeconds, hardStopTotal)
	}
}

func checkContainer(t reporter, id string, c *corev1.Container, ps *corev1.PodSpec) {
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("%s: no securityContext", id)
	default:
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", id)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", id)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
			t.Errorf("%s: got capabilities %+v, want drop [ALL] and no add", id, sc.Capabilities)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", id)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("%s: %s request %v / limit %v: want both", id, r, okReq, okLim)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s > limit %s", id, r, req.String(), lim.String())
		}
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Errorf("%s: want readiness and liveness probes, got %v / %v", id, c.ReadinessProbe != nil, c.LivenessProbe != nil)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if p != nil {
			checkProbe(t, id+" "+name+"Probe", p, c)
		}
	}
	if !hasMount(c, "/tmp") {
		t.Errorf("%s: no volume at /tmp (read-only root filesystem)", id)
	}
}

func checkProbe(t reporter, id string, p *corev1.Probe, c *corev1.Container) {
	switch {
	case p.GRPC != nil:
		if !containerPort(c, intstr.FromInt32(p.GRPC.Port)) {
			t.Errorf("%s: gRPC port %d is not a container port", id, p.GRPC.Port)
		}
	case p.HTTPGet != nil:
		if !containerPort(c, p.HTTPGet.Port) {
			t.Errorf("%s: HTTP port %s is not a container port", id, p.HTTPGet.Port.String())
		}
	case p.TCPSocket != nil:
		if !containerPort(c, p.TCPSocket.Port) {
			t.Errorf("%s: TCP port %s is not a container port", id, p.TCPSocket.Port.String())
		}
	default:
		t.Errorf("%s: want a grpc, httpGet or tcpSocket probe", id)
	}
}

// containerPort reports whether port (number or name) is one of c's TCP ports.
func containerPort(c *corev1.Container, port intstr.IntOrString) bool {
	for _, p := range c.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if port.Type == intstr.Int && p.ContainerPort == port.IntVal ||
			port.Type == intstr.String && port.StrVal != "" && p.Name == port.StrVal {
			return true
		}
	}
	return false
}

func hasMount(c *corev1.Container, path string) bool {
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == path && !vm.ReadOnly {
			return true
		}
	}
	return false
}

// flagValue returns the argument after name in args, or "".
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// checkBitnetContainer checks the binary's contract and returns the
// service the container serves.
func checkBitnetContainer(t reporter, id string, c *corev1.Container, ps *corev1.PodSpec) string {
	if len(c.Command) != 0 {
		t.Errorf("%s: sets command %q; the image's entrypoint is /bitnet", id, c.Command)
	}
	if len(c.Args) < 2 || c.Args[0] != "serve" || !slices.Contains(services, c.Args[1]) {
		t.Errorf("%s: got args %q, want serve <%s> ...", id, c.Args, strings.Join(services, "|"))
		return ""
	}
	svc := c.Args[1]
	want := map[string]string{"--grpc": ":50051", "--http": ":8080", "--advertise": "$(POD_IP)"}
	for f, v := range want {
		if got := flagValue(c.Args, f); got != v {
			t.Errorf("%s: got %s %q, want %q", id, f, got, v)
		}
	}
	if d := flagValue(c.Args, "--data"); d != "" && !hasMount(c, d) {
		t.Errorf("%s: --data %s has no writable volume", id, d)
	}
	if svc != "router" && flagValue(c.Args, "--data") == "" {
		t.Errorf("%s: %s needs --data on a volume", id, svc)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env["POD_IP"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "status.podIP" {
		t.Errorf("%s: POD_IP is not the downward API's status.podIP", id)
	}
	if e := env["CONSUL_HTTP_ADDR"]; e.Value != "consul:8500" {
		t.Errorf("%s: got CONSUL_HTTP_ADDR %q, want consul:8500", id, e.Value)
	}
	for _, port := range []int32{grpcPort, httpPort} {
		if !containerPort(c, intstr.FromInt32(port)) {
			t.Errorf("%s: no container port %d", id, port)
		}
	}
	// The listeners serve TLS, which the kubelet's gRPC probes cannot speak:
	// HTTPS probes of /readyz (NOT_SERVING while draining) and /healthz.
	for name, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}} {
		p := want.p
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.IntValue() != httpPort || p.HTTPGet.Scheme != corev1.URISchemeHTTPS || p.HTTPGet.Path != want.path {
			t.Errorf("%s: %s probe is not an HTTPS GET of %s on %d", id, name, want.path, httpPort)
		}
	}
	checkAccess(t, id, svc, c, ps, env)
	run := c.SecurityContext.RunAsUser
	if run == nil && ps.SecurityContext != nil {
		run = ps.SecurityContext.RunAsUser
	}
	if run == nil || *run != nonRootUID {
		t.Errorf("%s: got runAsUser %v, want %d", id, run, nonRootUID)
	}
	return svc
}

func checkServices(t reporter, m *manifests) {
	ws := m.workloads()
	names := map[string]*corev1.Service{}
	for _, s := range m.services {
		names[s.Name] = s
		if len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s: no selector", s.Name)
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var pods []*corev1.PodSpec
		for _, w := range ws {
			if sel.Matches(labels.Set(w.tmpl.Labels)) {
				pods = append(pods, &w.tmpl.Spec)
			}
		}
		if len(pods) == 0 {
			t.Errorf("Service %s: selector %v matches no pod template", s.Name, s.Spec.Selector)
		}
		for _, sp := range s.Spec.Ports {
			for _, ps := range pods {
				if !podPort(ps, sp.TargetPort, sp.Port, sp.Protocol) {
					t.Errorf("Service %s port %s: target %s/%s is not a container port", s.Name, sp.Name, sp.TargetPort.String(), sp.Protocol)
				}
			}
		}
	}
	for _, s := range m.statefulSets {
		gov := names[s.Spec.ServiceName]
		if gov == nil || gov.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("StatefulSet %s: serviceName %q is not a headless Service", s.Name, s.Spec.ServiceName)
		}
	}
	r := names["bitnet-router"]
	if r == nil {
		t.Errorf("no bitnet-router Service")
		return
	}
	var ports []int32
	for _, p := range r.Spec.Ports {
		ports = append(ports, p.Port)
	}
	if !slices.Contains(ports, grpcPort) || !slices.Contains(ports, httpPort) {
		t.Errorf("Service bitnet-router: got ports %v, want %d and %d", ports, grpcPort, httpPort)
	}
	for _, p := range r.Spec.Ports {
		if p.Port == metricsPort || p.TargetPort.IntValue() == metricsPort || p.TargetPort.StrVal == "metrics" {
			t.Errorf("Service bitnet-router exposes the metrics port %s: keep /metrics off the public Service", p.Name)
		}
	}
	if c := names["consul"]; c == nil || len(c.Spec.Ports) != 1 || c.Spec.Ports[0].Port != 8500 {
		t.Errorf("want Service consul on port 8500 (CONSUL_HTTP_ADDR=consul:8500)")
	}
}

func podPort(ps *corev1.PodSpec, target intstr.IntOrString, port int32, proto corev1.Protocol) bool {
	if target.Type == intstr.Int && target.IntVal == 0 {
		target = intstr.FromInt32(port)
	}
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, c := range ps.Containers {
		for _, p := range c.Ports {
			pp := p.Protocol
			if pp == "" {
				pp = corev1.ProtocolTCP
			}
			if pp != proto {
				continue
			}
			if target.Type == intstr.Int && p.ContainerPort == target.IntVal ||
				target.Type == intstr.String && p.Name == target.StrVal {
				return true
			}
		}
	}
	return false
}

// pool is what each CPU family's inference Deployment must look like.
type pool struct {
	kernel   string
	arch     string
	require  string // NFD label that must be "true"
	excludes string // NFD label that must be absent
}

var pools = map[string]pool{
	"avx512": {kernel: "avx512", arch: "amd64", require: nfdAVX512F},
	"avx2":   {kernel: "avx2", arch: "amd64", require: nfdAVX2, excludes: nfdAVX512F},
	"arm64":  {kernel: "neon", arch: "arm64"},
}

func checkInferencePools(t reporter, m *manifests) {
	found := map[string]int{}
	for _, d := range m.deployments {
		if d.Spec.Template.Labels["app.kubernetes.io/component"] != "inference" {
			continue
		}
		id := "Deployment " + d.Name
		name := d.Spec.Template.Labels["bitnet.dev/pool"]
		want, ok := pools[name]
		if !ok {
			t.Errorf("%s: unknown pool label %q", id, name)
			continue
		}
		found[name]++
		ps := &d.Spec.Template.Spec
		if got := ps.NodeSelector[archLabel]; got != want.arch {
			t.Errorf("%s: got nodeSelector %s=%q, want %q", id, archLabel, got, want.arch)
		}
		if want.require != "" && ps.NodeSelector[want.require] != "true" {
			t.Errorf("%s: nodeSelector lacks %s: \"true\"", id, want.require)
		}
		if want.excludes != "" && !excludesLabel(ps.Affinity, want.excludes) {
			t.Errorf("%s: node affinity does not exclude nodes with %s", id, want.excludes)
		}
		if want.excludes == "" && ps.Affinity != nil && ps.Affinity.NodeAffinity != nil {
			t.Errorf("%s: unexpected node affinity", id)
		}
		c := &ps.Containers[0]
		if got := flagValue(c.Args, "--kernel"); got != want.kernel {
			t.Errorf("%s: got --kernel %q, want %q", id, got, want.kernel)
		}
		cpu := c.Resources.Limits[corev1.ResourceCPU]
		threads, err := strconv.ParseInt(flagValue(c.Args, "--threads"), 10, 64)
		if err != nil || cpu.MilliValue() != threads*1000 {
			t.Errorf("%s: got --threads %q, want the CPU limit %s (whole cores)", id, flagValue(c.Args, "--threads"), cpu.String())
		}
		// checkMemory holds the budget against the limits and the model.
		if budget, err := strconv.ParseInt(flagValue(c.Args, "--memory-budget"), 10, 64); err != nil || budget <= 0 {
			t.Errorf("%s: got --memory-budget %q, want a byte count (weights + KV for --max-batch full-context sequences)", id, flagValue(c.Args, "--memory-budget"))
		}
	}
	for name := range pools {
		if found[name] != 1 {
			t.Errorf("got %d inference Deployments for pool %s, want 1", found[name], name)
		}
	}
}

// excludesLabel reports whether every required node selector term keeps
// nodes carrying key (DoesNotExist, or NotIn ["true"]).
func excludesLabel(a *corev1.Affinity, key string) bool {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return false
	}
	for _, term := range terms {
		ok := false
		for _, e := range term.MatchExpressions {
			if e.Key == key && (e.Operator == corev1.NodeSelectorOpDoesNotExist ||
				e.Operator == corev1.NodeSelectorOpNotIn && slices.Contains(e.Values, "true")) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func checkScaling(t reporter, m *manifests) {
	deps := map[string]labels.Set{}
	for _, d := range m.deployments {
		deps[d.Name] = labels.Set(d.Spec.Template.Labels)
	}
	sts := map[string]labels.Set{}
	for _, s := range m.statefulSets {
		sts[s.Name] = labels.Set(s.Spec.Template.Labels)
	}
	for _, h := range m.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || deps[ref.Name] == nil {
			t.Errorf("HPA %s: target %s %s/%s is not a Deployment here", h.Name, ref.APIVersion, ref.Kind, ref.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HPA %s: got min %v max %d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
	for _, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("PDB %s: bad selector: %v", p.Name, err)
			continue
		}
		n := 0
		for _, set := range []map[string]labels.Set{deps, sts} {
			for _, l := range set {
				if sel.Matches(l) {
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("PDB %s: selector %s matches no workload", p.Name, sel)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PDB %s: want exactly one of minAvailable and maxUnavailable", p.Name)
		}
	}
	hasHPA, hasPDB := false, false
	for _, h := range m.hpas {
		hasHPA = hasHPA || h.Spec.ScaleTargetRef.Name == "bitnet-router"
	}
	for _, p := range m.pdbs {
		hasPDB = hasPDB || p.Name == "bitnet-router"
	}
	if !hasHPA || !hasPDB {
		t.Errorf("router: HPA %v, PDB %v; want both", hasHPA, hasPDB)
	}
}

func checkNetworkPolicies(t reporter, m *manifests) {
	var deny, dns bool
	ingress := map[string]bool{} // component -> selected by an ingress policy
	for _, np := range m.netpols {
		s := np.Spec
		sel, err := metav1.LabelSelectorAsSelector(&s.PodSelector)
		if err != nil {
			t.Errorf("NetworkPolicy %s: %v", np.Name, err)
			continue
		}
		types := map[string]bool{}
		for _, pt := range s.PolicyTypes {
			types[string(pt)] = true
		}
		if sel.Empty() && types["Ingress"] && types["Egress"] && len(s.Ingress) == 0 && len(s.Egress) == 0 {
			deny = true
		}
		for _, e := range s.Egress {
			for _, p := range e.Ports {
				if p.Port != nil && p.Port.IntVal == 53 {
					dns = true
				}
			}
		}
		if types["Ingress"] && len(s.Ingress) > 0 {
			for _, c := range append(services, "consul") {
				if !sel.Empty() && sel.Matches(labels.Set{"app.kubernetes.io/component": c}) {
					ingress[c] = true
				}
			}
		}
	}
	if !deny {
		t.Errorf("no default-deny NetworkPolicy (empty podSelector, Ingress+Egress, no rules)")
	}
	if !dns {
		t.Errorf("no NetworkPolicy allows DNS egress (port 53)")
	}
	for _, c := range append(services, "consul") {
		if !ingress[c] {
			t.Errorf("component %s: no NetworkPolicy admits ingress to it", c)
		}
	}
	for _, w := range m.workloads() {
		if w.tmpl.Labels["app.kubernetes.io/component"] == "" {
			t.Errorf("%s %s: pod has no app.kubernetes.io/component label for the NetworkPolicies", w.kind, w.name)
		}
	}
}

// Access control every bitnet container must have (issue 10): API keys,
// TLS from a Secret, mTLS between services (the router, the front door,
// takes key holders without client certificates), reflection off and
// /metrics off the public ports.
const (
	tlsDir      = "/etc/bitnet/tls"
	tlsSecret   = "bitnet-tls"
	metricsPort = 9090
)

func checkAccess(t reporter, id, svc string, c *corev1.Container, ps *corev1.PodSpec, env map[string]corev1.EnvVar) {
	want := map[string]string{
		"BITNET_AUTH":            "true",
		"BITNET_TLS_CERT":        tlsDir + "/tls.crt",
		"BITNET_TLS_KEY":         tlsDir + "/tls.key",
		"BITNET_TLS_CA":          tlsDir + "/ca.crt",
		"BITNET_TLS_SERVER_NAME": "bitnet-mesh",
		"BITNET_REFLECTION":      "false",
		"BITNET_METRICS_ADDR":    fmt.Sprintf(":%d", metricsPort),
	}
	if svc != "router" {
		want["BITNET_TLS_CLIENT_CA"] = tlsDir + "/ca.crt"
	}
	for k, v := range want {
		if got := env[k].Value; got != v {
			t.Errorf("%s: got %s=%q, want %q", id, k, got, v)
		}
	}
	if e, ok := env["BITNET_INSECURE"]; ok && e.Value != "false" {
		t.Errorf("%s: BITNET_INSECURE=%q: no deployment serves without authentication", id, e.Value)
	}
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--insecure") || strings.HasPrefix(a, "--auth=false") || strings.HasPrefix(a, "--reflection=true") {
			t.Errorf("%s: argument %s weakens access control", id, a)
		}
	}
	var mounted bool
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != tlsDir {
			continue
		}
		for _, v := range ps.Volumes {
			if v.Name == vm.Name && v.Secret != nil && v.Secret.SecretName == tlsSecret && (v.Secret.Optional == nil || !*v.Secret.Optional) {
				mounted = vm.ReadOnly
			}
		}
	}
	if !mounted {
		t.Errorf("%s: %s is not a read-only mount of the Secret %s (required)", id, tlsDir, tlsSecret)
	}
	if !containerPort(c, intstr.FromInt32(metricsPort)) {
		t.Errorf("%s: no container port %d for /metrics", id, metricsPort)
	}
}
