package model

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
)

// bitnetCppDir holds golden files made by bitnet.cpp (microsoft/BitNet
// 01eb415, x86 build) with tools/llamacpp-check/check-bitnetcpp.sh: i2_s.gguf
// is its llama-quantize's I2_S file (architecture bitnet-b1.58) of a small
// model trained with `bitnet train` (hidden 256, 2 layers, Opticks BPE 600);
// golden.json has llama-cli's greedy output for three prompts.
var bitnetCppDir = filepath.Join("testdata", "bitnetcpp")

type bitnetCppGolden struct {
	Tokens      int     `json:"tokens"`
	PPL         float64 `json:"bitnetcpp_ppl"`
	Generations []struct {
		Prompt string `json:"prompt"`
		Output string `json:"llama_cli_base64"`
	} `json:"generations"`
}

// TestBitNetCppI2SFile reads bitnet.cpp's I2_S file, checks that our writer
// produces the same tensor bytes for the weights it decodes to (codes and
// scale; bitnet.cpp leaves its 28 padding bytes uninitialised), and that
// greedy generation matches llama-cli's token for token.
func TestBitNetCppI2SFile(t *testing.T) {
	path := filepath.Join(bitnetCppDir, "i2_s.gguf")
	w, tok, err := ReadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok == nil || w.Config.HiddenSize != 256 || w.Config.HiddenAct != "relu2" {
		t.Fatalf("config %v, tokenizer %v", w.Config, tok)
	}
	ours := filepath.Join(t.TempDir(), "ours.gguf")
	if err := WriteGGUF(ours, w, tok, WithTernaryType(gguf.I2_S)); err != nil {
		t.Fatal(err)
	}
	theirs, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	mine, err := gguf.Open(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	if a, _ := mine.String(keyArch); a != GGUFArchBitNetB158 {
		t.Errorf("our architecture %q, want %q", a, GGUFArchBitNetB158)
	}
	i2s := 0
	for _, ti := range theirs.Tensors {
		_, want, err := theirs.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		gi, got, err := mine.TensorData(ti.Name)
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		if gi.Type != ti.Type {
			t.Errorf("%s: type %v, bitnet.cpp wrote %v", ti.Name, gi.Type, ti.Type)
			continue
		}
		n := len(want)
		if ti.Type == gguf.I2_S {
			i2s++
			n = int(ti.NumElements())/4 + 4 // codes and the float32 scale
		}
		if len(got) != len(want) || !bytes.Equal(got[:n], want[:n]) {
			t.Errorf("%s (%v): bytes differ from bitnet.cpp's", ti.Name, ti.Type)
		}
	}
	if i2s != 14 {
		t.Errorf("%d I2_S tensors, want 14", i2s)
	}

	raw, err := os.ReadFile(filepath.Join(bitnetCppDir, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g bitnetCppGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path, WithKVType(KVFloat32))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, gen := range g.Generations {
		want, err := base64.StdEncoding.DecodeString(gen.Output)
		if err != nil {
			t.Fatal(err)
		}
		ids := append([]int{m.Config().BOSTokenID}, m.Tokenizer().EncodeOrdinary(gen.Prompt)...)
		steps := []Step{{Seq: m.NewSequence(), Tokens: ids}}
		var out []int
		for len(out) < g.Tokens {
			if err := m.Forward(context.Background(), steps); err != nil {
				t.Fatal(err)
			}
			best := 0
			for i, v := range steps[0].Logits {
				if v > steps[0].Logits[best] {
					best = i
				}
			}
			if m.IsEOS(best) {
				break
			}
			out = append(out, best)
			steps[0].Tokens = []int{best}
		}
		// llama-cli ends its output with a blank line.
		if got := m.Tokenizer().Decode(out); got != strings.TrimSuffix(string(want), "\n\n") {
			t.Errorf("%q: generated\n%q\nllama-cli (bitnet.cpp) generated\n%q", gen.Prompt, got, want)
		}
	}
}
