package registry

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/tools/hostile"
)

// smallGGUF is hostile.SmallGGUF (a valid one-block model) through edit.
func smallGGUF(t *testing.T, edit func(*gguf.KV) bool) []byte {
	t.Helper()
	b, err := hostile.SmallGGUF(edit)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestValidateAtPush is defect 6's last part: with ValidateModelFiles the
// registry refuses, at CreateVersion, a version no node can load, with
// INVALID_ARGUMENT naming the problem and no path of this host (it
// accepted a GGUF without general.architecture, which then failed at first
// use); loadable GGUF and Hugging Face versions pass.
func TestValidateAtPush(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, WithValidator(ValidateModelFiles))
	c := startServer(t, s)
	put := func(b []byte) string {
		info, err := s.PutBlob(ctx, bytes.NewReader(b), "")
		if err != nil {
			t.Fatal(err)
		}
		return info.Digest.Hex()
	}
	hf := filepath.Join("..", "..", "testdata", "models", "tiny-gqa-tied-f32")
	hfFiles := func(replace map[string][]byte) []*registryv1.VersionFile {
		var out []*registryv1.VersionFile
		for _, name := range []string{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} {
			b, ok := replace[name]
			if !ok {
				var err error
				if b, err = os.ReadFile(filepath.Join(hf, name)); err != nil {
					t.Fatal(err)
				}
			}
			if b != nil {
				out = append(out, &registryv1.VersionFile{Path: name, Sha256: put(b)})
			}
		}
		return out
	}
	gguf1 := func(b []byte) []*registryv1.VersionFile {
		return []*registryv1.VersionFile{{Path: "model.gguf", Sha256: put(b)}}
	}
	drop := func(key string) func(*gguf.KV) bool { return func(kv *gguf.KV) bool { return kv.Key != key } }
	for _, tc := range []struct {
		name   string
		format modelv1.ModelFormat
		files  []*registryv1.VersionFile
		want   string // "" for accepted
	}{
		{"good gguf", modelv1.ModelFormat_MODEL_FORMAT_GGUF, gguf1(smallGGUF(t, nil)), ""},
		{"good hf", modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS, hfFiles(nil), ""},
		{"gguf without general.architecture", modelv1.ModelFormat_MODEL_FORMAT_GGUF, gguf1(smallGGUF(t, drop("general.architecture"))), "general.architecture"},
		{"gguf without block count", modelv1.ModelFormat_MODEL_FORMAT_GGUF, gguf1(smallGGUF(t, drop("bitnet.block_count"))), "bitnet.block_count"},
		{"not a gguf", modelv1.ModelFormat_MODEL_FORMAT_GGUF, gguf1([]byte("GGUF, or so it says")), "model.gguf"},
		{"truncated gguf", modelv1.ModelFormat_MODEL_FORMAT_GGUF, gguf1(smallGGUF(t, nil)[:5000]), "model.gguf"},
		{"no gguf file", modelv1.ModelFormat_MODEL_FORMAT_GGUF, []*registryv1.VersionFile{{Path: "weights.bin", Sha256: put([]byte("x"))}}, "exactly one .gguf"},
		{"hf bad config", modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS, hfFiles(map[string][]byte{"config.json": []byte(`{"architectures": ["BitNetForCausalLM"], "vocab_size": 0}`)}), "config.json"},
		{"hf huge config", modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS, hfFiles(map[string][]byte{"config.json": []byte(`{"architectures": ["BitNetForCausalLM"], "vocab_size": 16777216, "hidden_size": 16777216, "intermediate_size": 16777216, "num_hidden_layers": 2, "num_attention_heads": 4}`)}), "parameters"},
		{"hf without config", modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS, hfFiles(map[string][]byte{"config.json": nil}), "needs config.json"},
		{"hf bad safetensors", modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS, hfFiles(map[string][]byte{"model.safetensors": []byte("\xff\xff\xff\xff\xff\xff\xff\x7fnot a header")}), "model.safetensors"},
		{"hf bad tokenizer", modelv1.ModelFormat_MODEL_FORMAT_HF_SAFETENSORS, hfFiles(map[string][]byte{"tokenizer.json": []byte(`{"model": 1}`)}), "tokenizer.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateVersion(ctx, &registryv1.CreateVersionRequest{Name: "m", CreateModel: true, Format: tc.format, Files: tc.files})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want the version created", err)
				}
				return
			}
			wantCode(t, "CreateVersion", err, codes.InvalidArgument)
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, dir) {
				t.Errorf("got %q, want a message naming %q and no path under %s", msg, tc.want, dir)
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(ents) != 0 {
		t.Errorf("validation left %d entries in uploads/", len(ents))
	}
}
