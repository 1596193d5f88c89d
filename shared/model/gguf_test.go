package model

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

var updateGGUF = flag.Bool("update-gguf", false, "rewrite testdata/gguf_layout.golden")

// ggufConfig256 is the smallest GQA shape whose linears are whole TQ blocks.
func ggufConfig256(tied bool) Config {
	return Config{
		Architecture: ArchBitNet, VocabSize: 600, HiddenSize: 256, IntermediateSize: 512,
		NumLayers: 2, NumHeads: 4, NumKVHeads: 2, HeadDim: 64, MaxPositions: 64,
		RopeTheta: 500000, RMSNormEps: 1e-5, HiddenAct: "relu2", TieWordEmbeddings: tied,
		BOSTokenID: 598, EOSTokenIDs: []int{599},
	}
}

// ggufWeights returns random weights whose ternary rows mix -1, 0 and +1 and
// include one all-zero matrix row block (d = 0 in llama.cpp's encoding).
func ggufWeights(t testing.TB, c Config, seed uint64) *Weights {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	floats := func(n int, base, spread float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = base + spread*float32(r.NormFloat64())
		}
		return v
	}
	tern := func(rows, cols int) *ternary.Matrix {
		v := make([]int8, rows*cols)
		for i := range v {
			v[i] = int8(r.IntN(3)) - 1
		}
		clear(v[:cols]) // row 0 is all zero
		m, err := ternary.Pack(rows, cols, v, 0.01+0.05*r.Float32())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	h := c.HiddenSize
	w := &Weights{Config: c, Embed: floats(c.VocabSize*h, 0, 1), Norm: floats(h, 1, 0.1)}
	if !c.TieWordEmbeddings {
		w.Head = floats(c.VocabSize*h, 0, 0.5)
	}
	for i := 0; i < c.NumLayers; i++ {
		var l Layer
		for _, n := range l.NormSpecs(c) {
			if n.Want {
				*n.V = floats(n.N, 1, 0.1)
			}
		}
		for j, p := range l.Linears() {
			*p = tern(LinearShape(c, j))
		}
		w.Layers = append(w.Layers, l)
	}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	return w
}

func opticksTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.Load(filepath.Join("..", "..", "testdata", "tokenizer", "opticks-bpe600.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// roundFloats returns x as it reads back after encoding as typ.
func roundFloats(t testing.TB, typ gguf.Type, x []float32) []float32 {
	t.Helper()
	b, err := gguf.EncodeFloat32(typ, x)
	if err != nil {
		t.Fatal(err)
	}
	y, err := gguf.DecodeFloat32(typ, b, len(x))
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// asStored returns a copy of w with the embedding/head rounded to typ and,
// unless exact, every ternary scale rounded to fp16 — what a file keeps.
func asStored(t testing.TB, w *Weights, typ gguf.Type, exactScales bool) *Weights {
	t.Helper()
	cp := *w
	cp.Embed = roundFloats(t, typ, w.Embed)
	if w.Head != nil {
		cp.Head = roundFloats(t, typ, w.Head)
	}
	cp.Layers = slices.Clone(w.Layers)
	for i := range cp.Layers {
		for _, lin := range cp.Layers[i].linears(cp.Config) {
			m := **lin.m
			if !exactScales {
				m.Scale = half.FromFloat16(half.ToFloat16(m.Scale))
			}
			*lin.m = &m
		}
	}
	return &cp
}

// sameWeights reports the first difference between two models.
func sameWeights(t *testing.T, got, want *Weights) {
	t.Helper()
	gc, wc := got.Config, want.Config
	if !slices.Equal(gc.EOSTokenIDs, wc.EOSTokenIDs) {
		t.Errorf("EOSTokenIDs: got %v, want %v", gc.EOSTokenIDs, wc.EOSTokenIDs)
	}
	gc.EOSTokenIDs, wc.EOSTokenIDs = nil, nil
	if fmt.Sprintf("%+v", gc) != fmt.Sprintf("%+v", wc) {
		t.Fatalf("config:\ngot  %+v\nwant %+v", gc, wc)
	}
	eqF := func(name string, a, b []float32) {
		t.Helper()
		if !slices.Equal(a, b) {
			t.Errorf("%s differs (max abs diff %g, len %d vs %d)", name, maxAbsDiff(a, b), len(a), len(b))
		}
	}
	eqF("embed", got.Embed, want.Embed)
	eqF("head", got.Head, want.Head)
	eqF("norm", got.Norm, want.Norm)
	for i := range want.Layers {
		gl, wl := &got.Layers[i], &want.Layers[i]
		for k, n := range wl.norms(wc) {
			eqF(n.part, *gl.norms(gc)[k].v, *n.v)
		}
		for k, lin := range wl.linears(wc) {
			g, w := *gl.linears(gc)[k].m, *lin.m
			if g.Rows != w.Rows || g.Cols != w.Cols || g.Scale != w.Scale || !slices.Equal(g.Codes, w.Codes) {
				t.Errorf("layer %d %s: got %dx%d scale %v, want %dx%d scale %v (codes equal: %v)",
					i, lin.part, g.Rows, g.Cols, g.Scale, w.Rows, w.Cols, w.Scale, slices.Equal(g.Codes, w.Codes))
			}
		}
	}
}

// logitsOf runs tokens through a model built from w with exact float heads.
func logitsOf(t *testing.T, w *Weights, tokens []int) []float32 {
	t.Helper()
	m, err := New(w, nil, WithHeadInt8(false))
	return modelLogits(t, m, err, tokens)
}

// modelLogits returns m's logits for every position of tokens and closes m.
func modelLogits(t *testing.T, m *Model, err error, tokens []int) []float32 {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	steps := []Step{{Seq: m.NewSequence(), Tokens: tokens, AllLogits: true}}
	if err := m.Forward(context.Background(), steps); err != nil {
		t.Fatal(err)
	}
	return steps[0].Logits
}

func TestGGUFRoundTrip(t *testing.T) {
	tok := opticksTokenizer(t)
	tokens := randomTokens(rand.New(rand.NewPCG(3, 3)), 12, 600)
	tests := []struct {
		name  string
		tied  bool
		opts  []GGUFOption
		float gguf.Type
		exact bool
	}{
		{"exact-f32-scale-tensors", true, []GGUFOption{WithFloatType(gguf.F32), WithScaleTensors(true)}, gguf.F32, true},
		{"default-tq2-f16", true, nil, gguf.F16, false},
		{"tq1-bf16-untied", false, []GGUFOption{WithTernaryType(gguf.TQ1_0), WithFloatType(gguf.BF16)}, gguf.BF16, false},
		{"tq2-q8-untied-scale-tensors", false, []GGUFOption{WithFloatType(gguf.Q8_0), WithScaleTensors(true)}, gguf.Q8_0, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := ggufWeights(t, ggufConfig256(tc.tied), uint64(i))
			path := filepath.Join(t.TempDir(), "m.gguf")
			if err := WriteGGUF(path, w, tok, tc.opts...); err != nil {
				t.Fatal(err)
			}
			got, gotTok, err := ReadGGUF(path)
			if err != nil {
				t.Fatal(err)
			}
			want := asStored(t, w, tc.float, tc.exact)
			sameWeights(t, got, want)
			if gl, wl := logitsOf(t, got, tokens), logitsOf(t, want, tokens); !slices.Equal(gl, wl) {
				t.Errorf("logits differ: max abs diff %g", maxAbsDiff(gl, wl))
			}
			if tc.exact && tc.float == gguf.F32 {
				if gl, wl := logitsOf(t, got, tokens), logitsOf(t, w, tokens); !slices.Equal(gl, wl) {
					t.Errorf("logits differ from the source model: max abs diff %g", maxAbsDiff(gl, wl))
				}
			}
			// Load quantises the int8 head straight from the file's rows:
			// the same model as New over ReadGGUF's float32 weights.
			m, err := New(got, nil)
			viaNew := modelLogits(t, m, err, tokens)
			m, err = Load(path)
			if viaLoad := modelLogits(t, m, err, tokens); !slices.Equal(viaLoad, viaNew) {
				t.Errorf("Load's logits differ from New's over ReadGGUF: max abs diff %g", maxAbsDiff(viaLoad, viaNew))
			}
			if gotTok == nil {
				t.Fatal("tokenizer: got nil")
			}
			if !slices.Equal(gotTok.Tokens(), tok.Tokens()) || !slices.Equal(gotTok.Merges(), tok.Merges()) {
				t.Errorf("tokenizer vocabulary or merges differ after the round trip")
			}
			text := "Light is refracted <|begin_of_text|> by prisms, said Newton in 1704."
			if g, w := gotTok.Encode(text), tok.Encode(text); !slices.Equal(g, w) {
				t.Errorf("Encode(%q): got %v, want %v", text, g, w)
			}
		})
	}
}

// TestGGUFLayout pins the keys, tensor names, types and dims that llama.cpp's
// bitnet loader reads (golden file; -update-gguf rewrites it).
func TestGGUFLayout(t *testing.T) {
	w := ggufWeights(t, ggufConfig256(true), 1)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(path, w, opticksTokenizer(t)); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	for _, kv := range f.KVs {
		switch v := kv.Value.(type) {
		case []string:
			b.WriteString(kv.Key + " = [" + strings.Join(v[:min(3, len(v))], " ") + " ...] (" + itoa(len(v)) + ")\n")
		case []int32:
			b.WriteString(kv.Key + " = []int32 (" + itoa(len(v)) + ")\n")
		default:
			b.WriteString(kv.Key + " = " + strings.TrimSpace(strings.ReplaceAll(fmtValue(v), "\n", " ")) + "\n")
		}
	}
	for _, ti := range f.Tensors {
		b.WriteString(ti.Name + " " + ti.Type.String() + " " + fmtValue(ti.Dims) + "\n")
	}
	golden := filepath.Join("testdata", "gguf_layout.golden")
	if *updateGGUF {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-gguf)", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("layout differs from %s:\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestGGUFFloatTernary reads linears stored as floats holding T*s, as
// llama.cpp's converter writes them before quantization.
func TestGGUFFloatTernary(t *testing.T) {
	w := ggufWeights(t, ggufConfig256(true), 4)
	src := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(src, w, nil, WithFloatType(gguf.F32)); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []gguf.Type{gguf.F32, gguf.F16, gguf.BF16} {
		t.Run(typ.String(), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "f.gguf")
			rewriteGGUF(t, src, dst, nil, func(ti gguf.TensorInfo, data []byte) (gguf.Type, []byte, bool) {
				if ti.Name != "blk.1.ffn_up.weight" {
					return ti.Type, data, true
				}
				m := w.Layers[1].Up
				x := make([]float32, 0, m.Rows*m.Cols)
				for _, v := range m.Unpack() {
					x = append(x, float32(v)*m.Scale)
				}
				b, err := gguf.EncodeFloat32(typ, x)
				if err != nil {
					t.Fatal(err)
				}
				return typ, b, true
			})
			got, _, err := ReadGGUF(dst)
			if err != nil {
				t.Fatal(err)
			}
			g, want := got.Layers[1].Up, w.Layers[1].Up
			if !slices.Equal(g.Codes, want.Codes) {
				t.Errorf("codes differ")
			}
			wantScale := roundFloats(t, typ, []float32{want.Scale})[0]
			if g.Scale != wantScale {
				t.Errorf("scale: got %v, want %v", g.Scale, wantScale)
			}
		})
	}
}

func TestGGUFErrors(t *testing.T) {
	w := ggufWeights(t, ggufConfig256(true), 5)
	dir := t.TempDir()
	src := filepath.Join(dir, "m.gguf")
	if err := WriteGGUF(src, w, opticksTokenizer(t)); err != nil {
		t.Fatal(err)
	}
	setKV := func(key string, v any) func(*gguf.KV) bool {
		return func(kv *gguf.KV) bool {
			if kv.Key == key {
				kv.Value = v
			}
			return true
		}
	}
	dropKV := func(key string) func(*gguf.KV) bool {
		return func(kv *gguf.KV) bool { return kv.Key != key }
	}
	dropTensor := func(name string) func(gguf.TensorInfo, []byte) (gguf.Type, []byte, bool) {
		return func(ti gguf.TensorInfo, d []byte) (gguf.Type, []byte, bool) { return ti.Type, d, ti.Name != name }
	}
	tests := []struct {
		name    string
		kv      func(*gguf.KV) bool
		tensor  func(gguf.TensorInfo, []byte) (gguf.Type, []byte, bool)
		wantErr []string
	}{
		{"wrong arch", setKV(keyArch, "falcon"), nil, []string{"general.architecture", `"falcon"`, `"bitnet" "bitnet-25" "bitnet-b1.58" "llama" "qwen3" "gemma3"`}},
		{"arch without its keys", setKV(keyArch, "llama"), nil, []string{"missing key llama.embedding_length"}},
		{"missing key", dropKV(keyBlockCount), nil, []string{"missing key bitnet.block_count"}},
		{"missing tensor", nil, dropTensor("blk.1.ffn_down.weight"), []string{"missing tensors", "blk.1.ffn_down.weight"}},
		{"shape mismatch", setKV(keyFeedForward, uint32(768)), nil, []string{"blk.0.ffn_sub_norm.weight has dims [512], want [768]"}},
		{"too few layers", setKV(keyBlockCount, uint32(1)), nil, []string{"unexpected tensor blk.1."}},
		{"bad activation", setKV(keyHiddenAct, "gelu_new"), nil, []string{"gelu_new"}},
		{"bad tokenizer model", setKV(keyTokModel, "bert"), nil, []string{"tokenizer.ggml.model", `"bert"`}},
		{"unknown pre-tokenizer", setKV(keyTokPre, "deepseek-llm"), nil, []string{"tokenizer.ggml.pre", `"deepseek-llm"`}},
		{"missing pre-tokenizer", dropKV(keyTokPre), nil, []string{"missing key tokenizer.ggml.pre"}},
		{"eos out of range", setKV(keyMeshEOS, []int32{100000}), nil, []string{"eos_token_id 100000"}},
		{"unsupported ternary type", nil, func(ti gguf.TensorInfo, d []byte) (gguf.Type, []byte, bool) {
			if ti.Name == "blk.0.attn_q.weight" {
				return gguf.Q4_0, make([]byte, 256*256/32*18), true
			}
			return ti.Type, d, true
		}, []string{"blk.0.attn_q.weight", "Q4_0", "not supported"}},
		{"not ternary floats", nil, func(ti gguf.TensorInfo, d []byte) (gguf.Type, []byte, bool) {
			if ti.Name == "blk.0.attn_k.weight" {
				x := make([]float32, 128*256)
				x[0], x[1] = 1, 0.5
				b, _ := gguf.EncodeFloat32(gguf.F32, x)
				return gguf.F32, b, true
			}
			return ti.Type, d, true
		}, []string{"blk.0.attn_k.weight", "not ternary"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(dir, "e"+itoa(i)+".gguf")
			rewriteGGUF(t, src, dst, tc.kv, tc.tensor)
			_, _, err := ReadGGUF(dst)
			_, errLoad := Load(dst) // the int8-head path
			for _, err := range []error{err, errLoad} {
				if err == nil {
					t.Fatalf("got no error, want one containing %q", tc.wantErr)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 10, 100, len(data) / 2, len(data) - 1} {
			p := filepath.Join(dir, "t.gguf")
			if err := os.WriteFile(p, data[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ReadGGUF(p); err == nil {
				t.Errorf("%d of %d bytes: got no error", n, len(data))
			}
			if _, err := Load(p); err == nil {
				t.Errorf("Load of %d of %d bytes: got no error", n, len(data))
			}
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, _, err := ReadGGUF(filepath.Join(dir, "nope.gguf"))
		if err == nil || !strings.Contains(err.Error(), "nope.gguf") {
			t.Errorf("got %v, want an error naming the file", err)
		}
	})
}

func TestWriteGGUFErrors(t *testing.T) {
	tok := opticksTokenizer(t)
	small := ggufWeights(t, ggufConfig256(true), 6)
	smallVocab := ggufConfig256(true)
	smallVocab.VocabSize, smallVocab.BOSTokenID, smallVocab.EOSTokenIDs = 300, 1, nil
	tests := []struct {
		name    string
		w       *Weights
		opts    []GGUFOption
		wantErr []string
	}{
		{"tokenizer larger than vocab", ggufWeights(t, smallVocab, 8), nil, []string{"600 tokens", "vocab_size = 300"}},
		{"bad ternary type", small, []GGUFOption{WithTernaryType(gguf.Q8_0)}, []string{"Q8_0", "TQ2_0, TQ1_0 or I2_S"}},
		{"bad float type", small, []GGUFOption{WithFloatType(gguf.Q4_0)}, []string{"Q4_0", "F32, F16, BF16 or Q8_0"}},
		{"invalid weights", &Weights{Config: ggufConfig256(true)}, nil, []string{"embed_tokens"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteGGUF(filepath.Join(t.TempDir(), "m.gguf"), tc.w, tok, tc.opts...)
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tc.wantErr)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// rewriteGGUF copies src to dst through the given edits (nil keeps all).
func rewriteGGUF(t testing.TB, src, dst string, kvEdit func(*gguf.KV) bool, tEdit func(gguf.TensorInfo, []byte) (gguf.Type, []byte, bool)) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var edit func(*gguf.TensorInfo, []byte) ([]byte, bool)
	if tEdit != nil {
		edit = func(ti *gguf.TensorInfo, data []byte) ([]byte, bool) {
			typ, d, keep := tEdit(*ti, data)
			ti.Type = typ
			return d, keep
		}
	}
	wr, err := gguf.Rewrite(f, kvEdit, edit)
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.WriteFile(dst); err != nil {
		t.Fatal(err)
	}
}

// fuzzLoadBudget bounds the memory one FuzzReadGGUF input may make the
// reader allocate: the reader's own check (the one Load's budget uses)
// refuses bigger claims before allocating, so no input can stall the
// fuzzer (a small file once claimed a million blocks and took 90 s).
const fuzzLoadBudget = 64 << 20

// FuzzReadGGUF feeds arbitrary bytes through the GGUF parser and the model
// reader: errors are fine, panics and huge allocations are not. Each input
// costs at most one parse of at most 1 MiB and a decode within
// fuzzLoadBudget.
func FuzzReadGGUF(f *testing.F) {
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		for _, head8 := range []bool{false, true} {
			w, h8, _, err := readGGUF(context.Background(), gf, nil, readOpts{head8: head8, budget: fuzzLoadBudget})
			if err == nil {
				if err := w.validate(h8); err != nil {
					t.Fatalf("readGGUF(head8 %t) returned invalid weights: %v", head8, err)
				}
				if (h8 != nil) != head8 {
					t.Fatalf("readGGUF(head8 %t) returned int8 head %t", head8, h8 != nil)
				}
			}
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func fmtValue(v any) string { return fmt.Sprint(v) }

// TestGGUFFuzzSeed writes the committed seed of FuzzReadGGUF with
// -update-gguf: a one-layer model with zero weights and a tiny tokenizer,
// as small as a complete file can be (about 10 KB): 256 wide so that five
// linears are TQ2_0, the two 2-column ones F16 floats (the converter's
// unquantised form), so both decoders are covered. The fuzzer mutates and
// minimises inputs of the seed's size; a 143 KB seed made each
// minimisation take most of a minute.
func TestGGUFFuzzSeed(t *testing.T) {
	if !*updateGGUF {
		t.Skip("run with -update-gguf to rewrite the seed")
	}
	c := Config{
		Architecture: ArchBitNet, VocabSize: 8, HiddenSize: 256, IntermediateSize: 2,
		NumLayers: 1, NumHeads: 1, NumKVHeads: 1, HeadDim: 2, MaxPositions: 16,
		RopeTheta: 10000, RMSNormEps: 1e-6, HiddenAct: "relu2", TieWordEmbeddings: true,
		BOSTokenID: 6, EOSTokenIDs: []int{7},
	}
	tok, err := tokenizer.FromGGUF([]string{"a", "b", "c", "Ġ", "ab", "abc", "<|bos|>", "<|eos|>"},
		[]int32{1, 1, 1, 1, 1, 1, 3, 3}, []string{"a b", "ab c"}, "llama-bpe")
	if err != nil {
		t.Fatal(err)
	}
	o := ggufOptions{ternary: gguf.TQ2_0, float: gguf.F16, name: "seed"}
	wr := gguf.NewWriter()
	if err := addConfigKVs(wr, c, o, GGUFArch, fileTypeTQ2_0); err != nil {
		t.Fatal(err)
	}
	if err := addTokenizerKVs(wr, tok, c); err != nil {
		t.Fatal(err)
	}
	ones := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = 1
		}
		return x
	}
	add := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	add(addFloatTensor(wr, tensorEmbed, gguf.F16, []uint64{256, 8}, make([]float32, 256*8)))
	var l Layer
	for _, n := range l.norms(c) {
		add(addFloatTensor(wr, blockTensor(0, n.part, "weight"), gguf.F32, []uint64{uint64(n.n)}, ones(n.n)))
	}
	for _, lin := range l.linears(c) {
		if lin.in%256 == 0 {
			m, err := ternary.New(lin.out, lin.in, 0.5)
			add(err)
			*lin.m = m
			add(addTernary(wr, 0, lin, gguf.TQ2_0, false))
		} else {
			add(addFloatTensor(wr, blockTensor(0, lin.part, "weight"), gguf.F16, []uint64{uint64(lin.in), uint64(lin.out)}, make([]float32, lin.in*lin.out)))
		}
	}
	add(addFloatTensor(wr, tensorNorm, gguf.F32, []uint64{256}, ones(256)))
	path := filepath.Join(t.TempDir(), "seed.gguf")
	add(wr.WriteFile(path))
	data, err := os.ReadFile(path)
	add(err)
	if _, _, err := ReadGGUF(path); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzReadGGUF")
	add(os.MkdirAll(dir, 0o755))
	corpus := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
	add(os.WriteFile(filepath.Join(dir, "model-1layer"), []byte(corpus), 0o644))
	t.Logf("seed: %d bytes", len(data))
}

// TestGGUFForeignKeys reads a file without our bitnet-mesh.* keys, as
// llama.cpp's converter writes it: EOS ids come from the tokenizer keys.
func TestGGUFForeignKeys(t *testing.T) {
	c := ggufConfig256(false)
	c.EOSTokenIDs = []int{599, 598}
	w := ggufWeights(t, c, 11)
	src := filepath.Join(t.TempDir(), "m.gguf")
	if err := WriteGGUF(src, w, opticksTokenizer(t)); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "foreign.gguf")
	rewriteGGUF(t, src, dst, func(kv *gguf.KV) bool {
		switch kv.Key {
		case keyMeshArch, keyMeshEOS, keyVocabSize, keyKeyLength, keyValueLength, keyRopeDims, keyHiddenAct:
			return false
		case keyTokPre:
			kv.Value = "llama3"
		}
		return true
	}, nil)
	got, tok, err := ReadGGUF(dst)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.Architecture != ArchBitNet || !slices.Equal(got.Config.EOSTokenIDs, []int{599}) ||
		got.Config.VocabSize != 600 || got.Config.HeadDim != 64 || got.Config.TieWordEmbeddings {
		t.Errorf("config: got %+v", got.Config)
	}
	if tok == nil || tok.PreTokenizer() != "llama-bpe" {
		t.Errorf("tokenizer: got %v", tok)
	}
	_, tok, err = ReadGGUF(src)
	if err != nil || tok == nil {
		t.Fatal(err)
	}
	noTok := filepath.Join(t.TempDir(), "notok.gguf")
	if err := WriteGGUF(noTok, w, nil); err != nil {
		t.Fatal(err)
	}
	if _, tok, err := ReadGGUF(noTok); err != nil || tok != nil {
		t.Errorf("file without a tokenizer: got %v, %v; want nil, nil", tok, err)
	}
}

// BenchmarkReadGGUF measures loading a mid-sized file (bytes/s of file).
func BenchmarkReadGGUF(b *testing.B) {
	c := ggufConfig256(true)
	c.HiddenSize, c.IntermediateSize, c.NumHeads, c.NumKVHeads, c.HeadDim = 1024, 2816, 8, 2, 128
	c.VocabSize, c.NumLayers, c.BOSTokenID, c.EOSTokenIDs = 16384, 4, -1, nil
	w := ggufWeights(b, c, 1)
	path := filepath.Join(b.TempDir(), "m.gguf")
	if err := WriteGGUF(path, w, nil); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := ReadGGUF(path); err != nil {
			b.Fatal(err)
		}
	}
}
