package k8s

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// repoRoot is where the Tiltfile lives and its paths are relative to.
const repoRoot = ".."

// tilt records what the Tiltfile asked of Tilt's builtins.
type tilt struct {
	paths        []string // every file path named (deps, kustomize dirs, ...)
	builds       map[string]string
	kustomized   []string
	applied      int
	resources    map[string][]string // workload -> port forwards
	resourceDeps []string
	// localResources maps a local_resource's name to its command (run by
	// Tilt when the resource starts, not at load).
	localResources map[string]string
}

// builtins returns stubs for the Tilt builtins the Tiltfile may call;
// calling any other name fails the execution (undefined).
func (tl *tilt) builtins() starlark.StringDict {
	fn := func(name string, f func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
		return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return f(args, kwargs)
		})
	}
	return starlark.StringDict{
		"update_settings": fn("update_settings", func(_ starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return starlark.None, nil
		}),
		"custom_build": fn("custom_build", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var ref, command string
			var deps, ignore *starlark.List
			var skips, disablePush bool
			if err := starlark.UnpackArgs("custom_build", args, kwargs, "ref", &ref, "command", &command,
				"deps", &deps, "ignore?", &ignore, "skips_local_docker?", &skips, "disable_push?", &disablePush); err != nil {
				return nil, err
			}
			ds, err := strings_(deps)
			if err != nil {
				return nil, err
			}
			if !skips {
				return nil, fmt.Errorf("custom_build %s: want skips_local_docker=True (no Docker daemon)", ref)
			}
			tl.paths = append(tl.paths, ds...)
			tl.builds[ref] = command
			return starlark.None, nil
		}),
		"kustomize": fn("kustomize", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var dir string
			if err := starlark.UnpackPositionalArgs("kustomize", args, kwargs, 1, &dir); err != nil {
				return nil, err
			}
			tl.paths = append(tl.paths, dir)
			tl.kustomized = append(tl.kustomized, dir)
			return starlark.String("# kustomize " + dir), nil
		}),
		"k8s_yaml": fn("k8s_yaml", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var y starlark.Value
			if err := starlark.UnpackPositionalArgs("k8s_yaml", args, kwargs, 1, &y); err != nil {
				return nil, err
			}
			if s, ok := y.(starlark.String); ok && !strings.HasPrefix(string(s), "# kustomize ") {
				tl.paths = append(tl.paths, string(s)) // a file name
			}
			tl.applied++
			return starlark.None, nil
		}),
		"k8s_resource": fn("k8s_resource", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var workload string
			var forwards, deps, labels *starlark.List
			if err := starlark.UnpackArgs("k8s_resource", args, kwargs, "workload", &workload,
				"port_forwards?", &forwards, "resource_deps?", &deps, "labels?", &labels); err != nil {
				return nil, err
			}
			fs, err := strings_(forwards)
			if err != nil {
				return nil, err
			}
			rd, err := strings_(deps)
			if err != nil {
				return nil, err
			}
			tl.resources[workload] = fs
			tl.resourceDeps = append(tl.resourceDeps, rd...)
			return starlark.None, nil
		}),
		"local_resource": fn("local_resource", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var name, cmd string
			var labels *starlark.List
			if err := starlark.UnpackArgs("local_resource", args, kwargs, "name", &name, "cmd", &cmd, "labels?", &labels); err != nil {
				return nil, err
			}
			tl.localResources[name] = cmd
			return starlark.None, nil
		}),
		"local": fn("local", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return nil, fmt.Errorf("local(): the Tiltfile should not run commands at load time")
		}),
		"read_file": fn("read_file", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var p string
			if err := starlark.UnpackPositionalArgs("read_file", args, kwargs, 1, &p); err != nil {
				return nil, err
			}
			tl.paths = append(tl.paths, p)
			b, err := os.ReadFile(filepath.Join(repoRoot, p))
			return starlark.String(b), err
		}),
		"watch_file": fn("watch_file", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var p string
			if err := starlark.UnpackPositionalArgs("watch_file", args, kwargs, 1, &p); err != nil {
				return nil, err
			}
			tl.paths = append(tl.paths, p)
			return starlark.None, nil
		}),
	}
}

func strings_(l *starlark.List) ([]string, error) {
	if l == nil {
		return nil, nil
	}
	var out []string
	for i := range l.Len() {
		s, ok := starlark.AsString(l.Index(i))
		if !ok {
			return nil, fmt.Errorf("got %s in a list of strings", l.Index(i).Type())
		}
		out = append(out, s)
	}
	return out, nil
}

func runTiltfile(t *testing.T) *tilt {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(repoRoot, "Tiltfile"))
	if err != nil {
		t.Fatal(err)
	}
	tl := &tilt{builds: map[string]string{}, resources: map[string][]string{}, localResources: map[string]string{}}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}
	thread := &starlark.Thread{Name: "Tiltfile", Print: func(_ *starlark.Thread, msg string) { t.Log(msg) }}
	if _, err := starlark.ExecFileOptions(opts, thread, "Tiltfile", src, tl.builtins()); err != nil {
		t.Fatalf("execute Tiltfile: %v", err)
	}
	return tl
}

func TestTiltfile(t *testing.T) {
	tl := runTiltfile(t)
	for _, p := range tl.paths {
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Errorf("Tiltfile names %q: %v", p, err)
		}
	}
	cmd, ok := tl.builds["bitnet"]
	if !ok {
		t.Fatalf("no custom_build for the bitnet image (got %v)", tl.builds)
	}
	for _, want := range []string{"go run ./tools/image", "$EXPECTED_REF"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("custom_build command %q lacks %q", cmd, want)
		}
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "tools/image/main.go")); err != nil {
		t.Errorf("custom_build runs ./tools/image: %v", err)
	}
	for _, dep := range []string{"cmd", "services", "shared", "go.mod"} {
		if !slices.Contains(tl.paths, dep) {
			t.Errorf("custom_build deps lack %q: code changes there would not rebuild", dep)
		}
	}
	if !slices.Equal(tl.kustomized, []string{"k8s/overlays/dev"}) || tl.applied != 1 {
		t.Errorf("got kustomize %v applied %d times, want k8s/overlays/dev once", tl.kustomized, tl.applied)
	}
	// Every resource the Tiltfile configures is a workload of the dev overlay.
	m := render(t, "overlays/dev")
	workloads := map[string]bool{}
	for _, w := range m.workloads() {
		workloads[w.name] = true
	}
	for name := range tl.resources {
		if !workloads[name] {
			t.Errorf("k8s_resource(%q): no such workload in overlays/dev", name)
		}
	}
	for _, d := range tl.resourceDeps {
		if _, local := tl.localResources[d]; !workloads[d] && !local {
			t.Errorf("resource_deps %q: no such workload in overlays/dev or local_resource", d)
		}
	}
	// The Secrets the manifests require are made for the dev cluster.
	secrets := tl.localResources["bitnet-dev-secrets"]
	for _, want := range []string{"certs dev", "--host bitnet-mesh", "secret generic bitnet-tls", "tls.crt=", "tls.key=", "ca.crt=",
		"keys generate", "secret generic bitnet-admin-key"} {
		if !strings.Contains(secrets, want) {
			t.Errorf("local_resource bitnet-dev-secrets: command lacks %q:\n%s", want, secrets)
		}
	}
	fw := tl.resources["bitnet-router"]
	for _, want := range []string{"50051:50051", "8080:8080"} {
		if !slices.Contains(fw, want) {
			t.Errorf("router port_forwards %v lack %s", fw, want)
		}
	}
}
