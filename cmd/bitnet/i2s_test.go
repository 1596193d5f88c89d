package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/bitnet-mesh/bitnet-mesh/cmd/bitnet/internal/config"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model/modeltest"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// armI2S rewrites the I2_S GGUF src with the 64-weight blocks of ARM
// builds of bitnet.cpp.
func armI2S(t *testing.T, src string) string {
	dst := filepath.Join(t.TempDir(), "arm.gguf")
	modeltest.ARMI2S(t, src, dst)
	return dst
}

// TestI2SBlockFlag: --i2s-block / BITNET_I2S_BLOCK reach the loader of
// generate, perplexity and bench model: an ARM-layout I2_S file computes
// what the x86 one does with 64, something else without; other values are
// refused by name.
func TestI2SBlockFlag(t *testing.T) {
	x86 := genTinyGGUF(t, model.WithTernaryType(gguf.I2_S))
	arm := armI2S(t, x86)
	text := filepath.Join(t.TempDir(), "text.txt")
	if err := os.WriteFile(text, []byte("Of the Refractions of Light, and of the Colours which it exhibits."), 0o644); err != nil {
		t.Fatal(err)
	}
	ppl := func(env map[string]string, args ...string) (float64, error) {
		t.Helper()
		var out, errb strings.Builder
		err := runEnv(context.Background(), append([]string{"perplexity", "--text", text, "--json", "--threads", "1"}, args...),
			config.MapLookup(env), &out, &errb)
		if err != nil {
			return 0, err
		}
		var r struct {
			PPL float64 `json:"ppl"`
		}
		if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
			t.Fatalf("perplexity output %q: %v", out.String(), err)
		}
		return r.PPL, nil
	}
	want, err := ppl(nil, "--model", x86)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		same bool
	}{
		{"flag 64", nil, []string{"--model", arm, "--i2s-block", "64"}, true},
		{"env 64", map[string]string{"BITNET_I2S_BLOCK": "64"}, []string{"--model", arm}, true},
		{"flag over env", map[string]string{"BITNET_I2S_BLOCK": "128"}, []string{"--model", arm, "--i2s-block", "64"}, true},
		{"default 128", nil, []string{"--model", arm}, false},
		{"x86 file, 128", nil, []string{"--model", x86, "--i2s-block", "128"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ppl(tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if (got == want) != tc.same {
				t.Errorf("perplexity %v, x86 file %v: want same %v", got, want, tc.same)
			}
		})
	}
	if _, err := ppl(nil, "--model", arm, "--i2s-block", "32"); err == nil || !strings.Contains(err.Error(), "128 or 64") {
		t.Errorf("--i2s-block 32: got %v, want an error naming 128 or 64", err)
	}
	if _, err := ppl(map[string]string{"BITNET_I2S_BLOCK": "256"}, "--model", arm); err == nil || !strings.Contains(err.Error(), "BITNET_I2S_BLOCK") {
		t.Errorf("BITNET_I2S_BLOCK=256: got %v, want an error naming the variable", err)
	}

	greedy := func(path string, args ...string) string {
		t.Helper()
		out, _, err := genRun(t, append([]string{"generate", "--model", path, "--prompt", "Light is", "--temperature", "0", "--max-tokens", "8", "--threads", "1"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if a, b := greedy(arm, "--i2s-block", "64"), greedy(x86); a != b {
		t.Errorf("generate: ARM file with --i2s-block 64 %q, x86 file %q", a, b)
	}
	out, _, err := genRun(t, "bench", "model", "--model", arm, "--i2s-block", "64", "--threads", "1", "--prompt", "4", "--gen", "2",
		"--repeat", "1", "--probe-mib", "0", "--json")
	if err != nil || !strings.Contains(out, `"threads"`) {
		t.Errorf("bench model --i2s-block 64: %q, %v", out, err)
	}
}

// TestI2SBlockServer: up and serve take --i2s-block and BITNET_I2S_BLOCK
// into the mesh configuration (the inference nodes' loader option).
func TestI2SBlockServer(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		env  map[string]string
		args []string
		want ternary.I2SBlock
	}{
		{"up", nil, nil, ternary.I2SBlock128},
		{"up", map[string]string{"BITNET_I2S_BLOCK": "64"}, nil, ternary.I2SBlock64},
		{"serve", map[string]string{"BITNET_I2S_BLOCK": "64"}, []string{"--i2s-block", "128"}, ternary.I2SBlock128},
		{"serve", nil, []string{"--i2s-block", "64"}, ternary.I2SBlock64},
	} {
		settings := config.Server
		if tc.cmd == "up" {
			settings = upSettings()
		}
		c := &cobra.Command{Use: tc.cmd}
		set := config.Bind(c, settings...)
		if err := c.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		v, err := set.Resolve(config.MapLookup(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := meshConfig(v, config.MapLookup(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.I2SBlock != tc.want {
			t.Errorf("%s %v %v: I2SBlock %d, want %d", tc.cmd, tc.env, tc.args, cfg.I2SBlock, tc.want)
		}
	}
	var out, errb strings.Builder
	if err := runEnv(context.Background(), []string{"up", "--help"}, config.MapLookup(nil), &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "--i2s-block") || !strings.Contains(out.String(), "BITNET_I2S_BLOCK") {
		t.Errorf("up --help does not name --i2s-block and BITNET_I2S_BLOCK:\n%s", out.String())
	}
}
