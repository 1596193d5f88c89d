package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/auth"
)

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestKeysContract: `up --auth` writes DATA/admin.key (0600) and prints its
// path, never the key; `keys create` prints the new key alone on its last
// line of stdout; list and revoke work with the admin key; the revoked key
// is refused.
func TestKeysContract(t *testing.T) {
	data := t.TempDir()
	m := startCommand(t, `(?s)admin key written to (\S+) .*ready: gRPC (\S+), REST`,
		"up", "--auth", "--data", data, "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--threads", "1", "--log-level", "error")
	keyFile, addr := m[1], m[2]
	if want := filepath.Join(data, "admin.key"); keyFile != want {
		t.Fatalf("admin key file: got %s, want %s", keyFile, want)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(keyFile)
	admin := strings.TrimSpace(string(b))
	if strings.Contains(m[0], admin) {
		t.Fatal("up printed the admin key")
	}

	out, errOut, err := runCLI(t, "keys", "create", "--remote", addr, "--api-key", admin, "--name", "ci", "--scopes", "generate,read", "--expires", "720h")
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut)
	}
	key := lastLine(out)
	if _, err := auth.ParseToken(key); err != nil {
		t.Fatalf("keys create: last line %q is not a key: %v\nstdout:\n%s", key, err, out)
	}
	out, _, err = runCLI(t, "keys", "list", "--remote", addr, "--api-key", admin)
	if err != nil || !strings.Contains(out, "ci ") || !strings.Contains(out, "read,generate") || strings.Contains(out, key) {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "models", "--remote", addr, "--api-key", key); err != nil {
		t.Errorf("models with the new read key: %v", err)
	}
	if _, _, err := runCLI(t, "keys", "list", "--remote", addr, "--api-key", key); err == nil || !strings.Contains(err.Error(), `"admin"`) {
		t.Errorf("keys list with a read key: got %v, want PERMISSION_DENIED naming admin", err)
	}
	if _, _, err := runCLI(t, "models", "--remote", addr); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Errorf("models without a key: got %v, want UNAUTHENTICATED", err)
	}
	out, _, err = runCLI(t, "keys", "revoke", "ci", "--remote", addr, "--api-key", admin)
	if err != nil || !strings.Contains(out, "revoked key ci") {
		t.Fatalf("keys revoke: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "models", "--remote", addr, "--api-key", key); err == nil {
		t.Error("models with the revoked key: got no error")
	}
	if out, _, err := runCLI(t, "keys", "generate"); err != nil || func() error { _, err := auth.ParseToken(lastLine(out)); return err }() != nil {
		t.Errorf("keys generate: %v, %q", err, out)
	}
}

func TestUpSaysKeysOff(t *testing.T) {
	m := startCommand(t, `(?s)(API keys off[^\n]*).*ready:`, "up", "--data", t.TempDir(), "--grpc", "127.0.0.1:0",
		"--http", "127.0.0.1:0", "--threads", "1", "--log-level", "error")
	if !strings.Contains(m[1], "--auth") {
		t.Errorf("keys-off notice %q does not say how to turn them on", m[1])
	}
}

func TestInsecureFlag(t *testing.T) {
	_, _, err := runCLI(t, "serve", "registry", "--data", t.TempDir(), "--grpc", "0.0.0.0:0", "--http", "-", "--log-level", "error")
	if err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("serve on 0.0.0.0 without auth: got %v, want a refusal naming --insecure", err)
	}
}

func TestCertsDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	out, _, err := runCLI(t, "certs", "dev", "--out", dir, "--host", "bitnet.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key"} {
		if !strings.Contains(out, filepath.Join(dir, f)) {
			t.Errorf("output does not name %s:\n%s", f, out)
		}
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, _, err := runCLI(t, "certs", "dev", "--out", dir); err == nil {
		t.Error("certs dev over an existing CA: got no error")
	}
}

// TestUpTLS: `up` with TLS, mTLS and keys from `certs dev` files; clients
// pass --tls-ca and a client certificate; one without is refused.
func TestUpTLS(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	if _, _, err := runCLI(t, "certs", "dev", "--out", certDir); err != nil {
		t.Fatal(err)
	}
	c := func(f string) string { return filepath.Join(certDir, f) }
	m := startCommand(t, `ready: gRPC (\S+), REST https://`,
		"up", "--auth", "--data", filepath.Join(dir, "data"), "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--threads", "1",
		"--log-level", "error", "--tls-cert", c("server.crt"), "--tls-key", c("server.key"), "--tls-client-ca", c("ca.crt"))
	addr := m[1]
	b, err := os.ReadFile(filepath.Join(dir, "data", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(b))
	base := []string{"--remote", addr, "--api-key", admin, "--tls-ca", c("ca.crt")}
	if out, _, err := runCLI(t, append([]string{"keys", "list", "--tls-cert", c("client.crt"), "--tls-key", c("client.key")}, base...)...); err != nil || !strings.Contains(out, "admin") {
		t.Errorf("keys list over mTLS: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, append([]string{"keys", "list"}, base...)...); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("keys list without a client certificate: got %v, want a refusal naming the client certificate", err)
	}
	if _, _, err := runCLI(t, "keys", "list", "--remote", addr, "--api-key", admin); err == nil {
		t.Error("keys list in plaintext against a TLS server: got no error")
	}
}

// TestReadmeAccess runs README.md's access-control block verbatim in bash
// with the binary built into a temporary bin/: up --auth, the admin key,
// keys create/list/revoke, REST 401/200/403.
func TestReadmeAccess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("no " + tool)
		}
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- access:begin -->\\s*```sh\\n(.*?)```\\s*<!-- access:end -->").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md: no ```sh block between <!-- access:begin --> and <!-- access:end -->")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "bin", "bitnet"), ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	script := "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + string(m[1])
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "BITNET_GRPC_ADDR="+freeAddr(t), "BITNET_HTTP_ADDR="+freeAddr(t), "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	out := stdout.String()
	if err != nil {
		t.Fatalf("the README's access block failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	for _, want := range []string{
		"admin key written to ", // up --auth, first start
		"\napp ",                // keys list
		`"code":"invalid_api_key","message":"missing API key`, // curl without a key: 401 (OpenAI's error shape)
		`{"object":"list","data":[]}`,                         // with the key: the OpenAI model list
		`needs scope \"write\"`,                               // DELETE with a read key: 403
		"revoked key app",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}
