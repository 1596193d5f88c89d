package k8s

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from the current manifests")

// overlays are the kustomizations users apply; each must render and pass
// every policy.
var overlays = []string{"overlays/dev", "overlays/prod", "monitoring/hpa"}

// manifests is one rendered overlay, each object decoded into its type.
type manifests struct {
	overlay      string
	namespaces   []*corev1.Namespace
	services     []*corev1.Service
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	pdbs         []*policyv1.PodDisruptionBudget
	netpols      []*networkingv1.NetworkPolicy
	yaml         []byte // what `kubectl kustomize` prints
}

// kinds maps each kind the manifests may hold to its apiVersion and a
// decoder appending to manifests; any other kind is an error.
var kinds = map[string]struct {
	apiVersion string
	add        func(m *manifests, js []byte) error
}{
	"Namespace": {"v1", func(m *manifests, js []byte) error {
		return decodeInto(js, &m.namespaces)
	}},
	"Service": {"v1", func(m *manifests, js []byte) error {
		return decodeInto(js, &m.services)
	}},
	"Deployment": {"apps/v1", func(m *manifests, js []byte) error {
		return decodeInto(js, &m.deployments)
	}},
	"StatefulSet": {"apps/v1", func(m *manifests, js []byte) error {
		return decodeInto(js, &m.statefulSets)
	}},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func(m *manifests, js []byte) error {
		return decodeInto(js, &m.hpas)
	}},
	"PodDisruptionBudget": {"policy/v1", func(m *manifests, js []byte) error {
		return decodeInto(js, &m.pdbs)
	}},
	"NetworkPolicy": {"networking.k8s.io/v1", func(m *manifests, js []byte) error {
		return decodeInto(js, &m.netpols)
	}},
}

// decodeInto decodes js strictly (unknown fields are errors) into a new T
// and appends it to *dst.
func decodeInto[T any](js []byte, dst *[]*T) error {
	v := new(T)
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	*dst = append(*dst, v)
	return nil
}

// render runs kustomize on dir (relative to this package) and decodes
// every object strictly.
func render(t *testing.T, dir string) *manifests {
	t.Helper()
	return build(t, dir).decode(t)
}

// built is one overlay's kustomize output: each object as JSON.
type built struct {
	dir     string
	kinds   []string // "Kind/name" of each object, in order
	objects [][]byte
	yaml    []byte
}

func build(t *testing.T, dir string) *built {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	if rm.Size() == 0 {
		t.Fatalf("kustomize build %s: no objects", dir)
	}
	b := &built{dir: dir}
	if b.yaml, err = rm.AsYaml(); err != nil {
		t.Fatalf("kustomize build %s: to YAML: %v", dir, err)
	}
	for _, r := range rm.Resources() {
		kind, name := r.GetKind(), r.GetName()
		if spec, ok := kinds[kind]; ok && r.GetApiVersion() != spec.apiVersion {
			t.Errorf("%s: %s/%s: got apiVersion %s, want %s", dir, kind, name, r.GetApiVersion(), spec.apiVersion)
		}
		js, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %s/%s: to JSON: %v", dir, kind, name, err)
		}
		b.kinds = append(b.kinds, kind+"/"+name)
		b.objects = append(b.objects, js)
	}
	return b
}

// decode returns fresh typed objects (callers may modify them).
func (b *built) decode(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{overlay: b.dir, yaml: b.yaml}
	for i, js := range b.objects {
		kind, _, _ := strings.Cut(b.kinds[i], "/")
		spec, ok := kinds[kind]
		if !ok {
			t.Errorf("%s: %s: kind not expected in the mesh manifests", b.dir, b.kinds[i])
			continue
		}
		if err := spec.add(m, js); err != nil {
			t.Errorf("%s: %s: strict decode: %v", b.dir, b.kinds[i], err)
		}
	}
	return m
}

// TestStrictDecodeRejectsUnknownFields guards the decoder itself: a typo
// in a manifest must fail, not vanish.
func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	tests := []struct {
		js      string
		wantErr bool
	}{
		{`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a"}}`, false},
		{`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a"},"spec":{"replica":1}}`, true},
		{`{"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"c","args":[4]}]}}}}`, true},
	}
	for _, tt := range tests {
		var ds []*appsv1.Deployment
		err := decodeInto([]byte(tt.js), &ds)
		if (err != nil) != tt.wantErr {
			t.Errorf("decode %s: got err %v, want error %v", tt.js, err, tt.wantErr)
		}
	}
}

func TestOverlaysRender(t *testing.T) {
	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			m := render(t, dir)
			if len(m.namespaces) != 1 {
				t.Errorf("got %d namespaces, want 1", len(m.namespaces))
			}
		})
	}
}

// TestGolden keeps the rendered output of each overlay under testdata so a
// review shows what a manifest change does to the applied objects.
func TestGolden(t *testing.T) {
	for _, dir := range overlays {
		m := render(t, dir)
		golden := filepath.Join("testdata", strings.ReplaceAll(strings.TrimPrefix(dir, "overlays/"), "/", "-")+".golden.yaml")
		if *update {
			if err := os.WriteFile(golden, m.yaml, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./k8s -run TestGolden -update)", err)
		}
		if !bytes.Equal(m.yaml, want) {
			t.Errorf("%s: rendered output differs from %s; run go test ./k8s -run TestGolden -update and review the diff", dir, golden)
		}
	}
}
