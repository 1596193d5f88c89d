package model

import (
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// sameTernary fails unless every linear of got has want's codes and scale
// (want's scale rounded to fp16 when fp16 is set).
func sameTernary(t *testing.T, got, want *Weights, fp16 map[string]bool) {
	t.Helper()
	for i := range want.Layers {
		gl, wl := got.Layers[i].linears(got.Config), want.Layers[i].linears(want.Config)
		for k := range wl {
			g, w := *gl[k].m, *wl[k].m
			name := blockTensor(i, wl[k].part, "weight")
			if !slices.Equal(g.Codes, w.Codes) {
				t.Errorf("%s: codes differ", name)
			}
			ws := w.Scale
			if fp16[name] {
				ws = half.FromFloat16(half.ToFloat16(ws))
			}
			if g.Scale != ws {
				t.Errorf("%s: scale %v, want %v", name, g.Scale, ws)
			}
		}
	}
}

// TestGGUFI2SRoundTrip writes every linear as I2_S: the file has bitnet.cpp's
// bitnet-b1.58 architecture and reads back bit for bit (I2_S keeps the
// float32 scale).
func TestGGUFI2SRoundTrip(t *testing.T) {
	w := ggufWeights(t, ggufConfig256(true), 21)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(path, w, opticksTokenizer(t), WithTernaryType(gguf.I2_S), WithScaleTensors(true)); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	arch, _ := f.String(keyArch)
	ft, _ := f.Uint32(keyFileType)
	emb, _ := f.Uint32(GGUFArchBitNetB158 + sfxEmbedding)
	q, _ := f.Tensor("blk.0.attn_q.weight")
	_, scale := f.Tensor("blk.0.attn_q.scale")
	f.Close()
	if arch != GGUFArchBitNetB158 || ft != fileTypeI2_S || emb != 256 || q.Type != gguf.I2_S || scale {
		t.Errorf("got arch %q file_type %d embedding %d attn_q %v scale tensor %v; want bitnet-b1.58, 40, 256, I2_S, none",
			arch, ft, emb, q.Type, scale)
	}
	got, tok, err := ReadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok == nil || got.Config.HiddenAct != "relu2" || got.Config.HiddenSize != 256 {
		t.Errorf("config %v, tokenizer %v", got.Config, tok)
	}
	sameTernary(t, got, w, nil)
}

// TestGGUFWidthFallback checks the type each width gets and that every
// fallback reads back.
func TestGGUFWidthFallback(t *testing.T) {
	tests := []struct {
		name   string
		hidden int
		ff     int
		opts   []GGUFOption
		arch   string
		want   map[string]gguf.Type // by tensor part, layer 0
	}{
		{"all 256", 256, 512, nil, GGUFArch, map[string]gguf.Type{"attn_q": gguf.TQ2_0, "ffn_down": gguf.TQ2_0}},
		{"128 to I2_S", 128, 384, nil, GGUFArchBitNetB158, map[string]gguf.Type{"attn_q": gguf.I2_S, "attn_output": gguf.I2_S, "ffn_down": gguf.I2_S}},
		{"384 mixes", 384, 512, []GGUFOption{WithTernaryType(gguf.TQ1_0)}, GGUFArchBitNetB158,
			map[string]gguf.Type{"attn_q": gguf.I2_S, "ffn_down": gguf.TQ1_0}},
		{"no I2_S", 128, 384, []GGUFOption{WithI2SFallback(false)}, GGUFArch, map[string]gguf.Type{"attn_q": gguf.Q8_0, "ffn_down": gguf.Q8_0}},
		{"64 to Q8_0", 64, 160, nil, GGUFArch, map[string]gguf.Type{"attn_q": gguf.Q8_0, "ffn_down": gguf.Q8_0}},
		{"I2_S asked, 96", 96, 256, []GGUFOption{WithTernaryType(gguf.I2_S)}, GGUFArchBitNetB158, map[string]gguf.Type{"attn_q": gguf.Q8_0, "ffn_down": gguf.I2_S}},
		{"48 to F16", 48, 128, nil, GGUFArchBitNetB158, map[string]gguf.Type{"attn_q": gguf.F16, "ffn_down": gguf.I2_S}},
		{"scale tensors", 64, 160, []GGUFOption{WithScaleTensors(true)}, GGUFArch, map[string]gguf.Type{"attn_q": gguf.Q8_0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ggufConfig256(true)
			c.HiddenSize, c.IntermediateSize, c.NumHeads, c.NumKVHeads, c.HeadDim = tc.hidden, tc.ff, 2, 1, tc.hidden/2
			w := ggufWeights(t, c, 33)
			plan, err := PlanGGUF(w, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Arch != tc.arch {
				t.Errorf("arch %q, want %q", plan.Arch, tc.arch)
			}
			fp16 := map[string]bool{}
			for _, ch := range plan.Tensors {
				part := strings.TrimSuffix(strings.TrimPrefix(ch.Name, "blk.0."), ".weight")
				if want, ok := tc.want[part]; ok && ch.Type != want {
					t.Errorf("%s (%dx%d): type %v, want %v (%s)", ch.Name, ch.Rows, ch.Cols, ch.Type, want, ch.Reason)
				}
				if fallback := ch.Type == gguf.Q8_0 || ch.Type == gguf.F16; fallback && ch.Reason == "" {
					t.Errorf("%s: fallback type %v without a reason", ch.Name, ch.Type)
				}
				fp16[ch.Name] = ch.Type != gguf.I2_S && tc.name != "scale tensors"
			}
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := WriteGGUF(path, w, nil, tc.opts...); err != nil {
				t.Fatal(err)
			}
			got, _, err := ReadGGUF(path)
			if err != nil {
				t.Fatal(err)
			}
			sameTernary(t, got, w, fp16)
		})
	}
}

// TestGGUFBitNetCppArchs reads a file under each architecture name bitnet.cpp
// writes, without the keys only our writer adds.
func TestGGUFBitNetCppArchs(t *testing.T) {
	w := ggufWeights(t, ggufConfig256(true), 5)
	src := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(src, w, opticksTokenizer(t), WithTernaryType(gguf.I2_S)); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{GGUFArchBitNet25, GGUFArchBitNetB158, GGUFArch} {
		dst := filepath.Join(t.TempDir(), arch+".gguf")
		rewriteGGUF(t, src, dst, func(kv *gguf.KV) bool {
			switch {
			case kv.Key == keyArch:
				kv.Value = arch
			case kv.Key == keyMeshArch || kv.Key == keyMeshEOS || strings.HasSuffix(kv.Key, sfxHiddenAct):
				return false
			case strings.HasPrefix(kv.Key, GGUFArchBitNetB158+"."):
				kv.Key = arch + strings.TrimPrefix(kv.Key, GGUFArchBitNetB158)
			}
			return true
		}, nil)
		got, _, err := ReadGGUF(dst)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if got.Config.HiddenAct != "relu2" || got.Config.Architecture != ArchBitNet {
			t.Errorf("%s: config %v", arch, got.Config)
		}
		sameTernary(t, got, w, nil)
	}
}

// TestGGUFSentencePieceTokenizer writes the real LLaMA 2 vocabulary (1bitLLM's)
// as GGUF's "llama" tokenizer and reads it back: same ids as tokenizer.json.
func TestGGUFSentencePieceTokenizer(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "tokenizer", "llama2.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	c := ggufConfig256(true)
	c.VocabSize, c.BOSTokenID, c.EOSTokenIDs = 32000, 1, []int{2}
	w := ggufWeights(t, c, 3)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(path, w, tok); err != nil {
		t.Fatal(err)
	}
	gf, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	model, _ := gf.String(keyTokModel)
	prefix, _ := gf.Bool(keyTokSpacePrefix)
	gf.Close()
	if model != "llama" || !prefix {
		t.Errorf("tokenizer.ggml.model %q add_space_prefix %v, want llama true", model, prefix)
	}
	_, back, err := ReadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Hello world", " Light is refracted.\n\nIt's 1704; naïve 😀", "<s>x</s> y<unk>"} {
		if got, want := back.Encode(s), tok.Encode(s); !slices.Equal(got, want) {
			t.Errorf("Encode(%q) = %v, want %v", s, got, want)
		}
		if got, want := back.Decode(tok.Encode(s)), tok.Decode(tok.Encode(s)); got != want {
			t.Errorf("Decode: %q, want %q", got, want)
		}
	}
}

// TestGGUFFamilies writes every family (odd widths: the ternary linears fall
// back to I2_S, Q8_0 or F16) and reads it back: the same configuration,
// norms and ternary weights, so the same logits; and llama's q/k rows are
// stored in llama.cpp's interleaved order.
func TestGGUFFamilies(t *testing.T) {
	wantArch := map[Family]string{FamilyBitNet: GGUFArch, FamilyBitNetB158: GGUFArch, FamilyLlama: "llama", FamilyQwen3: "qwen3", FamilyGemma3: "gemma3"}
	for name, c := range familyConfigs() {
		t.Run(name, func(t *testing.T) {
			if err := CheckGGUF(c, gguf.TQ2_0); err != nil {
				t.Errorf("CheckGGUF: %v", err)
			}
			w := randomWeights(t, c, 17)
			plan, err := PlanGGUF(w)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Arch != wantArch[c.Family()] && plan.Arch != GGUFArchBitNetB158 {
				t.Errorf("arch %q, want %q", plan.Arch, wantArch[c.Family()])
			}
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := WriteGGUF(path, w, nil); err != nil {
				t.Fatal(err)
			}
			got, _, err := ReadGGUF(path)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config.String() != c.String() || !reflect.DeepEqual(got.Config.RopeScaling, c.RopeScaling) || got.Config.Pooling != c.Pooling || got.Config.ProjNorms != c.ProjNorms ||
				!slices.Equal(got.Config.SlidingLayers, c.SlidingLayers) || got.Config.QueryPreAttnScalar != c.QueryPreAttnScalar {
				t.Errorf("config\n got %v %+v\nwant %v %+v", got.Config, got.Config, c, c)
			}
			fp16 := map[string]bool{}
			for _, ch := range plan.Tensors {
				fp16[ch.Name] = ch.Type != gguf.I2_S
			}
			sameTernary(t, got, w, fp16)
			for i := range w.Layers {
				gs, ws := got.Layers[i].NormSpecs(c), w.Layers[i].NormSpecs(c)
				for k := range ws {
					if !slices.Equal(*gs[k].V, *ws[k].V) {
						t.Errorf("layer %d %s differs", i, ws[k].Name)
					}
				}
			}
		})
	}
}

// TestGGUFLlamaPermutation pins llama.cpp's q/k row order for the llama
// architecture: HF row h*hd + half*hd/2 + j is GGUF row h*hd + 2*j + half.
func TestGGUFLlamaPermutation(t *testing.T) {
	rows, cols, hd := 8, 128, 4
	v := make([]int8, rows*cols)
	for r := 0; r < rows; r++ {
		v[r*cols+r] = 1 // row r marked in column r
	}
	m, err := ternary.Pack(rows, cols, v, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := permuteRows(m, hd, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []int{0, 2, 1, 3, 4, 6, 5, 7} // GGUF row g holds HF row want[g]
	for g, hf := range want {
		if p.Code(g, hf) != 2 {
			t.Errorf("GGUF row %d does not hold HF row %d", g, hf)
		}
	}
	back, err := permuteRows(p, hd, false)
	if err != nil || !slices.Equal(back.Codes, m.Codes) {
		t.Errorf("inverse permutation differs (%v)", err)
	}
}

// TestGGUFForeignFamilies reads qwen3 and gemma3 files without our
// bitnet-mesh.config key, as bitnet.cpp's embedding converter writes them.
func TestGGUFForeignFamilies(t *testing.T) {
	for _, name := range []string{"qwen3", "gemma3"} {
		c := familyConfigs()[name]
		w := randomWeights(t, c, 5)
		src := filepath.Join(t.TempDir(), "m.gguf")
		if err := WriteGGUF(src, w, nil); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "foreign.gguf")
		rewriteGGUF(t, src, dst, func(kv *gguf.KV) bool {
			return !strings.HasPrefix(kv.Key, "bitnet-mesh.")
		}, nil)
		got, _, err := ReadGGUF(dst)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g := got.Config
		if g.Family() != c.Family() || g.HiddenAct != c.HiddenAct || !g.ProjNorms || g.Pooling != PoolLast || !g.NormalizeEmbeddings {
			t.Errorf("%s: config %v %+v", name, g, g)
		}
		if name == "gemma3" && (g.SlidingWindow != c.SlidingWindow || len(g.SlidingLayers) != c.NumLayers || g.RopeLocalTheta != 10000) {
			t.Errorf("gemma3: sliding %d %v local theta %v", g.SlidingWindow, g.SlidingLayers, g.RopeLocalTheta)
		}
	}
}

// TestGGUFI2SBlock64 loads a file whose I2_S tensors have the 64-weight
// blocks of bitnet.cpp's ARM builds: right with WithI2SBlock(64), different
// weights without it (the file does not say).
func TestGGUFI2SBlock64(t *testing.T) {
	w := ggufWeights(t, ggufConfig256(true), 8)
	src := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(src, w, nil, WithTernaryType(gguf.I2_S)); err != nil {
		t.Fatal(err)
	}
	// Rewrite every I2_S tensor in the ARM layout.
	dst := filepath.Join(t.TempDir(), "arm.gguf")
	rewriteGGUF(t, src, dst, nil, func(ti gguf.TensorInfo, d []byte) (gguf.Type, []byte, bool) {
		if ti.Type != gguf.I2_S {
			return ti.Type, d, true
		}
		m, err := ternary.DecodeI2S(d, int(ti.Dims[1]), int(ti.Dims[0]), ternary.I2SBlock128)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, len(d))
		copy(out[len(d)-32:], d[len(d)-32:]) // scale and padding
		for i, v := range m.Unpack() {
			j := i % 64
			out[i/64*16+j%16] |= byte(v+1) << (6 - 2*(j/16))
		}
		return ti.Type, out, true
	})
	m, err := Load(dst, WithI2SBlock(ternary.I2SBlock64))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ref, err := Load(src) // the same weights in the x86 layout
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	logits := func(mm *Model) []float32 {
		st := []Step{{Seq: mm.NewSequence(), Tokens: []int{1, 2, 3}}}
		if err := mm.Forward(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		return st[0].Logits
	}
	if a, b := logits(m), logits(ref); !slices.Equal(a, b) {
		t.Errorf("ARM-layout file with WithI2SBlock(64): logits differ from the weights'")
	}
	plain, err := Load(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if a, b := logits(plain), logits(ref); slices.Equal(a, b) {
		t.Errorf("ARM-layout file read as 128-blocks: same logits; the test does not tell the layouts apart")
	}
}
