package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

var tinyHF = filepath.Join("..", "..", "testdata", "models", "tiny-gqa-packed")

// writeTinyGGUF writes a small GGUF model with a TQ2_0 matrix.
func writeTinyGGUF(t *testing.T) string {
	t.Helper()
	w := gguf.NewWriter()
	for _, err := range []error{
		w.AddKV("general.architecture", "bitnet"),
		w.AddKV("bitnet.context_length", uint32(64)),
		w.AddTensor("blk.0.attn_q.weight", gguf.TQ2_0, []uint64{256, 2}, make([]byte, 2*66)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "Tiny Model.gguf")
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPushPullModels(t *testing.T) {
	addr, store := startMesh(t)
	g := writeTinyGGUF(t)
	tests := []struct {
		name    string
		args    []string
		want    string // stdout
		wantErr string
	}{
		{"gguf", []string{"push", "--remote", addr, g, "--name", "tiny"}, "tiny@1\n", ""},
		{"flags first", []string{"push", "--remote", addr, "--name", "tiny", "--alias", "prod", "--quiet", g}, "tiny@2\n", ""},
		{"default name", []string{"push", "--remote", addr, g, "--quiet"}, "tiny-model@1\n", ""},
		{"hf dir", []string{"push", "--remote", addr, tinyHF, "--name", "hf"}, "hf@1\n", ""},
		{"bad name", []string{"push", "--remote", addr, g, "--name", "Bad/Name"}, "", "InvalidArgument"},
		{"bad alias", []string{"push", "--remote", addr, g, "--name", "tiny", "--alias", "7"}, "", "all digits"},
		{"missing path", []string{"push", "--remote", addr, "/nonexistent/m.gguf", "--name", "x"}, "", "no such file"},
		{"not a model", []string{"push", "--remote", addr, "push_test.go", "--name", "x"}, "", "want a GGUF file"},
		{"no path", []string{"push", "--remote", addr, "--name", "x"}, "", "want one PATH"},
		{"bad type", []string{"push", "--remote", addr, g, "--quantize", "--type", "q4_0"}, "", "tq2_0, tq1_0 or i2_s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runCLI(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v (stderr %s)", err, errOut)
			}
			if out != tt.want {
				t.Errorf("got stdout %q, want %q", out, tt.want)
			}
		})
	}
	v, err := store.Resolve(t.Context(), "tiny:prod")
	if err != nil || v.Ref.Version != 2 {
		t.Errorf("tiny:prod: got %v, %v, want version 2", v.Ref, err)
	}

	dst := t.TempDir()
	out, errOut, err := runCLI(t, "pull", "--remote", addr, "hf@1", "--out", dst)
	if err != nil {
		t.Fatal(err)
	}
	modelFiles := []string{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} // not golden.json
	if got := strings.Count(out, "\n"); got != len(modelFiles) {
		t.Errorf("pull printed %d paths, want %d:\n%s", got, len(modelFiles), out)
	}
	for _, name := range modelFiles {
		a, _ := os.ReadFile(filepath.Join(tinyHF, name))
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(a) != string(b) {
			t.Errorf("pulled %s differs (%v)", name, err)
		}
	}
	if !strings.Contains(errOut, "pulled hf@1") {
		t.Errorf("got stderr %q, want a summary naming hf@1", errOut)
	}
	for _, tt := range []struct{ ref, want string }{
		{"hf@0", "invalid model reference"},
		{"HF", "invalid model reference"},
		{"nope", "NotFound"},
		{"hf:prod", "NotFound"},
	} {
		if _, _, err := runCLI(t, "pull", "--remote", addr, tt.ref, "--out", t.TempDir()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("pull %s: got %v, want an error containing %q", tt.ref, err, tt.want)
		}
	}

	out, _, err = runCLI(t, "models", "--remote", addr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "hf ") ||
		!strings.Contains(lines[2], "prod=2") || !strings.Contains(lines[2], "node-a (tiny@1)") || !strings.Contains(lines[1], "hf_packed") {
		t.Errorf("models table:\n%s", out)
	}
	t.Setenv(config.Remote.Env(), addr)
	out, _, err = runCLI(t, "models", "--json", "--prefix", "tiny")
	if err != nil {
		t.Fatal(err)
	}
	var rows []modelRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("models --json: %v\n%s", err, out)
	}
	if len(rows) != 2 || rows[0].Name != "tiny" || rows[0].LatestVersion != 2 || rows[0].QuantType != "TQ2_0" || rows[0].Format != "GGUF" || rows[1].Name != "tiny-model" {
		t.Errorf("got rows %+v, want tiny@2 (GGUF TQ2_0) and tiny-model", rows)
	}
	// Each model's family (issue 12): the HF checkpoint is BitNetForCausalLM.
	if !strings.Contains(lines[0], "FAMILY") || !strings.Contains(lines[1], " bitnet ") {
		t.Errorf("models table lacks the family:\n%s", strings.Join(lines, "\n"))
	}
	out, _, err = runCLI(t, "models", "--json", "--prefix", "hf")
	if err != nil {
		t.Fatal(err)
	}
	rows = nil
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].Family != "bitnet" {
		t.Errorf("models --json --prefix hf: got %+v, %v; want family bitnet", rows, err)
	}
}

func TestPushProgress(t *testing.T) {
	addr, _ := startMesh(t)
	g := writeTinyGGUF(t)
	_, errOut, err := runCLI(t, "push", "--remote", addr, g, "--name", "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut, "upload model.gguf 100%") {
		t.Errorf("got stderr %q, want a final upload line", errOut)
	}
	_, errOut, err = runCLI(t, "push", "--remote", addr, g, "--name", "tiny", "--quiet")
	if err != nil || errOut != "" {
		t.Errorf("--quiet: got stderr %q, %v, want nothing", errOut, err)
	}
}

func TestPushQuantize(t *testing.T) {
	addr, store := startMesh(t)
	out, errOut, err := runCLI(t, "push", "--remote", addr, tinyHF, "--name", "tiny", "--quantize", "--alias", "prod")
	if err != nil {
		t.Fatalf("%v (stderr %s)", err, errOut)
	}
	if out != "tiny@1\n" {
		t.Errorf("got stdout %q, want tiny@1", out)
	}
	v, err := store.Resolve(t.Context(), "tiny:prod")
	if err != nil || v.Metadata.QuantType != registry.QuantTQ20 || v.Metadata.Format != registry.FormatGGUF {
		t.Errorf("got %+v, %v, want a GGUF TQ2_0 version", v.Metadata, err)
	}
	if !strings.Contains(errOut, "job job-1 quantize") || !strings.Contains(errOut, "quantized 4 linears") {
		t.Errorf("got stderr %q, want job progress and a summary", errOut)
	}
	// --type i2_s asks the quantizer for bitnet.cpp's I2_S.
	out, errOut, err = runCLI(t, "push", "--remote", addr, tinyHF, "--name", "tiny-i2s", "--quantize", "--type", "i2_s", "--quiet")
	if err != nil || out != "tiny-i2s@1\n" {
		t.Fatalf("push --type i2_s: got %q, %v (stderr %s), want tiny-i2s@1", out, err, errOut)
	}
	if v, err := store.Resolve(t.Context(), "tiny-i2s@1"); err != nil || v.Metadata.QuantType != registry.QuantI2S {
		t.Errorf("push --type i2_s: got %+v, %v, want an I2_S version", v.Metadata, err)
	}
}

// TestPushModelFilesOnly: push sends a trained directory's model files and
// says what it left out; --all sends everything.
func TestPushModelFilesOnly(t *testing.T) {
	addr, store := startMesh(t)
	dir := t.TempDir()
	for _, f := range []string{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(tinyHF, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"checkpoint.safetensors", "train.tokens", "loss.svg"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("leftover"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args      []string
		wantFiles int
		wantNote  bool
	}{
		{[]string{"push", "--remote", addr, dir, "--name", "trained"}, 4, true},
		{[]string{"push", "--remote", addr, dir, "--name", "trained", "--all"}, 7, false},
		{[]string{"push", "--remote", addr, dir, "--name", "trained", "--quantize"}, 1, true},
	} {
		out, errOut, err := runCLI(t, tc.args...)
		if err != nil {
			t.Fatalf("%q: %v (%s)", tc.args, err, errOut)
		}
		v, err := store.Resolve(t.Context(), strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		note := strings.Contains(errOut, "left out (not model files; --all pushes them): checkpoint.safetensors, loss.svg, train.tokens")
		if len(v.Files) != tc.wantFiles || note != tc.wantNote {
			t.Errorf("%q: got %d files, note %v (stderr %q); want %d, %v", tc.args, len(v.Files), note, errOut, tc.wantFiles, tc.wantNote)
		}
	}
}
