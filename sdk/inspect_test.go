package sdk

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// trainedDir copies a tiny model into a directory and adds what a training
// run leaves beside it.
func trainedDir(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "testdata", "models", "tiny-gqa-tied-f32")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "golden.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"checkpoint.safetensors", "train.tokens", "loss.svg", "tokenizer_config.json", "README.md", ".hidden", "x.partial", "logs/run.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func paths(m *LocalModel) []string {
	var out []string
	for _, f := range m.Files {
		out = append(out, f.Path)
	}
	return out
}

// TestInspectModelFiles: a directory's model files are pushed, training
// leftovers are not, unless AllFiles.
func TestInspectModelFiles(t *testing.T) {
	dir := trainedDir(t)
	m, err := Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"README.md", "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
	if got := paths(m); !slices.Equal(got, want) {
		t.Errorf("files: got %v, want %v", got, want)
	}
	if want := []string{"checkpoint.safetensors", "golden.json", "logs/run.txt", "loss.svg", "train.tokens"}; !slices.Equal(m.Skipped, want) {
		t.Errorf("skipped: got %v, want %v", m.Skipped, want)
	}
	all, err := Inspect(dir, AllFiles())
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Files) != 11 || len(all.Skipped) != 0 || all.ParameterCount != m.ParameterCount {
		t.Errorf("AllFiles: got %v, skipped %v; want the 11 visible files", paths(all), all.Skipped)
	}

	// A sharded checkpoint: the index and the shards it names.
	if err := os.Rename(filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "model-00001-of-00001.safetensors")); err != nil {
		t.Fatal(err)
	}
	m, err = Inspect(dir, AllFiles())
	if err == nil {
		t.Fatalf("no weights: got files %v, want an error", paths(m))
	}
	index := `{"weight_map": {"model.embed_tokens.weight": "model-00001-of-00001.safetensors"}}`
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err = Inspect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := paths(m); !slices.Contains(got, "model-00001-of-00001.safetensors") || !slices.Contains(got, "model.safetensors.index.json") || slices.Contains(got, "checkpoint.safetensors") {
		t.Errorf("sharded: got %v, want the index and its shard, not the checkpoint", got)
	}
}
