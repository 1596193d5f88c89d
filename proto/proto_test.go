package proto_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/auth/v1"
	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	quantizerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/quantizer/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	trainerv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/trainer/v1"
)

// root is the repository root, seen from this package's directory.
const root = ".."

// bufTool returns the buf binary and a PATH with the toolchain cache of
// tools/proto/install.sh in front (buf finds the protoc plugins on it), or
// skips the test when buf is not installed outside CI (in CI,
// tools/ci/test.sh installs it first, and its absence is a failure).
func bufTool(t *testing.T) (buf, path string) {
	t.Helper()
	cache := os.Getenv("BITNET_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("no BITNET_CACHE and no home directory: %v", err)
		}
		cache = filepath.Join(home, ".cache", "bitnet-mesh")
	}
	path = filepath.Join(cache, "bin") + string(os.PathListSeparator) + os.Getenv("PATH")
	for _, dir := range filepath.SplitList(path) {
		if fi, err := os.Stat(filepath.Join(dir, "buf")); err == nil && !fi.IsDir() {
			return filepath.Join(dir, "buf"), path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("buf is not installed: tools/ci/test.sh runs tools/proto/install.sh before the tests")
	}
	t.Skip("buf is not installed: run tools/proto/install.sh (CI runs this test)")
	return "", ""
}

// runBuf runs buf in the repository root with the toolchain on PATH.
func runBuf(t *testing.T, args ...string) {
	t.Helper()
	buf, path := bufTool(t)
	cmd := exec.Command(buf, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("buf %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
}

func TestBufLint(t *testing.T) {
	runBuf(t, "lint")
}

// TestBufFormat checks that the protos are formatted as `buf format -w proto` does.
func TestBufFormat(t *testing.T) {
	runBuf(t, "format", "--diff", "--exit-code", "proto")
}

// isGenerated reports whether a path under proto/ is a generated file.
func isGenerated(p string) bool {
	return strings.HasSuffix(p, ".pb.go") || strings.HasSuffix(p, ".pb.gw.go") || strings.HasSuffix(p, ".swagger.json")
}

// generatedFiles maps the generated files below dir/proto (slash paths
// relative to dir) to their content.
func generatedFiles(t *testing.T, dir string) map[string][]byte {
	return filesUnder(t, dir, "proto", isGenerated)
}

// filesUnder maps the files below dir/sub for which keep is true (slash
// paths relative to dir) to their content; a missing dir/sub has none.
func filesUnder(t *testing.T, dir, sub string, keep func(string) bool) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	if _, err := os.Stat(filepath.Join(dir, sub)); os.IsNotExist(err) {
		return files
	}
	err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !keep(p) || strings.Contains(p, "node_modules") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("reading generated files: %v", err)
	}
	return files
}

// TestGeneratedCodeIsCurrent runs buf generate into a temporary directory and
// compares the result with the committed files.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs buf generate")
	}
	out := t.TempDir()
	runBuf(t, "generate", "--template", "buf.gen.yaml", "-o", out)
	compareGenerated(t, generatedFiles(t, out), generatedFiles(t, root))
}

// pythonGenerated reports whether a path is generated Python SDK code.
func pythonGenerated(p string) bool {
	return strings.HasSuffix(p, "_pb2.py") || strings.HasSuffix(p, "_pb2_grpc.py")
}

// TestPythonSDKIsCurrent checks sdk/python's generated code against Debian
// 12's protoc and grpc_python_plugin (the versions tools/proto/sdk.sh pins;
// CI installs them).
func TestPythonSDKIsCurrent(t *testing.T) {
	out := t.TempDir()
	v, err := exec.Command("protoc", "--version").Output()
	_, perr := exec.LookPath("grpc_python_plugin")
	if err != nil || perr != nil || strings.TrimSpace(string(v)) != "libprotoc 3.21.12" {
		if os.Getenv("CI") != "" {
			t.Fatalf("protoc 3.21.12 and grpc_python_plugin are needed (got %q): tools/ci/test.sh installs them", v)
		}
		t.Skipf("protoc 3.21.12 and grpc_python_plugin are not installed (got %q): apt-get install protobuf-compiler protobuf-compiler-grpc", v)
	}
	runBuf(t, "generate", "--template", "buf.gen.python.yaml", "-o", out)
	compareGenerated(t, filesUnder(t, out, "sdk/python", pythonGenerated), filesUnder(t, root, "sdk/python", pythonGenerated))
}

// TestTypeScriptSDKIsCurrent checks sdk/typescript/src/gen against the
// protoc-gen-es of sdk/typescript's package-lock.json (npm ci there).
func TestTypeScriptSDKIsCurrent(t *testing.T) {
	if _, err := os.Stat(filepath.Join(root, "sdk", "typescript", "node_modules", ".bin", "protoc-gen-es")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("protoc-gen-es is not installed: tools/ci/test.sh runs npm ci in sdk/typescript")
		}
		t.Skip("protoc-gen-es is not installed: run npm ci in sdk/typescript")
	}
	out := t.TempDir()
	runBuf(t, "generate", "--template", "buf.gen.ts.yaml", "-o", out)
	all := func(string) bool { return true }
	compareGenerated(t, filesUnder(t, out, "sdk/typescript/src/gen", all), filesUnder(t, root, "sdk/typescript/src/gen", all))
}

// compareGenerated reports files of want missing or different in got, and
// generated-looking files of got that want lacks.
func compareGenerated(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("buf generate wrote no files")
	}
	const fix = "run tools/proto/generate.sh and commit the result"
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s is missing: %s", name, fix)
		case !bytes.Equal(g, w):
			t.Errorf("%s is stale (%s):\n%s", name, fix, firstDiff(g, w))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is not generated from any proto: delete it (%s)", name, fix)
		}
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("line %d:\n  got  %q\n  want %q", i+1, clip(gl), clip(wl))
		}
	}
	return "(no line differs)"
}

// clip shortens long lines (generated JSON and descriptors) for messages.
func clip(s string) string {
	const max = 160
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// TestPluginVersionsMatchGoMod checks that the generator versions pinned in
// tools/proto/install.sh are the runtime module versions go.mod requires, so
// that the generated code is what those runtimes expect.
func TestPluginVersionsMatchGoMod(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(root, "tools", "proto", "install.sh"))
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ variable, module string }{
		{"BITNET_PROTO_GO_VERSION", "google.golang.org/protobuf"},
		{"BITNET_PROTO_GATEWAY_VERSION", "github.com/grpc-ecosystem/grpc-gateway/v2"},
	}
	for _, tt := range tests {
		pin := regexp.MustCompile(`(?m)^` + tt.variable + `=(\S+)`).FindSubmatch(script)
		req := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(tt.module) + `\s+(\S+)`).FindSubmatch(gomod)
		switch {
		case pin == nil:
			t.Errorf("install.sh sets no %s", tt.variable)
		case req == nil:
			t.Errorf("go.mod does not require %s", tt.module)
		case string(pin[1]) != string(req[1]):
			t.Errorf("install.sh %s: got %s, want %s (the %s version in go.mod)", tt.variable, pin[1], req[1], tt.module)
		}
	}
}

// TestEveryRPCHasHTTPBinding checks that every RPC of every service can be
// called over REST.
func TestEveryRPCHasHTTPBinding(t *testing.T) {
	files := []protoreflect.FileDescriptor{
		authv1.File_bitnet_auth_v1_auth_proto,
		inferencev1.File_bitnet_inference_v1_inference_proto,
		quantizerv1.File_bitnet_quantizer_v1_quantizer_proto,
		registryv1.File_bitnet_registry_v1_registry_proto,
		trainerv1.File_bitnet_trainer_v1_trainer_proto,
	}
	routes := map[string]string{} // "GET /v1/models" -> method, to catch clashes between services
	for _, f := range files {
		svcs := f.Services()
		if svcs.Len() != 1 {
			t.Errorf("%s: got %d services, want 1", f.Path(), svcs.Len())
		}
		for i := range svcs.Len() {
			methods := svcs.Get(i).Methods()
			for j := range methods.Len() {
				m := methods.Get(j)
				rule, ok := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if !ok || rule == nil || rule.GetPattern() == nil {
					t.Errorf("%s has no google.api.http binding", m.FullName())
					continue
				}
				verb, route := httpRoute(rule)
				key := verb + " " + route
				if other, dup := routes[key]; dup {
					t.Errorf("%s and %s both bind %s", other, m.FullName(), key)
				}
				routes[key] = string(m.FullName())
			}
		}
	}
}

func httpRoute(r *annotations.HttpRule) (verb, route string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return "GET", p.Get
	case *annotations.HttpRule_Post:
		return "POST", p.Post
	case *annotations.HttpRule_Put:
		return "PUT", p.Put
	case *annotations.HttpRule_Delete:
		return "DELETE", p.Delete
	case *annotations.HttpRule_Patch:
		return "PATCH", p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "?", "?"
}
