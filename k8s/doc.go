// Package k8s holds the Kubernetes deployment of the bitnet mesh: a
// kustomize base (base/) with dev and prod overlays (overlays/), and the
// tests that render every overlay, decode each object strictly into its
// k8s.io/api type and check the deployment policies (probes, resources,
// security contexts, selectors, ports, one inference pool per CPU family),
// plus a test that runs the repository's Tiltfile against stubbed Tilt
// builtins. The package has no code outside its tests.
package k8s
