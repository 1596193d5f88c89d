package safetensors

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeShard(t *testing.T, path string, names ...string) {
	t.Helper()
	var ts []Tensor
	for _, n := range names {
		ts = append(ts, Tensor{Name: n, DType: F32, Shape: []int{1}, Data: f32Bytes(float32(len(n)))})
	}
	if err := WriteFile(path, ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}

func writeIndex(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCheckpointSingle(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, filepath.Join(dir, SingleFileName), "a", "bb")
	for _, p := range []string{dir, filepath.Join(dir, SingleFileName)} {
		c, err := OpenCheckpoint(p)
		if err != nil {
			t.Fatalf("OpenCheckpoint(%s): %v", p, err)
		}
		if got, want := c.Names(), []string{"a", "bb"}; !reflect.DeepEqual(got, want) {
			t.Errorf("Names = %v, want %v", got, want)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestOpenCheckpointSharded(t *testing.T) {
	dir := t.TempDir()
	writeShard(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), "a", "stale")
	writeShard(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), "bb", "ccc")
	writeIndex(t, dir, `{"metadata":{"total_size":16},"weight_map":{
		"a":"model-00001-of-00002.safetensors",
		"bb":"model-00002-of-00002.safetensors",
		"ccc":"model-00002-of-00002.safetensors"}}`)
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatalf("OpenCheckpoint: %v", err)
	}
	defer c.Close()
	if got, want := c.Names(), []string{"a", "bb", "ccc"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
	tt, ok := c.Tensor("ccc")
	if !ok {
		t.Fatal("Tensor(ccc) missing")
	}
	if got, _ := tt.Float32(); !reflect.DeepEqual(got, []float32{3}) {
		t.Errorf("ccc = %v, want [3]", got)
	}
}

func TestOpenCheckpointErrors(t *testing.T) {
	tests := []struct {
		name  string
		index string
		want  string
	}{
		{"traversal", `{"weight_map":{"a":"../x.safetensors"}}`, "must be a file name"},
		{"subdir", `{"weight_map":{"a":"sub/x.safetensors"}}`, "must be a file name"},
		{"absolute", `{"weight_map":{"a":"/etc/passwd"}}`, "must be a file name"},
		{"missing shard", `{"weight_map":{"a":"nope.safetensors"}}`, "nope.safetensors"},
		{"tensor not in shard", `{"weight_map":{"zz":"s1.safetensors"}}`, `tensor "zz" is not in shard s1.safetensors`},
		{"empty", `{"weight_map":{}}`, "empty"},
		{"bad json", `{"weight_map":`, "index"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeShard(t, filepath.Join(dir, "s1.safetensors"), "a")
			writeIndex(t, dir, tt.index)
			c, err := OpenCheckpoint(dir)
			if err == nil {
				c.Close()
				t.Fatalf("OpenCheckpoint: got nil error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := OpenCheckpoint(t.TempDir()); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Errorf("empty dir: error = %v, want one naming the expected files", err)
	}
}
