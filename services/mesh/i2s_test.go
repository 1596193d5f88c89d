package mesh

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model/modeltest"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// writeI2SModels writes a random two-layer model whose linears are all
// bitnet.cpp I2_S, once with the x86 128-weight blocks and once with the
// 64-weight blocks of ARM builds' llama-quantize (same weights).
func writeI2SModels(t *testing.T) (x86, arm string) {
	t.Helper()
	x86 = modeltest.TinyGGUF(t, 4, 64, model.WithTernaryType(gguf.I2_S))
	arm = filepath.Join(t.TempDir(), "arm.gguf")
	modeltest.ARMI2S(t, x86, arm)
	return x86, arm
}

// TestUpI2SBlock: Config.I2SBlock (up/serve --i2s-block) reaches the
// inference node's loader: an ARM-layout I2_S file served by a mesh with
// 64-weight blocks generates what the x86 file does on a default mesh, and
// something else on the default mesh.
func TestUpI2SBlock(t *testing.T) {
	x86, arm := writeI2SModels(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	greedy := func(block ternary.I2SBlock, path string) string {
		t.Helper()
		e := startUp(t, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: t.TempDir(), Threads: 1, I2SBlock: block})
		c, err := sdk.Dial(ctx, e.GRPC.String(), sdk.WithRetry(3, 50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Registry().Push(ctx, "m", path, nil); err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		temp := float32(0)
		if _, err := c.Inference().GenerateText(ctx, &inferencev1.GenerateRequest{Model: "m@1", Prompt: "Light is", MaxTokens: 12, Temperature: &temp},
			func(s string) error { text.WriteString(s); return nil }); err != nil {
			t.Fatal(err)
		}
		return text.String()
	}
	want := greedy(0, x86)
	if got := greedy(ternary.I2SBlock64, arm); got != want || want == "" {
		t.Errorf("ARM file on a mesh with I2SBlock 64: %q, want the x86 file's %q", got, want)
	}
	if got := greedy(0, arm); got == want {
		t.Errorf("ARM file on a default mesh: %q, the same as the x86 file's: the test does not tell the layouts apart", got)
	}
	if err := Up(ctx, Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "-", DataDir: t.TempDir(), I2SBlock: 32}, nil); err == nil || !strings.Contains(err.Error(), "128 or 64") {
		t.Errorf("I2SBlock 32: got %v, want an error naming 128 or 64", err)
	}
}
