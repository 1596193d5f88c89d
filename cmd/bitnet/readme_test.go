package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// repoRoot is the repository's root, from this package's directory.
var repoRoot = filepath.Join("..", "..")

// readmeBlock returns the shell block of README.md between the
// first-session markers.
func readmeBlock(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- first-session:begin -->\\s*```sh\\n(.*?)```\\s*<!-- first-session:end -->").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md: no ```sh block between <!-- first-session:begin --> and <!-- first-session:end -->")
	}
	return string(m[1])
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestReadmeFirstSession runs the README's first session verbatim in bash
// from the repository root, as a new user would, with BITNET_GRPC_ADDR and
// BITNET_HTTP_ADDR on free ports (what the README says to do when the
// default ports are taken): build, up, train, push --quantize, generate over
// REST and gRPC, nodes, env, stop.
func TestReadmeFirstSession(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and trains a model (about a minute)")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl")
	}
	block := readmeBlock(t)
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// -e: the first failing command fails the test; the trap stops the
	// mesh when a command fails before "kill %1".
	script := "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + block
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = repoRoot
	cmd.Env = append(cleanEnv(), "BITNET_GRPC_ADDR="+grpcAddr, "BITNET_HTTP_ADDR="+httpAddr, "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything the block left running
	}
	out := stdout.String()
	if err != nil {
		t.Fatalf("the README's first session failed after %v: %v\nstdout:\n%s\nstderr:\n%s", time.Since(start).Round(time.Second), err, out, stderr.String())
	}
	t.Logf("first session: %v", time.Since(start).Round(time.Second))

	for _, want := range []string{
		"bitnet mesh ready: gRPC " + grpcAddr + ", REST http://" + httpAddr,
		"\nopticks@1\n",                          // push --quantize
		`"finish_reason":"FINISH_REASON_LENGTH"`, // REST stream's last line
		"\nNAME ",                                // nodes
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// env: the column width follows the longest variable name.
	if !regexp.MustCompile(`\nBITNET_GRPC_ADDR +` + regexp.QuoteMeta(grpcAddr)).MatchString(out) {
		t.Errorf("stdout lacks BITNET_GRPC_ADDR %s (bitnet env):\n%s", grpcAddr, out)
	}
	var rest []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &m) == nil {
			rest = append(rest, m)
		}
	}
	if len(rest) != 8 { // max_tokens 8: one line per token
		t.Errorf("REST stream: got %d lines, want 8", len(rest))
	}
	if !strings.Contains(stderr.String(), "opticks@1 on local (") || !strings.Contains(stderr.String(), "16 generated tokens") {
		t.Errorf("gRPC generate: stderr lacks its summary:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "left out (not model files; --all pushes them): checkpoint.safetensors, loss.svg, train.tokens") {
		t.Errorf("push: stderr does not say what it left out:\n%s", stderr.String())
	}
}

// cleanEnv is the environment without BITNET_* settings (the block sets
// what it needs, a developer's shell must not change the run).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BITNET_") || strings.HasPrefix(kv, "BITNET_CONSUL_BIN=") || strings.HasPrefix(kv, "BITNET_CACHE=") {
			env = append(env, kv)
		}
	}
	return env
}

// TestExampleConfigs: the shipped configs parse, and quantize exactly as
// examples/README.md's table says (the GGUF width rule).
func TestExampleConfigs(t *testing.T) {
	for path, quantizes := range map[string]bool{
		"examples/tiny-256/config.json":  true,
		"examples/small-768/config.json": true,
		"testdata/train/config.json":     false,
	} {
		raw, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Fatal(err)
		}
		c, err := model.ParseConfig(raw)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if w := ggufWidths(c); (w == "") != quantizes {
			t.Errorf("%s: widths %q, want quantizes = %v", path, w, quantizes)
		}
	}
	names, err := filepath.Glob(filepath.Join(repoRoot, "examples", "*", "config.json"))
	if err != nil || len(names) != 2 {
		t.Errorf("examples: got %v (%v), want the 2 configs the table lists", names, err)
	}
}
