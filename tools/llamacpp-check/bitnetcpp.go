package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// writeBitNetCpp writes the files check-bitnetcpp.sh gives bitnet.cpp:
// DIR/i2_s.gguf (our I2_S writer; architecture bitnet-b1.58) and
// DIR/f32.gguf, the same model with every tensor F32 (linears as T*s), which
// bitnet.cpp's llama-quantize turns into its own I2_S file.
func writeBitNetCpp(dir string, w *model.Weights, tok *tokenizer.Tokenizer, stdout io.Writer) error {
	i2s := filepath.Join(dir, "i2_s.gguf")
	if err := model.WriteGGUF(i2s, w, tok, model.WithTernaryType(gguf.I2_S), model.WithModelName("llamacpp-check i2_s")); err != nil {
		return err
	}
	fmt.Fprintln(stdout, i2s)
	f32 := filepath.Join(dir, "f32.gguf")
	if err := toF32(i2s, f32); err != nil {
		return err
	}
	fmt.Fprintln(stdout, f32)
	return nil
}

// toF32 copies a GGUF file with every tensor converted to F32 (I2_S as T*s)
// and general.file_type 0 (ALL_F32).
func toF32(src, dst string) error {
	f, err := gguf.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	wr := gguf.NewWriter()
	for _, kv := range f.KVs {
		if kv.Key == "general.file_type" {
			kv.Value = uint32(0)
		}
		if err := wr.AddKV(kv.Key, kv.Value); err != nil {
			return err
		}
	}
	for _, ti := range f.Tensors {
		_, data, err := f.TensorData(ti.Name)
		if err != nil {
			return err
		}
		n := int(ti.NumElements())
		var x []float32
		if ti.Type == gguf.I2_S {
			m, err := ternary.DecodeI2S(data, int(ti.Dims[1]), int(ti.Dims[0]), ternary.I2SBlock128)
			if err != nil {
				return fmt.Errorf("%s: %w", ti.Name, err)
			}
			x = make([]float32, 0, n)
			for _, t := range m.Unpack() {
				x = append(x, float32(t)*m.Scale)
			}
		} else if x, err = gguf.DecodeFloat32(ti.Type, data, n); err != nil {
			return fmt.Errorf("%s: %w", ti.Name, err)
		}
		b, err := gguf.EncodeFloat32(gguf.F32, x)
		if err != nil {
			return err
		}
		if err := wr.AddTensor(ti.Name, gguf.F32, ti.Dims, b); err != nil {
			return err
		}
	}
	return wr.WriteFile(dst)
}

// runSame compares the weights of two model files: the ternary codes and
// scales bit for bit, the float tensors within -tol (relative to the
// tensor's largest magnitude: an F16 file against an F32 one differs by
// fp16 rounding).
func runSame(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("same", flag.ContinueOnError)
	fs.SetOutput(stderr)
	a := fs.String("a", "", "first model (.gguf or Hugging Face directory)")
	b := fs.String("b", "", "second model")
	tol := fs.Float64("tol", 0, "largest relative difference of float tensors")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *a == "" || *b == "" {
		return fmt.Errorf("same: -a and -b are required\n%s", usage)
	}
	wa, _, err := model.LoadWeights(*a)
	if err != nil {
		return fmt.Errorf("same: %w", err)
	}
	wb, _, err := model.LoadWeights(*b)
	if err != nil {
		return fmt.Errorf("same: %w", err)
	}
	diffs := compareWeights(wa, wb, *tol)
	for _, d := range diffs {
		fmt.Fprintln(stdout, "differs:", d)
	}
	if len(diffs) > 0 {
		return errors.New("same: the weights differ")
	}
	fmt.Fprintf(stdout, "same weights: %d layers, ternary codes and scales identical, floats within %g\n", len(wa.Layers), *tol)
	return nil
}

// compareWeights lists what differs between a and b.
func compareWeights(a, b *model.Weights, tol float64) []string {
	if a.Config.HiddenSize != b.Config.HiddenSize || len(a.Layers) != len(b.Layers) || a.Config.VocabSize != b.Config.VocabSize {
		return []string{fmt.Sprintf("config %v vs %v", a.Config, b.Config)}
	}
	var out []string
	floats := func(name string, x, y []float32) {
		if len(x) != len(y) {
			out = append(out, fmt.Sprintf("%s: %d vs %d values", name, len(x), len(y)))
			return
		}
		var amax, dmax float64
		for i := range x {
			amax = math.Max(amax, math.Abs(float64(x[i])))
			dmax = math.Max(dmax, math.Abs(float64(x[i])-float64(y[i])))
		}
		if dmax > tol*amax {
			out = append(out, fmt.Sprintf("%s: largest difference %g (relative %g)", name, dmax, dmax/amax))
		}
	}
	floats("token_embd", a.Embed, b.Embed)
	floats("output_norm", a.Norm, b.Norm)
	for i := range a.Layers {
		la, lb := &a.Layers[i], &b.Layers[i]
		floats(fmt.Sprintf("blk.%d.attn_norm", i), la.AttnNorm, lb.AttnNorm)
		floats(fmt.Sprintf("blk.%d.attn_sub_norm", i), la.AttnSubNorm, lb.AttnSubNorm)
		floats(fmt.Sprintf("blk.%d.ffn_norm", i), la.FFNNorm, lb.FFNNorm)
		floats(fmt.Sprintf("blk.%d.ffn_sub_norm", i), la.FFNSubNorm, lb.FFNSubNorm)
		for _, p := range []struct {
			name string
			x, y *ternary.Matrix
		}{{"attn_q", la.Q, lb.Q}, {"attn_k", la.K, lb.K}, {"attn_v", la.V, lb.V}, {"attn_output", la.O, lb.O},
			{"ffn_gate", la.Gate, lb.Gate}, {"ffn_up", la.Up, lb.Up}, {"ffn_down", la.Down, lb.Down}} {
			if !slices.Equal(p.x.Codes, p.y.Codes) || p.x.Scale != p.y.Scale {
				out = append(out, fmt.Sprintf("blk.%d.%s: codes equal %v, scale %v vs %v", i, p.name, slices.Equal(p.x.Codes, p.y.Codes), p.x.Scale, p.y.Scale))
			}
		}
	}
	return out
}

// runGen prints the greedy continuation of a prompt as raw bytes (no UTF-8
// repair), BOS first when the model has one, as llama-cli --temp 0 prints
// it; -ids prints the token ids instead.
func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "", "model .gguf file or Hugging Face directory (required)")
	prompt := fs.String("prompt", "", "prompt text (required)")
	n := fs.Int("n", 24, "tokens to generate")
	ids := fs.Bool("ids", false, "print the ids, comma-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *modelPath == "" || *prompt == "" {
		return fmt.Errorf("gen: -model and -prompt are required\n%s", usage)
	}
	m, err := model.Load(*modelPath, model.WithKVType(model.KVFloat32))
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	defer m.Close()
	out, err := greedy(ctx, m, *prompt, *n)
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	if *ids {
		s := make([]string, len(out))
		for i, id := range out {
			s[i] = strconv.Itoa(id)
		}
		_, err = fmt.Fprintln(stdout, strings.Join(s, ","))
		return err
	}
	_, err = io.WriteString(stdout, m.Tokenizer().Decode(out))
	return err
}

// greedy returns up to n argmax tokens after BOS and the prompt, stopping at
// an EOS token.
func greedy(ctx context.Context, m *model.Model, prompt string, n int) ([]int, error) {
	tokens := m.Tokenizer().EncodeOrdinary(prompt)
	if bos := m.Config().BOSTokenID; bos >= 0 {
		tokens = append([]int{bos}, tokens...)
	}
	steps := []model.Step{{Seq: m.NewSequence(), Tokens: tokens}}
	var out []int
	for len(out) < n {
		if err := m.Forward(ctx, steps); err != nil {
			return nil, err
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
	return out, nil
}
