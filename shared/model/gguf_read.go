package model

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/half"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// ReadGGUF reads a BitNet GGUF file, llama.cpp's "bitnet" or bitnet.cpp's
// "bitnet-25" and "bitnet-b1.58" (see gguf.go for the layout), into Weights
// and, when the file carries a gpt2-style BPE vocabulary, a Tokenizer (nil
// otherwise). Every tensor is copied out of the mapping, so nothing refers to
// the file afterwards. Ternary linears may be TQ2_0, TQ1_0, bitnet.cpp's I2_S
// (128-weight blocks, as its converters and x86 builds write; repacked into
// the kernels' layout) or float tensors holding T*s (F32, F16, BF16, Q8_0:
// what converters write before quantizing, and PlanGGUF's fallbacks).
func ReadGGUF(path string) (*Weights, *tokenizer.Tokenizer, error) {
	w, _, tok, err := readGGUFFile(context.Background(), path, readOpts{})
	return w, tok, err
}

// readOpts are the loader's choices: head8 (see readGGUF), the block size
// of I2_S tensors (0: ternary.I2SBlock128) and a memory budget (0: none)
// the load's estimate is checked against before anything is allocated.
type readOpts struct {
	head8    bool
	i2sBlock ternary.I2SBlock
	budget   int64
}

// readGGUFFile opens and decodes path; see readGGUF.
func readGGUFFile(ctx context.Context, path string, ro readOpts) (*Weights, *kernels.Int8Matrix, *tokenizer.Tokenizer, error) {
	f, drop, closeFile, err := openGGUF(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	defer closeFile()
	w, h8, tok, err := readGGUF(ctx, f, drop, ro)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	return w, h8, tok, nil
}

// InspectGGUF reads a GGUF file's header only and checks that it is a
// model the loaders accept: its configuration (with Validate's limits) and
// its tensor set, names, dims and types. It allocates nothing the size of
// the weights and reads none of them, so it is cheap on any file. With
// tokenizer set it also builds the file's tokenizer, as a load would (the
// registry does when a GGUF version is pushed).
func InspectGGUF(path string, tokenizer bool) (Config, error) {
	f, _, closeFile, err := openGGUF(path)
	if err != nil {
		return Config{}, fmt.Errorf("gguf: %w", err)
	}
	defer closeFile()
	c, _, err := ggufLayout(f)
	if err == nil && tokenizer {
		_, err = ggufTokenizer(f, c.VocabSize)
	}
	if err != nil {
		return Config{}, fmt.Errorf("gguf: %w", err)
	}
	return c, nil
}

// ggufLayout is the header-only part of readGGUF: the configuration, with
// TieWordEmbeddings from the tensor set, checked to need the tensors the
// file has, in the dims the config implies, with ternary linears of a type
// readTernary decodes. It reports whether any linear is stored as floats
// (the load then makes float32 copies).
func ggufLayout(f *gguf.File) (Config, bool, error) {
	c, err := ggufConfig(f)
	if err != nil {
		return Config{}, false, err
	}
	// Tied unless the file has an output head.
	_, hasOutput := f.Tensor(tensorOutput)
	c.TieWordEmbeddings = !hasOutput
	// The tensor count bounds the block count before anything is built
	// per block (a 400 KB file once claimed a million blocks); a file a
	// few tensors short gets checkTensorSet's names instead.
	var l Layer
	need := 2 + (len(l.norms(c))+len(l.linears(c)))*c.NumLayers // embedding, norm; each block's
	if hasOutput {
		need++
	}
	if len(f.Tensors) < need/2 {
		return Config{}, false, fmt.Errorf("%w: %d tensors, but block_count = %d needs %d", ErrWeights, len(f.Tensors), c.NumLayers, need)
	}
	if err := checkTensorSet(f, c); err != nil {
		return Config{}, false, err
	}
	// Shapes in file-independent order, so the error is deterministic.
	h, v := uint64(c.HiddenSize), uint64(c.VocabSize)
	if _, _, err := tensor(f, tensorNorm, []uint64{h}); err != nil {
		return Config{}, false, err
	}
	floatLinears := false
	for i := 0; i < c.NumLayers; i++ {
		for _, n := range l.norms(c) {
			if _, _, err := tensor(f, blockTensor(i, n.part, "weight"), []uint64{uint64(n.n)}); err != nil {
				return Config{}, false, err
			}
		}
		for _, lin := range l.linears(c) {
			info, _, err := tensor(f, blockTensor(i, lin.part, "weight"), []uint64{uint64(lin.in), uint64(lin.out)})
			if err != nil {
				return Config{}, false, err
			}
			switch info.Type {
			case gguf.TQ2_0, gguf.TQ1_0, gguf.I2_S:
			case gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0:
				floatLinears = true
			default:
				return Config{}, false, fmt.Errorf("%w: tensor %s (%s): type %v is not supported for ternary weights (want TQ2_0, TQ1_0, I2_S, F32, F16, BF16 or Q8_0)",
					ErrWeights, info.Name, lin.hf, info.Type)
			}
		}
	}
	for _, name := range []string{tensorEmbed, tensorOutput} {
		if name == tensorOutput && !hasOutput {
			continue
		}
		if _, _, _, _, err := rowTensor(f, name, []uint64{h, v}); err != nil {
			return Config{}, false, err
		}
	}
	return c, floatLinears, nil
}

// readGGUF decodes an opened file; drop (when not nil) is called with each
// range of the data section once it has been copied out. With ro.head8 the
// output head (the embedding when tied) is quantised to int8 rows as it is
// decoded, a chunk of rows at a time, and returned instead of its float32
// copy: w.Head stays nil, and so does w.Embed when tied. A 2B model then
// never holds its 1.3 GB float32 embedding. The header is checked whole
// (ggufLayout) and the memory the decode needs against ro.budget before
// anything is allocated; ctx ends the decode between tensors.
func readGGUF(ctx context.Context, f *gguf.File, drop func(off, size uint64), ro readOpts) (*Weights, *kernels.Int8Matrix, *tokenizer.Tokenizer, error) {
	c, floatLinears, err := ggufLayout(f)
	if err != nil {
		return nil, nil, nil, err
	}
	head8 := ro.head8 && !c.IsEmbedding() // embedding models keep exact embeddings (see newModel)
	if err := CheckMemory("loading "+c.String(), c.loadBytes(head8, floatLinears), ro.budget); err != nil {
		return nil, nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, nil, err
	}
	w := &Weights{Config: c, Layers: make([]Layer, c.NumLayers)}
	hasOutput := !c.TieWordEmbeddings
	h, v := uint64(c.HiddenSize), uint64(c.VocabSize)
	jobs := []decodeJob{
		{name: tensorNorm, dims: []uint64{h}, run: func() (err error) { w.Norm, err = readFloat(f, tensorNorm, []uint64{h}); return err }},
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, n := range l.norms(c) {
			name, dims := blockTensor(i, n.part, "weight"), []uint64{uint64(n.n)}
			jobs = append(jobs, decodeJob{name: name, dims: dims, run: func() (err error) { *n.v, err = readFloat(f, name, dims); return err }})
		}
		for _, lin := range l.linears(c) {
			name, dims := blockTensor(i, lin.part, "weight"), []uint64{uint64(lin.in), uint64(lin.out)}
			perm := permutesQK(c.Family()) && (lin.part == "attn_q" || lin.part == "attn_k")
			jobs = append(jobs, decodeJob{name: name, dims: dims, run: func() (err error) {
				if *lin.m, err = readTernary(f, i, lin, ro.i2sBlock); err == nil && perm {
					*lin.m, err = permuteRows(*lin.m, c.HeadDim, false)
				}
				return err
			}})
		}
	}
	// The embedding and head are the largest tensors: decode them in chunks
	// of rows, in parallel, dropping each chunk's pages when done.
	headName := tensorEmbed
	if hasOutput {
		headName = tensorOutput
	}
	var h8 *kernels.Int8Matrix
	for _, big := range []struct {
		name string
		dst  *[]float32
	}{{tensorEmbed, &w.Embed}, {tensorOutput, &w.Head}} {
		if big.name == tensorOutput && !hasOutput {
			continue
		}
		var chunks []decodeJob
		var err error
		if head8 && big.name == headName {
			h8, chunks, err = int8RowChunks(f, big.name, []uint64{h, v})
		} else {
			chunks, err = rowChunks(f, big.name, []uint64{h, v}, big.dst)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		jobs = append(jobs, chunks...)
	}
	// The vocabulary (hundreds of thousands of strings) builds meanwhile.
	var tok *tokenizer.Tokenizer
	jobs = append(jobs, decodeJob{run: func() (err error) { tok, err = ggufTokenizer(f, c.VocabSize); return err }})
	if err := runJobs(ctx, jobs, f, drop); err != nil {
		return nil, nil, nil, err
	}
	if err := w.validate(h8); err != nil {
		return nil, nil, nil, err
	}
	return w, h8, tok, nil
}

// decodeJob decodes one tensor, or rows [r0, r1) of one when r1 > 0, into
// its place in a Weights (or, without a name, builds the tokenizer).
type decodeJob struct {
	name   string
	dims   []uint64
	run    func() error
	r0, r1 uint64
}

// runJobs runs the decoders on GOMAXPROCS goroutines and returns the error
// of the first failing job in order (ctx's error once ctx is done: the jobs
// not started are skipped); every goroutine has exited when it returns.
func runJobs(ctx context.Context, jobs []decodeJob, f *gguf.File, drop func(off, size uint64)) error {
	next := make(chan int)
	errs := make([]error, len(jobs))
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for k := range next {
				if failed.Load() {
					continue
				}
				if err := ctx.Err(); err != nil {
					errs[k] = err
					failed.Store(true)
				} else if errs[k] = jobs[k].run(); errs[k] != nil {
					failed.Store(true)
				} else if drop != nil {
					dropJob(f, jobs[k], drop)
				}
			}
		})
	}
	for k := range jobs {
		next <- k
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil && failed.Load() {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// dropJob releases the pages of the bytes a finished job read.
func dropJob(f *gguf.File, j decodeJob, drop func(off, size uint64)) {
	t, ok := f.Tensor(j.name)
	if !ok || j.name == "" {
		return
	}
	if j.r1 == 0 {
		drop(t.Offset, t.Size())
		return
	}
	row, err := t.Type.RowSize(t.Dims[0])
	if err == nil {
		drop(t.Offset+j.r0*row, (j.r1-j.r0)*row)
	}
}

// rowChunks allocates *dst for a 2-D float tensor and returns jobs that each
// decode about a million elements of it.
func rowChunks(f *gguf.File, name string, dims []uint64, dst *[]float32) ([]decodeJob, error) {
	info, data, rowBytes, step, err := rowTensor(f, name, dims)
	if err != nil {
		return nil, err
	}
	cols, rows := dims[0], dims[1]
	*dst = make([]float32, cols*rows)
	out := *dst
	var jobs []decodeJob
	for r0 := uint64(0); r0 < rows; r0 += step {
		r1 := min(rows, r0+step)
		jobs = append(jobs, decodeJob{name: name, dims: dims, r0: r0, r1: r1, run: func() error {
			if err := decodeInto(out[r0*cols:r1*cols], info.Type, data[r0*rowBytes:r1*rowBytes]); err != nil {
				return fmt.Errorf("%w: tensor %s (%v) rows %d-%d: %w", ErrWeights, name, info.Type, r0, r1, err)
			}
			return nil
		}})
	}
	return jobs, nil
}

// rowTensor checks a 2-D float tensor (dims: columns, rows) and returns its
// info, data and bytes per row, and the rows of one decode job (about a
// million elements).
func rowTensor(f *gguf.File, name string, dims []uint64) (info gguf.TensorInfo, data []byte, rowBytes, step uint64, err error) {
	info, data, err = tensor(f, name, dims)
	if err != nil {
		return info, nil, 0, 0, err
	}
	cols, rows := dims[0], dims[1]
	if rowBytes, err = info.Type.RowSize(cols); err != nil {
		return info, nil, 0, 0, fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
	}
	if uint64(len(data)) != rowBytes*rows {
		return info, nil, 0, 0, fmt.Errorf("%w: tensor %s has %d bytes, want %d", ErrWeights, name, len(data), rowBytes*rows)
	}
	return info, data, rowBytes, max(1, (1<<20)/cols), nil
}

// int8RowChunks allocates the int8 matrix of a 2-D float tensor and returns
// jobs that each decode about a million elements of it into scratch and
// quantise them per row exactly as quantizeInt8Rows does.
func int8RowChunks(f *gguf.File, name string, dims []uint64) (*kernels.Int8Matrix, []decodeJob, error) {
	info, data, rowBytes, step, err := rowTensor(f, name, dims)
	if err != nil {
		return nil, nil, err
	}
	cols, rows := dims[0], dims[1]
	m := newInt8Matrix(int(rows), int(cols))
	scratch := sync.Pool{New: func() any { s := make([]float32, min(step, rows)*cols); return &s }}
	var jobs []decodeJob
	for r0 := uint64(0); r0 < rows; r0 += step {
		r1 := min(rows, r0+step)
		jobs = append(jobs, decodeJob{name: name, dims: dims, r0: r0, r1: r1, run: func() error {
			buf := scratch.Get().(*[]float32)
			defer scratch.Put(buf)
			x := (*buf)[:(r1-r0)*cols]
			if err := decodeInto(x, info.Type, data[r0*rowBytes:r1*rowBytes]); err != nil {
				return fmt.Errorf("%w: tensor %s (%v) rows %d-%d: %w", ErrWeights, name, info.Type, r0, r1, err)
			}
			quantizeRowsInto(m, x, int(r0), int(r1))
			return nil
		}})
	}
	return m, jobs, nil
}

// decodeInto decodes len(dst) elements of typ into dst without allocating
// for the plain float types (a 2B model's embedding is 328M elements).
func decodeInto(dst []float32, typ gguf.Type, src []byte) error {
	le := binary.LittleEndian
	switch {
	case typ == gguf.F32 && len(src) >= 4*len(dst):
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case typ == gguf.F16 && len(src) >= 2*len(dst):
		for i := range dst {
			dst[i] = half.FromFloat16(le.Uint16(src[2*i:]))
		}
	case typ == gguf.BF16 && len(src) >= 2*len(dst):
		for i := range dst {
			dst[i] = half.FromBFloat16(le.Uint16(src[2*i:]))
		}
	default:
		x, err := gguf.DecodeFloat32(typ, src, len(dst))
		if err != nil {
			return err
		}
		copy(dst, x)
	}
	return nil
}

// ggufConfig builds a Config from the <arch>.* and tokenizer keys.
func ggufConfig(f *gguf.File) (Config, error) {
	arch, err := f.String(keyArch)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %s: %w", ErrConfig, keyArch, err)
	}
	if !slices.Contains(ggufArchs, arch) {
		return Config{}, fmt.Errorf("%w: %s = %q is not supported (want one of %q)", ErrConfig, keyArch, arch, ggufArchs)
	}
	r := kvReader{f: f}
	c := Config{Architecture: ArchBitNet, BOSTokenID: -1, HiddenAct: ActReLU2}
	ggufFamilyDefaults(f, arch, &c)
	if s, ok := r.str(keyMeshArch); ok {
		c.Architecture = s
	}
	c.HiddenSize = r.int(arch+sfxEmbedding, true, 0)
	c.NumLayers = r.int(arch+sfxBlockCount, true, 0)
	if win := r.int(arch+sfxSlidingWindow, false, 0); arch == "gemma3" && win > 0 && c.NumLayers > 0 {
		// llama.cpp's Gemma 3: every sixth layer attends globally.
		c.SlidingWindow, c.SlidingLayers = win, make([]bool, c.NumLayers)
		for i := range c.SlidingLayers {
			c.SlidingLayers[i] = (i+1)%6 != 0
		}
	}
	c.IntermediateSize = r.int(arch+sfxFeedForward, true, 0)
	c.NumHeads = r.int(arch+sfxHeadCount, true, 0)
	c.NumKVHeads = r.int(arch+sfxHeadCountKV, false, c.NumHeads)
	c.MaxPositions = r.int(arch+sfxContextLength, true, 0)
	hd := 0
	if c.NumHeads > 0 {
		hd = c.HiddenSize / c.NumHeads
	}
	c.HeadDim = r.int(arch+sfxKeyLength, false, hd)
	if vd := r.int(arch+sfxValueLength, false, c.HeadDim); vd != c.HeadDim && r.err == nil {
		r.err = fmt.Errorf("%w: %s = %d differs from %s = %d", ErrConfig, arch+sfxValueLength, vd, arch+sfxKeyLength, c.HeadDim)
	}
	if rd := r.int(arch+sfxRopeDims, false, c.HeadDim); rd != c.HeadDim && r.err == nil {
		r.err = fmt.Errorf("%w: %s = %d: partial rotary embeddings are not supported (head dim %d)", ErrConfig, arch+sfxRopeDims, rd, c.HeadDim)
	}
	c.RopeTheta = float64(r.float(arch+sfxRopeBase, false, 10000))
	c.RMSNormEps = r.float(arch+sfxRMSEps, true, 0)
	if s, ok := r.str(arch + sfxRopeScaling); ok && s != "none" && s != "linear" {
		r.err = cmp(r.err, fmt.Errorf("%w: %s = %q is not supported", ErrConfig, arch+sfxRopeScaling, s))
	}
	// linear scaling: rope.scaling.factor; llama3 (llama.cpp's converters):
	// the rope_freqs tensor's per-frequency divisors.
	linear := r.float(arch+sfxRopeFactor, false, 1)
	if linear == 0 {
		linear = 1
	}
	if !(linear >= 1) || math.IsInf(float64(linear), 0) {
		r.err = cmp(r.err, fmt.Errorf("%w: %s = %v must be >= 1 and finite", ErrConfig, arch+sfxRopeFactor, linear))
	} else if linear != 1 {
		c.RopeScaling = &RopeScaling{Type: "linear", Factor: float64(linear)}
	}
	if _, ok := f.Tensor(tensorRopeFreqs); ok && r.err == nil && c.HeadDim > 0 && c.HeadDim <= MaxDim {
		fs, err := readFloat(f, tensorRopeFreqs, []uint64{uint64(c.HeadDim / 2)})
		if err != nil {
			r.err = err
		} else {
			c.RopeScaling = &RopeScaling{Type: "factors", Factor: float64(linear), Factors: fs}
		}
	}
	if s, ok := r.str(arch + sfxHiddenAct); ok {
		c.HiddenAct = s
	}
	// vocab_size is optional in llama.cpp: the embedding's ne1 is the truth.
	c.VocabSize = r.int(arch+sfxVocabSize, false, 0)
	if c.VocabSize == 0 && r.has(arch+sfxVocabSize) {
		r.err = cmp(r.err, fmt.Errorf("%w: %s = 0 must be positive", ErrConfig, arch+sfxVocabSize))
	}
	if info, ok := f.Tensor(tensorEmbed); ok && len(info.Dims) == 2 {
		if c.VocabSize == 0 && info.Dims[1] <= MaxDim {
			c.VocabSize = int(info.Dims[1])
		}
	}
	if c.VocabSize == 0 && r.err == nil {
		r.err = fmt.Errorf("%w: missing %s and tensor %s", ErrConfig, arch+sfxVocabSize, tensorEmbed)
	}
	c.BOSTokenID = r.int(keyTokBOS, false, -1)
	if ids, ok := r.ints(keyMeshEOS); ok {
		c.EOSTokenIDs = ids
	} else {
		for _, k := range []string{keyTokEOS, keyTokEOT, keyTokEOM} {
			if id := r.int(k, false, -1); id >= 0 && !slices.Contains(c.EOSTokenIDs, id) {
				c.EOSTokenIDs = append(c.EOSTokenIDs, id)
			}
		}
	}
	if r.err != nil {
		return Config{}, r.err
	}
	if js, ok := r.str(keyMeshConfig); ok {
		// Our own files: what llama.cpp's keys cannot say comes from the
		// whole Config we stored; the keys stay authoritative for the rest.
		var mc Config
		if err := json.Unmarshal([]byte(js), &mc); err != nil {
			return Config{}, fmt.Errorf("%w: key %s: %w", ErrConfig, keyMeshConfig, err)
		}
		c.ProjNorms, c.ProjNormEps, c.QueryPreAttnScalar = mc.ProjNorms, mc.ProjNormEps, mc.QueryPreAttnScalar
		c.SlidingWindow, c.SlidingLayers, c.RopeLocalTheta, c.RopeScaling = mc.SlidingWindow, mc.SlidingLayers, mc.RopeLocalTheta, mc.RopeScaling
		c.Pooling, c.NormalizeEmbeddings, c.EmbedPrefix, c.EmbedSuffix = mc.Pooling, mc.NormalizeEmbeddings, mc.EmbedPrefix, mc.EmbedSuffix
		if !r.has(keyTokBOS) { // files without a vocabulary
			c.BOSTokenID = mc.BOSTokenID
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ggufFamilyDefaults sets what a file without our bitnet-mesh.config says
// only through its architecture and tensors:
//
//   - bitnet-25 and bitnet-b1.58 (bitnet.cpp): 2B4T, relu2 (its graph
//     hard-codes it);
//   - bitnet: 2B4T with relu2 (llama.cpp's converter of BitNetForCausalLM;
//     our files say bitnet.hidden_activation), except with a SentencePiece
//     ("llama") vocabulary and no activation key: 1bitLLM's bitnet_b1_58,
//     SiLU, which bitnet.cpp's converter writes;
//   - llama: LlamaForCausalLM with BitLinear (Llama3-8B-1.58, Falcon3),
//     SiLU;
//   - qwen3 and gemma3: bitnet.cpp's embedding converter (SiLU, GELU-tanh
//     with llama.cpp's Gemma 3 sliding pattern, every sixth layer global,
//     local RoPE base 10000), pooling from <arch>.pooling_type, L2
//     normalised.
//
// Per-projection norms are on when the file has blk.0.attn_q_norm_in.
func ggufFamilyDefaults(f *gguf.File, arch string, c *Config) {
	_, projNorms := f.Tensor("blk.0.attn_q_norm_in.weight")
	switch arch {
	case GGUFArch:
		if _, ok := f.Get(arch + sfxHiddenAct); !ok {
			if m, _ := f.String(keyTokModel); m == "llama" {
				c.Architecture, c.HiddenAct = ArchBitNetB158, ActSiLU
			}
		}
	case "llama":
		c.Architecture, c.HiddenAct, c.ProjNorms = ArchLlama, ActSiLU, projNorms
	case "qwen3", "gemma3":
		c.Architecture, c.HiddenAct, c.ProjNorms = ArchQwen3, ActSiLU, projNorms
		if arch == "gemma3" {
			c.Architecture, c.HiddenAct, c.RopeLocalTheta = ArchGemma3, ActGELUTanh, 10000
		}
		if p, err := f.Uint32(arch + sfxPooling); err == nil {
			c.Pooling = map[uint32]string{1: PoolMean, 3: PoolLast}[p]
			c.NormalizeEmbeddings = c.Pooling != PoolNone
		}
	}
}

func cmp(prev, err error) error {
	if prev != nil {
		return prev
	}
	return err
}

// kvReader reads typed metadata, keeping the first error.
type kvReader struct {
	f   *gguf.File
	err error
}

func (r *kvReader) has(key string) bool {
	_, ok := r.f.Get(key)
	return ok
}

func (r *kvReader) int(key string, required bool, def int) int {
	if !r.has(key) {
		if required {
			r.err = cmp(r.err, fmt.Errorf("%w: missing key %s", ErrConfig, key))
		}
		return def
	}
	v, err := r.f.Uint32(key)
	if err != nil {
		r.err = cmp(r.err, fmt.Errorf("%w: key %s: %w", ErrConfig, key, err))
		return def
	}
	if v > 1<<30 {
		r.err = cmp(r.err, fmt.Errorf("%w: key %s = %d exceeds the limit %d", ErrConfig, key, v, 1<<30))
		return def
	}
	return int(v)
}

func (r *kvReader) float(key string, required bool, def float32) float32 {
	if !r.has(key) {
		if required {
			r.err = cmp(r.err, fmt.Errorf("%w: missing key %s", ErrConfig, key))
		}
		return def
	}
	v, err := r.f.Float32(key)
	if err != nil {
		r.err = cmp(r.err, fmt.Errorf("%w: key %s: %w", ErrConfig, key, err))
		return def
	}
	return v
}

func (r *kvReader) str(key string) (string, bool) {
	if !r.has(key) {
		return "", false
	}
	s, err := r.f.String(key)
	if err != nil {
		r.err = cmp(r.err, fmt.Errorf("%w: key %s: %w", ErrConfig, key, err))
		return "", false
	}
	return s, true
}

func (r *kvReader) ints(key string) ([]int, bool) {
	if !r.has(key) {
		return nil, false
	}
	v, err := r.f.Int32s(key)
	if err != nil {
		r.err = cmp(r.err, fmt.Errorf("%w: key %s: %w", ErrConfig, key, err))
		return nil, false
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out, true
}

// checkTensorSet reports missing and unexpected tensors by name.
func checkTensorSet(f *gguf.File, c Config) error {
	want := map[string]bool{tensorEmbed: true, tensorNorm: true}
	optional := map[string]bool{tensorRopeFreqs: true}
	if !c.TieWordEmbeddings {
		want[tensorOutput] = true
	}
	var l Layer
	for i := 0; i < c.NumLayers; i++ {
		for _, n := range l.norms(c) {
			want[blockTensor(i, n.part, "weight")] = true
		}
		for _, lin := range l.linears(c) {
			want[blockTensor(i, lin.part, "weight")] = true
			optional[blockTensor(i, lin.part, "scale")] = true
		}
	}
	seen := make(map[string]bool, len(f.Tensors))
	for _, t := range f.Tensors {
		if !want[t.Name] && !optional[t.Name] {
			return fmt.Errorf("%w: unexpected tensor %s (block_count = %d)", ErrWeights, t.Name, c.NumLayers)
		}
		seen[t.Name] = true
	}
	var missing []string
	for name := range want {
		if !seen[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		if len(missing) > 5 {
			missing = append(missing[:5], fmt.Sprintf("and %d more", len(missing)-5))
		}
		return fmt.Errorf("%w: missing tensors %v", ErrWeights, missing)
	}
	return nil
}

// tensor returns a tensor's info and bytes after checking its dims.
func tensor(f *gguf.File, name string, dims []uint64) (gguf.TensorInfo, []byte, error) {
	info, data, err := f.TensorData(name)
	if err != nil {
		return info, nil, fmt.Errorf("%w: tensor %s: %w", ErrWeights, name, err)
	}
	if !slices.Equal(info.Dims, dims) {
		return info, nil, fmt.Errorf("%w: tensor %s has dims %v, want %v", ErrWeights, name, info.Dims, dims)
	}
	return info, data, nil
}

// readFloat decodes an F32/F16/BF16/Q8_0 tensor.
func readFloat(f *gguf.File, name string, dims []uint64) ([]float32, error) {
	info, data, err := tensor(f, name, dims)
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	x, err := gguf.DecodeFloat32(info.Type, data, n)
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %s (%v): %w", ErrWeights, name, info.Type, err)
	}
	return x, nil
}

// readTernary decodes one linear of block i and applies its scale tensor.
func readTernary(f *gguf.File, i int, lin linearRef, i2sBlock ternary.I2SBlock) (*ternary.Matrix, error) {
	name := blockTensor(i, lin.part, "weight")
	info, data, err := tensor(f, name, []uint64{uint64(lin.in), uint64(lin.out)})
	if err != nil {
		return nil, err
	}
	var m *ternary.Matrix
	switch info.Type {
	case gguf.TQ2_0:
		m, err = ternary.DecodeTQ2_0(data, lin.out, lin.in)
	case gguf.TQ1_0:
		m, err = ternary.DecodeTQ1_0(data, lin.out, lin.in)
	case gguf.I2_S:
		if i2sBlock == 0 {
			i2sBlock = ternary.I2SBlock128
		}
		m, err = ternary.DecodeI2S(data, lin.out, lin.in, i2sBlock)
	case gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0:
		var x []float32
		if x, err = gguf.DecodeFloat32(info.Type, data, lin.out*lin.in); err == nil {
			m, err = ternaryFromFloats(x, lin.out, lin.in)
		}
	default:
		err = fmt.Errorf("type %v is not supported for ternary weights (want TQ2_0, TQ1_0, I2_S, Q8_0, F32, F16 or BF16)", info.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %s (%s): %w", ErrWeights, name, lin.hf, err)
	}
	sname := blockTensor(i, lin.part, "scale")
	if _, ok := f.Tensor(sname); ok {
		s, err := readFloat(f, sname, []uint64{1})
		if err != nil {
			return nil, err
		}
		if !(s[0] >= 0) || math.IsInf(float64(s[0]), 0) {
			return nil, fmt.Errorf("%w: tensor %s = %v must be non-negative and finite", ErrWeights, sname, s[0])
		}
		m.Scale *= s[0]
	}
	return m, nil
}

// ternaryFromFloats recovers T and s from float weights that hold T*s, the
// form llama.cpp's converter writes before quantizing: s is the largest
// magnitude and every weight must be 0 or +-s (to 1e-3 relative).
func ternaryFromFloats(x []float32, rows, cols int) (*ternary.Matrix, error) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	if math.IsInf(float64(amax), 0) || math.IsNaN(float64(amax)) {
		return nil, fmt.Errorf("weights are not finite")
	}
	t := make([]int8, len(x))
	if amax > 0 {
		for k, v := range x {
			q := float32(math.Round(float64(v / amax)))
			if d := v - q*amax; d > 1e-3*amax || d < -1e-3*amax {
				return nil, fmt.Errorf("weight %v at row %d col %d is not ternary (0 or +-%v)", v, k/cols, k%cols, amax)
			}
			t[k] = int8(q)
		}
	}
	return ternary.Pack(rows, cols, t, amax)
}
