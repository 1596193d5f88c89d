package model

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

// writeTestGGUF writes the 256-wide test model and returns its path.
func writeTestGGUF(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(src, ggufWeights(t, ggufConfig256(true), 5), opticksTokenizer(t)); err != nil {
		t.Fatal(err)
	}
	return src
}

func setKey(key string, v any) func(*gguf.KV) bool {
	return func(kv *gguf.KV) bool {
		if kv.Key == key {
			kv.Value = v
		}
		return true
	}
}

// TestGGUFHostileHeader is defect 3: a small file whose header claims
// a million blocks (or a block count its tensors cannot back) is refused
// from its header, in milliseconds and without allocating per claimed
// block; it used to run 90 s at 100% CPU and take 3 GB.
func TestGGUFHostileHeader(t *testing.T) {
	src := writeTestGGUF(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		blocks uint32
		want   string
	}{
		{"a million blocks", 1 << 20, "num_hidden_layers = 1048576 exceeds the limit"},
		{"more blocks than tensors", 4096, "tensors, but block_count = 4096 needs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(dir, tc.name+".gguf")
			rewriteGGUF(t, src, dst, setKey(keyBlockCount, tc.blocks), nil)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := LoadContext(context.Background(), dst)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; took > 2*time.Second || alloc > 16<<20 {
				t.Errorf("refused after %v and %d MiB allocated, want within 2 s and 16 MiB", took, alloc>>20)
			}
			if _, err := InspectGGUF(dst, true); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("InspectGGUF: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestGGUFBadValues: vocab_size 0 in the metadata and NaN or infinite
// norm weights are refused at load with a clear error (they used to load,
// then fail with INTERNAL on the first request).
func TestGGUFBadValues(t *testing.T) {
	src := writeTestGGUF(t)
	dir := t.TempDir()
	nanNorm := func(name string, v float32) func(gguf.TensorInfo, []byte) (gguf.Type, []byte, bool) {
		return func(ti gguf.TensorInfo, d []byte) (gguf.Type, []byte, bool) {
			if ti.Name != name {
				return ti.Type, d, true
			}
			x := make([]float32, ti.NumElements())
			for i := range x {
				x[i] = 1
			}
			x[3] = v
			b, err := gguf.EncodeFloat32(gguf.F32, x)
			if err != nil {
				t.Fatal(err)
			}
			return gguf.F32, b, true
		}
	}
	for _, tc := range []struct {
		name   string
		kv     func(*gguf.KV) bool
		tensor func(gguf.TensorInfo, []byte) (gguf.Type, []byte, bool)
		want   string
	}{
		{"vocab_size 0", setKey(keyVocabSize, uint32(0)), nil, "bitnet.vocab_size = 0"},
		{"NaN block norm", nil, nanNorm("blk.1.attn_norm.weight", float32(math.NaN())), "input_layernorm has a non-finite weight NaN at index 3"},
		{"infinite output norm", nil, nanNorm(tensorNorm, float32(math.Inf(1))), "norm has a non-finite weight +Inf at index 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(dir, tc.name+".gguf")
			rewriteGGUF(t, src, dst, tc.kv, tc.tensor)
			for _, head8 := range []bool{true, false} {
				_, err := Load(dst, WithHeadInt8(head8))
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Load(head8 %v): got %v, want an error containing %q", head8, err, tc.want)
				}
			}
		})
	}
}

// TestLoadBudget: a load over the memory budget is refused from the
// header, before the weights are read.
func TestLoadBudget(t *testing.T) {
	src := writeTestGGUF(t)
	hf := filepath.Join("..", "..", "testdata", "models", "tiny-gqa-tied-f32")
	for _, path := range []string{src, hf} {
		_, err := Load(path, WithMemoryBudget(1000))
		if !errors.Is(err, ErrOverBudget) || !strings.Contains(err.Error(), "the budget is 1000 B") {
			t.Errorf("Load(%s) over budget: got %v, want ErrOverBudget", filepath.Base(path), err)
		}
		if _, err := Load(path, WithMemoryBudget(1<<30)); err != nil {
			t.Errorf("Load(%s) within budget: %v", filepath.Base(path), err)
		}
	}
}

// TestLoadCancel: a load whose caller has gone returns ctx's error instead
// of decoding on.
func TestLoadCancel(t *testing.T) {
	src := writeTestGGUF(t)
	hf := filepath.Join("..", "..", "testdata", "models", "tiny-gqa-tied-f32")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, path := range []string{src, hf} {
		if _, err := LoadContext(ctx, path); !errors.Is(err, context.Canceled) {
			t.Errorf("LoadContext(%s) with a cancelled context: got %v, want context.Canceled", filepath.Base(path), err)
		}
	}
}
