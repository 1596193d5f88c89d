package clientcheck

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

var (
	buildOnce sync.Once
	bitnetBin string
	buildErr  error
)

// bitnet builds cmd/bitnet once per test binary.
func bitnet(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clientcheck-bin")
		if err != nil {
			buildErr = err
			return
		}
		bitnetBin = filepath.Join(dir, "bitnet")
		out, err := exec.Command("go", "build", "-o", bitnetBin, "../../cmd/bitnet").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bitnetBin
}

// need skips (or, with BITNET_CLIENT_CHECKS=require, fails) when a
// prerequisite is missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("BITNET_CLIENT_CHECKS") == "require" {
		t.Fatalf("%s (BITNET_CLIENT_CHECKS=require)", what)
	}
	t.Skip(what)
}

// mesh is a running `bitnet up`.
type mesh struct {
	grpc, http string
	data       string // its data directory
}

var readyLine = regexp.MustCompile(`bitnet mesh ready: gRPC (\S+), REST (http://\S+),`)

// up starts `bitnet up` with extra flags on free loopback ports until the
// test ends.
func up(t *testing.T, flags ...string) mesh {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	data := t.TempDir()
	args := append([]string{"up", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", data, "--threads", "1"}, flags...)
	cmd := exec.CommandContext(ctx, bitnet(t), args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd.Stderr = &lockedWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("bitnet up log:\n%s", logs.String())
		}
	})
	found := make(chan mesh, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- mesh{grpc: m[1], http: m[2], data: data}
			}
		}
	}()
	select {
	case m := <-found:
		return m
	case <-time.After(60 * time.Second):
		t.Fatalf("bitnet up not ready within 60 s:\n%s", logs.String())
	}
	return mesh{}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// models writes the test models: tiny (the golden tiny model with LLaMA
// 3's chat template in tokenizer_config.json) and long (the same weights
// with a 32768-token context and an end token it never picks, so a
// generation runs until stopped).
func models(t *testing.T) (tiny, long string) {
	t.Helper()
	dir := t.TempDir()
	tmpl, err := os.ReadFile(filepath.Join(root, "shared/jinja/testdata/templates/Meta-Llama-3-8B-Instruct.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "testdata/models/tiny-gqa-tied-f32")
	for _, name := range []string{"tiny", "long"} {
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == "config.json" && name == "long" {
				var c map[string]any
				if err := json.Unmarshal(data, &c); err != nil {
					t.Fatal(err)
				}
				c["max_position_embeddings"], c["eos_token_id"] = 32768, 598
				data, _ = json.Marshal(c)
			}
			if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tc, _ := json.Marshal(map[string]any{"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "chat_template": string(tmpl)})
		if err := os.WriteFile(filepath.Join(dst, "tokenizer_config.json"), tc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "tiny"), filepath.Join(dir, "long")
}

// push stores dir as name in the mesh with `bitnet push`.
func push(t *testing.T, m mesh, dir, name string, aliases ...string) {
	t.Helper()
	args := []string{"push", "--remote", m.grpc, dir, "--name", name, "--quiet"}
	for _, a := range aliases {
		args = append(args, "--alias", a)
	}
	if out, err := exec.Command(bitnet(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("bitnet %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestClients runs every client check against one `bitnet up`.
func TestClients(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts bitnet up")
	}
	_, nodeErr := exec.LookPath("node")
	m := up(t)
	tiny, long := models(t)
	push(t, m, tiny, "tiny", "prod")
	push(t, m, long, "long")

	t.Run("openai-node", func(t *testing.T) {
		_, err := os.Stat("openai-node/node_modules/openai")
		need(t, nodeErr == nil && err == nil, "node and tools/clientcheck/openai-node/node_modules (npm ci) are needed")
		limited := up(t, "--memory-budget", "1")
		push(t, limited, tiny, "tiny")
		keyed := up(t, "--auth")
		admin, err := os.ReadFile(filepath.Join(keyed.data, "admin.key"))
		if err != nil {
			t.Fatal(err)
		}
		out := run(t, "openai-node", []string{"OPENAI_BASE_URL=" + m.http + "/v1", "MESH_HTTP=" + m.http, "BITNET_BIN=" + bitnet(t),
			"TINY_DIR=" + tiny, "LIMITED_BASE_URL=" + limited.http + "/v1", "AUTH_BASE_URL=" + keyed.http + "/v1",
			"AUTH_ADMIN_KEY=" + strings.TrimSpace(string(admin))}, "node", "check.mjs")
		t.Logf("openai client checks:\n%s", out)
	})
	t.Run("python-sdk", func(t *testing.T) {
		py := python()
		need(t, py != "", "a python3 with grpcio and protobuf is needed (Debian: python3-grpcio python3-protobuf)")
		env := []string{"BITNET_GRPC=" + m.grpc, "PYTHONPATH=."}
		out := run(t, filepath.Join(root, "sdk/python"), env, py, "example.py")
		checkExample(t, out, "NOT_FOUND")
		out = run(t, filepath.Join(root, "sdk/python"), env, py, "check_push_pull.py", tiny, "pushed-py")
		if !strings.Contains(out, "push/pull ok") {
			t.Errorf("push/pull: %s", out)
		}
	})
	t.Run("typescript-sdk", func(t *testing.T) {
		dir := filepath.Join(root, "sdk/typescript")
		_, err := os.Stat(filepath.Join(dir, "node_modules/.bin/tsc"))
		need(t, nodeErr == nil && err == nil, "node and sdk/typescript/node_modules (npm ci) are needed")
		run(t, dir, nil, "node_modules/.bin/tsc", "-p", ".")
		env := []string{"BITNET_GRPC_URL=http://" + m.grpc}
		out := run(t, dir, env, "node", "dist/example.js")
		checkExample(t, out, "NotFound")
		out = run(t, dir, env, "node", "dist/check-push-pull.js", tiny, "pushed-ts")
		if !strings.Contains(out, "push/pull ok") {
			t.Errorf("push/pull: %s", out)
		}
	})
}

// checkExample checks an SDK example's output: the model list, a finished
// 16-token generation on the node, and the typed error.
func checkExample(t *testing.T, out, code string) {
	t.Helper()
	for _, want := range []string{"tiny", "finish: 2 tokens: 16 node: local", "error: " + code} {
		if !strings.Contains(out, want) {
			t.Errorf("example output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("example output:\n%s", out)
}

// python finds a python3 that imports grpc and google.protobuf.
func python() string {
	cands := []string{os.Getenv("BITNET_PYTHON"), "/usr/bin/python3", "python3"}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if exec.Command(c, "-c", "import grpc, google.protobuf").Run() == nil {
			return c
		}
	}
	return ""
}

// TestREADMEExamples: the SDK READMEs show their examples verbatim.
func TestREADMEExamples(t *testing.T) {
	for _, c := range []struct{ readme, example string }{
		{"sdk/python/README.md", "sdk/python/example.py"},
		{"sdk/typescript/README.md", "sdk/typescript/src/example.ts"},
	} {
		readme, err := os.ReadFile(filepath.Join(root, c.readme))
		if err != nil {
			t.Fatal(err)
		}
		example, err := os.ReadFile(filepath.Join(root, c.example))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "\n"+string(example)+"```") {
			t.Errorf("%s does not show %s verbatim in a code block", c.readme, c.example)
		}
		if n := strings.Count(strings.TrimSpace(string(example)), "\n") + 1; n > 12 {
			t.Errorf("%s has %d lines: keep the README example short", c.example, n)
		}
	}
}
