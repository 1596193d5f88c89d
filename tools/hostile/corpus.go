package hostile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// A Model is a set of files pushed as one version.
type Model struct {
	Name   string
	Format string            // MODEL_FORMAT_GGUF or MODEL_FORMAT_HF_SAFETENSORS
	Files  map[string][]byte // path in the version -> bytes
	// AtLoad: the registry accepts the files (they parse), the node must
	// refuse them when it loads them (NaN weights).
	AtLoad bool
}

// Corpus is the malformed-model corpus: GGUF files and Hugging Face
// directories (safetensors + config.json) that are truncated, claim huge
// counts or lengths, point past the end of the file, overlap, hold NaN
// weights or zero and odd dimensions. hfDir is a small valid Hugging Face
// BitNet directory (config.json, model.safetensors, tokenizer.json) the
// HF cases are made from.
func Corpus(hfDir string) ([]Model, error) {
	good, err := SmallGGUF(nil)
	if err != nil {
		return nil, err
	}
	var out []Model
	addG := func(name string, data []byte, atLoad bool) {
		out = append(out, Model{Name: "gguf-" + name, Format: "MODEL_FORMAT_GGUF", Files: map[string][]byte{"model.gguf": data}, AtLoad: atLoad})
	}
	f, err := gguf.Parse(good)
	if err != nil {
		return nil, err
	}
	rewrite := func(kv func(*gguf.KV) bool, tn func(*gguf.TensorInfo, []byte) []byte) []byte {
		b, err := rewriteGGUF(f, kv, tn)
		if err != nil {
			panic(err) // the edits below are all writable
		}
		return b
	}
	setKV := func(key string, v any) func(*gguf.KV) bool {
		return func(kv *gguf.KV) bool {
			if kv.Key == key {
				kv.Value = v
			}
			return true
		}
	}
	addG("truncated-header", good[:24], false)
	addG("truncated-data", good[:len(good)-1000], false)
	addG("huge-tensor-count", patchU64(good, 8, 1<<40), false)
	addG("huge-kv-count", patchU64(good, 16, 1<<40), false)
	addG("huge-string-length", patchU64(good, 24, 1<<62), false) // the first key's length
	addG("huge-block-count", rewrite(setKV("bitnet.block_count", uint32(1<<20)), nil), false)
	addG("no-architecture", rewrite(func(kv *gguf.KV) bool { return kv.Key != "general.architecture" }, nil), false)
	addG("vocab-size-zero", rewrite(setKV("bitnet.vocab_size", uint32(0)), nil), false)
	addG("zero-hidden", rewrite(setKV("bitnet.embedding_length", uint32(0)), nil), false)
	addG("odd-head-dim", rewrite(setKV("bitnet.attention.key_length", uint32(63)), nil), false)
	addG("dims-mismatch", rewrite(setKV("bitnet.feed_forward_length", uint32(768)), nil), false)
	for _, edit := range []struct {
		name string
		fn   func(ti []gguf.TensorInfo)
	}{
		{"offset-past-eof", func(ti []gguf.TensorInfo) { ti[len(ti)-1].Offset = 1 << 40 }},
		{"overlapping-tensors", func(ti []gguf.TensorInfo) { ti[1].Offset = ti[0].Offset }},
		{"zero-dim-tensor", func(ti []gguf.TensorInfo) { ti[0].Dims = []uint64{0, ti[0].Dims[1]} }},
	} {
		b, err := rawTensors(f, edit.fn)
		if err != nil {
			return nil, err
		}
		addG(edit.name, b, false)
	}
	addG("nan-norm", rewrite(nil, func(ti *gguf.TensorInfo, data []byte) []byte {
		if ti.Name != "blk.0.attn_norm.weight" {
			return data
		}
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint32(d[12:], math.Float32bits(float32(math.NaN())))
		return d
	}), true)

	hf, err := readDir(hfDir, "config.json", "model.safetensors", "tokenizer.json")
	if err != nil {
		return nil, err
	}
	addH := func(name string, replace map[string][]byte, atLoad bool) {
		files := map[string][]byte{}
		for k, v := range hf {
			files[k] = v
		}
		for k, v := range replace {
			files[k] = v
		}
		out = append(out, Model{Name: "hf-" + name, Format: "MODEL_FORMAT_HF_SAFETENSORS", Files: files, AtLoad: atLoad})
	}
	st := hf["model.safetensors"]
	cfg := func(edit map[string]any) []byte {
		var m map[string]any
		if err := json.Unmarshal(hf["config.json"], &m); err != nil {
			panic(err)
		}
		for k, v := range edit {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return b
	}
	addH("config-not-json", map[string][]byte{"config.json": []byte("{\"vocab_size\": ")}, false)
	addH("config-zero-hidden", map[string][]byte{"config.json": cfg(map[string]any{"hidden_size": 0})}, false)
	addH("config-odd-head-dim", map[string][]byte{"config.json": cfg(map[string]any{"head_dim": 15})}, false)
	addH("config-huge-shapes", map[string][]byte{"config.json": cfg(map[string]any{"hidden_size": 1 << 24, "intermediate_size": 1 << 24, "vocab_size": 1 << 24})}, false)
	addH("config-huge-layers", map[string][]byte{"config.json": cfg(map[string]any{"num_hidden_layers": 1 << 20})}, false)
	addH("safetensors-truncated", map[string][]byte{"model.safetensors": st[:len(st)/2]}, false)
	addH("safetensors-huge-header", map[string][]byte{"model.safetensors": patchU64(st, 0, 1<<62)}, false)
	for _, edit := range []struct {
		name string
		fn   func(h map[string]map[string]any, names []string)
	}{
		{"safetensors-offset-past-eof", func(h map[string]map[string]any, names []string) {
			h[names[0]]["data_offsets"] = []any{0, 1 << 40}
		}},
		{"safetensors-overlapping", func(h map[string]map[string]any, names []string) {
			h[names[1]]["data_offsets"] = h[names[0]]["data_offsets"]
		}},
		{"safetensors-bad-dtype", func(h map[string]map[string]any, names []string) { h[names[0]]["dtype"] = "F128" }},
		{"safetensors-zero-dims", func(h map[string]map[string]any, names []string) {
			h[names[0]]["shape"] = []any{0, 0}
		}},
	} {
		b, err := editSafetensors(st, edit.fn)
		if err != nil {
			return nil, err
		}
		addH(edit.name, map[string][]byte{"model.safetensors": b}, false)
	}
	nan, err := nanSafetensors(st, "model.layers.0.input_layernorm.weight")
	if err != nil {
		return nil, err
	}
	addH("nan-norm", map[string][]byte{"model.safetensors": nan}, true)
	return out, nil
}

func readDir(dir string, names ...string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("hostile corpus: %w", err)
		}
		out[n] = b
	}
	return out, nil
}

// patchU64 returns a copy of b with the little-endian uint64 at off set.
func patchU64(b []byte, off int, v uint64) []byte {
	c := bytes.Clone(b)
	binary.LittleEndian.PutUint64(c[off:], v)
	return c
}

// SmallGGUF is a valid one-block, 256-wide BitNet GGUF with zero weights
// (the base every GGUF case edits), rewritten by kv when it is not nil
// (see gguf.Rewrite).
func SmallGGUF(kv func(*gguf.KV) bool) ([]byte, error) {
	c := model.Config{Architecture: model.ArchBitNet, VocabSize: 8, HiddenSize: 256, IntermediateSize: 256,
		NumLayers: 1, NumHeads: 4, NumKVHeads: 1, HeadDim: 64, MaxPositions: 16, RopeTheta: 10000,
		RMSNormEps: 1e-6, HiddenAct: "relu2", TieWordEmbeddings: true, BOSTokenID: -1}
	ones := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = 1
		}
		return x
	}
	var l model.Layer
	for _, m := range []struct {
		dst       **ternary.Matrix
		rows, col int
	}{{&l.Q, 256, 256}, {&l.K, 64, 256}, {&l.V, 64, 256}, {&l.O, 256, 256}, {&l.Gate, 256, 256}, {&l.Up, 256, 256}, {&l.Down, 256, 256}} {
		t, err := ternary.New(m.rows, m.col, 0.5)
		if err != nil {
			return nil, err
		}
		*m.dst = t
	}
	l.AttnNorm, l.AttnSubNorm, l.FFNNorm, l.FFNSubNorm = ones(256), ones(256), ones(256), ones(256)
	w := &model.Weights{Config: c, Embed: make([]float32, 8*256), Norm: ones(256), Layers: []model.Layer{l}}
	dir, err := os.MkdirTemp("", "hostile-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "m.gguf")
	if err := model.WriteGGUF(path, w, nil); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil || kv == nil {
		return b, err
	}
	f, err := gguf.Parse(b)
	if err != nil {
		return nil, err
	}
	return rewriteGGUF(f, kv, nil)
}

// rewriteGGUF writes f again through the edits (nil keeps all).
func rewriteGGUF(f *gguf.File, kvEdit func(*gguf.KV) bool, tEdit func(*gguf.TensorInfo, []byte) []byte) ([]byte, error) {
	var edit func(*gguf.TensorInfo, []byte) ([]byte, bool)
	if tEdit != nil {
		edit = func(ti *gguf.TensorInfo, data []byte) ([]byte, bool) { return tEdit(ti, data), true }
	}
	wr, err := gguf.Rewrite(f, kvEdit, edit)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wr.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// rawTensors writes f's header byte by byte with its tensor descriptions
// edited (offsets, dims) as no writer would, and f's data section.
func rawTensors(f *gguf.File, edit func([]gguf.TensorInfo)) ([]byte, error) {
	w, err := rewriteGGUF(f, nil, nil) // a canonical file to take the KV bytes from
	if err != nil {
		return nil, err
	}
	g, err := gguf.Parse(w)
	if err != nil {
		return nil, err
	}
	ti := append([]gguf.TensorInfo(nil), g.Tensors...)
	for i := range ti {
		ti[i].Dims = append([]uint64(nil), ti[i].Dims...)
	}
	edit(ti)
	// The KVs end where the first tensor description starts: find its
	// name after the header.
	name := []byte(g.Tensors[0].Name)
	at := bytes.Index(w[24:], append(binary.LittleEndian.AppendUint64(nil, uint64(len(name))), name...))
	if at < 0 {
		return nil, fmt.Errorf("hostile corpus: tensor table not found")
	}
	out := bytes.Clone(w[:24+at])
	le := binary.LittleEndian
	for _, t := range ti {
		out = le.AppendUint64(out, uint64(len(t.Name)))
		out = append(out, t.Name...)
		out = le.AppendUint32(out, uint32(len(t.Dims)))
		for _, d := range t.Dims {
			out = le.AppendUint64(out, d)
		}
		out = le.AppendUint32(out, uint32(t.Type))
		out = le.AppendUint64(out, t.Offset)
	}
	for len(out)%g.Alignment != 0 {
		out = append(out, 0)
	}
	return append(out, w[g.DataOffset:]...), nil
}

// safetensors editing: the 8-byte header length, the JSON header, data.
func splitSafetensors(b []byte) (map[string]map[string]any, any, []byte, error) {
	if len(b) < 8 {
		return nil, nil, nil, fmt.Errorf("hostile corpus: short safetensors")
	}
	n := binary.LittleEndian.Uint64(b)
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, nil, nil, err
	}
	h := map[string]map[string]any{}
	var meta any
	for k, v := range raw {
		if k == "__metadata__" {
			_ = json.Unmarshal(v, &meta)
			continue
		}
		var t map[string]any
		if err := json.Unmarshal(v, &t); err != nil {
			return nil, nil, nil, err
		}
		h[k] = t
	}
	return h, meta, b[8+n:], nil
}

func joinSafetensors(h map[string]map[string]any, meta any, data []byte) []byte {
	all := map[string]any{}
	for k, v := range h {
		all[k] = v
	}
	if meta != nil {
		all["__metadata__"] = meta
	}
	hdr, _ := json.Marshal(all)
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(out, hdr...), data...)
}

func editSafetensors(b []byte, edit func(map[string]map[string]any, []string)) ([]byte, error) {
	h, meta, data, err := splitSafetensors(b)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	edit(h, names)
	return joinSafetensors(h, meta, data), nil
}

// nanSafetensors sets the first element of an F32 tensor to NaN.
func nanSafetensors(b []byte, name string) ([]byte, error) {
	h, meta, data, err := splitSafetensors(b)
	if err != nil {
		return nil, err
	}
	t, ok := h[name]
	if !ok || t["dtype"] != "F32" {
		return nil, fmt.Errorf("hostile corpus: no F32 tensor %s", name)
	}
	offs := t["data_offsets"].([]any)
	d := bytes.Clone(data)
	binary.LittleEndian.PutUint32(d[int(offs[0].(float64)):], math.Float32bits(float32(math.NaN())))
	return joinSafetensors(h, meta, d), nil
}
