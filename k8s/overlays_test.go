package k8s

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestOverlayDifferences checks what each overlay promises: dev runs one
// of everything (Tilt), prod runs a three-server Consul quorum and the
// released image.
func TestOverlayDifferences(t *testing.T) {
	tests := []struct {
		overlay     string
		consul      int32
		router      int32
		inference   int32
		imagePrefix string
	}{
		{"overlays/dev", 1, 1, 1, "bitnet:dev"},
		{"overlays/prod", 3, 3, 2, "ghcr.io/bitnet-mesh/bitnet:"},
	}
	for _, tt := range tests {
		t.Run(tt.overlay, func(t *testing.T) {
			m := render(t, tt.overlay)
			for _, w := range m.workloads() {
				want := int32(1)
				switch {
				case w.name == "consul-server":
					want = tt.consul
				case w.name == "bitnet-router":
					want = 0 // unset: the HPA owns it
				case strings.HasPrefix(w.name, "bitnet-inference-"):
					want = tt.inference
				}
				switch {
				case want == 0 && w.replicas != nil:
					t.Errorf("%s %s: got replicas %d, want none (the HPA owns it)", w.kind, w.name, *w.replicas)
				case want != 0 && (w.replicas == nil || *w.replicas != want):
					t.Errorf("%s %s: got replicas %v, want %d", w.kind, w.name, w.replicas, want)
				}
				for _, c := range w.tmpl.Spec.Containers {
					if isBitnet(&c) && !strings.HasPrefix(c.Image, tt.imagePrefix) {
						t.Errorf("%s %s: got image %q, want prefix %q", w.kind, w.name, c.Image, tt.imagePrefix)
					}
				}
				if w.name != "consul-server" {
					continue
				}
				c := w.tmpl.Spec.Containers[0]
				if !slices.Contains(c.Args, "-bootstrap-expect=$(CONSUL_BOOTSTRAP_EXPECT)") {
					t.Errorf("consul args %q lack -bootstrap-expect=$(CONSUL_BOOTSTRAP_EXPECT)", c.Args)
				}
				for _, e := range c.Env {
					if e.Name == "CONSUL_BOOTSTRAP_EXPECT" && e.Value != fmt.Sprint(tt.consul) {
						t.Errorf("got CONSUL_BOOTSTRAP_EXPECT %q, want %d (the replica count)", e.Value, tt.consul)
					}
				}
				for i := range tt.consul {
					join := fmt.Sprintf("-retry-join=consul-server-%d.consul-server.$(POD_NAMESPACE).svc", i)
					if !slices.Contains(c.Args, join) {
						t.Errorf("consul args lack %s", join)
					}
				}
			}
			for _, h := range m.hpas {
				if *h.Spec.MinReplicas != tt.router {
					t.Errorf("HPA %s: got minReplicas %d, want %d (the router's replicas)", h.Name, *h.Spec.MinReplicas, tt.router)
				}
			}
		})
	}
}
