package model

import (
	"fmt"
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/mmap"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
	"github.com/bitnet-mesh/bitnet-mesh/shared/tokenizer"
)

// KVType is the element type of the KV cache.
type KVType int

// KV cache element types.
const (
	KVFloat32 KVType = iota
	KVFloat16
)

// ParseKVType parses "f32" or "f16" (as String writes them).
func ParseKVType(s string) (KVType, error) {
	switch s {
	case "f32":
		return KVFloat32, nil
	case "f16":
		return KVFloat16, nil
	}
	return 0, fmt.Errorf("model: KV cache type %q: want f16 or f32", s)
}

// Bytes is the size of one element: 2 for f16, 4 for f32.
func (t KVType) Bytes() int {
	if t == KVFloat16 {
		return 2
	}
	return 4
}

// String returns "f32" or "f16".
func (t KVType) String() string {
	if t == KVFloat16 {
		return "f16"
	}
	return "f32"
}

// Option configures a Model.
type Option func(*options)

type options struct {
	engine    *kernels.Engine
	kvType    KVType
	headInt8  bool
	embInt8   bool
	hugePages bool
	i2sBlock  ternary.I2SBlock
	budget    int64
	headFmt   kernels.HeadFormat
}

// WithI2SBlock sets the block size of bitnet.cpp I2_S tensors in GGUF files
// Load reads: ternary.I2SBlock128 (default: every bitnet.cpp converter and
// x86 llama-quantize) or ternary.I2SBlock64 (llama-quantize of an ARM
// build of bitnet.cpp). The file does not record it.
func WithI2SBlock(b ternary.I2SBlock) Option { return func(o *options) { o.i2sBlock = b } }

// WithEngine runs the BitLinear products on e (the caller keeps ownership and
// closes it). Without it the model creates an engine on the best kernel path
// and closes it in Close.
func WithEngine(e *kernels.Engine) Option { return func(o *options) { o.engine = e } }

// WithKVType selects the KV cache element type (default KVFloat32).
func WithKVType(t KVType) Option { return func(o *options) { o.kvType = t } }

// WithHeadInt8 stores the output head as int8 rows and multiplies it with
// int8-quantised hidden states (default true: a quarter of the bytes read per
// token). False computes the head exactly in float32, like the reference.
func WithHeadInt8(on bool) Option { return func(o *options) { o.headInt8 = on } }

// DefaultHeadFormat is the head format of models loaded without
// WithHeadFormat, chosen from the perplexity costs in docs/perf.md.
const DefaultHeadFormat = kernels.DefaultHeadFormat

// EnvHeadFormat is the environment variable of the commands' --head flag.
const EnvHeadFormat = "BITNET_HEAD"

// WithHeadFormat stores the output head as int8 (DefaultHeadFormat), int6 or int4
// rows (kernels.HeadFormat), multiplied with int8-quantised hidden states:
// fewer bytes read per decoded token at a perplexity cost (reported in
// docs/perf.md for the golden models). It applies when the head is
// quantised (WithHeadInt8, the default); token lookups of a tied embedding
// keep reading int8 rows.
func WithHeadFormat(f kernels.HeadFormat) Option { return func(o *options) { o.headFmt = f } }

// WithEmbedInt8 makes token lookups read the int8 head rows when the
// embedding is tied to the head and the head is int8 (default true), as
// llama.cpp reads a quantized token_embd: the 16-bit embedding copy (0.66 GB
// for 2B4T) is not kept. The lookups then carry int8 rounding (< 0.4% of a
// row's largest value); false keeps exact embeddings.
func WithEmbedInt8(on bool) Option { return func(o *options) { o.embInt8 = on } }

// WithHugePages backs the ternary weights and the head with transparent huge
// pages where the OS allows (default true; Linux, see mmap.HugePages):
// decoding streams every weight once per token, and huge pages stream
// faster (fewer TLB misses). Moving them costs a copy at load. A no-op
// elsewhere.
func WithHugePages(on bool) Option { return func(o *options) { o.hugePages = on } }

// WithMemoryBudget makes Load refuse (ErrOverBudget) a model whose load
// needs more than bytes (estimated from its shapes: what it keeps plus the
// loader's transient copies), before allocating anything. 0 means no bound.
func WithMemoryBudget(bytes int64) Option { return func(o *options) { o.budget = bytes } }

// Model runs a BitNet b1.58 model of any family (Config.Family). It is safe for concurrent use, but Forward
// calls are serialised (one runs at a time): to serve many requests, batch
// their steps into one Forward call. A Sequence works only with the model that
// made it and belongs to its caller.
type Model struct {
	cfg     Config
	layers  []Layer
	embed   embedding
	norm    []float32
	head    []float32             // float32 head when !headInt8
	head8   *kernels.Int8Matrix   // int8 head when headInt8 (also a tied embedding's rows)
	headP   *kernels.PackedMatrix // 6- or 4-bit head when the head format asks for it
	eng     *kernels.Engine
	fl      kernels.Floats // the engine's float loops
	ownsEng bool
	kvType  KVType
	// deviceBytes: what the weights take on the GPU beyond the CPU's memory.
	deviceBytes int64
	// resident: the weights fit in the last-level cache, so one-token
	// products run the plan's cache-resident GEMV (kernels.CacheResident).
	resident bool
	rope     rope
	local    *rope   // sliding layers' rotary tables (Gemma3), nil when none
	embScale float32 // Config.EmbedScale
	tok      *tokenizer.Tokenizer
	eos      []int
	mu       sync.Mutex // guards scratch, epoch, rope tables and eng on Close
	epoch    uint64
	scratch  scratch
}

// New builds a model from w. tok may be nil (then Tokenizer returns nil). The
// model keeps references to w's ternary matrices and norms and may keep a
// compact copy of the embedding; w must not be modified afterwards.
func New(w *Weights, tok *tokenizer.Tokenizer, opts ...Option) (*Model, error) {
	return newModel(w, nil, tok, newOptions(opts))
}

func newOptions(opts []Option) options {
	o := options{headInt8: true, embInt8: true, hugePages: true}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// newModel is New with the head possibly already quantised by the loader
// (head8, with o.headInt8 set; see readGGUF).
func newModel(w *Weights, head8 *kernels.Int8Matrix, tok *tokenizer.Tokenizer, o options) (*Model, error) {
	if err := w.validate(head8); err != nil {
		return nil, err
	}
	if o.kvType != KVFloat32 && o.kvType != KVFloat16 {
		return nil, fmt.Errorf("model: unknown KV cache type %d", o.kvType)
	}
	if o.headFmt == "" {
		o.headFmt = DefaultHeadFormat
	}
	if o.headFmt.Bits() == 0 {
		return nil, fmt.Errorf("model: unknown head format %q", o.headFmt)
	}
	c := w.Config
	m := &Model{
		cfg:      c,
		layers:   w.Layers,
		norm:     w.Norm,
		eng:      o.engine,
		kvType:   o.kvType,
		rope:     newRope(c.HeadDim, c.RopeTheta, c.RopeScaling),
		embScale: c.EmbedScale(),
		tok:      tok,
		eos:      append([]int(nil), c.EOSTokenIDs...),
	}
	if c.SlidingWindow > 0 && c.RopeLocalTheta > 0 && (c.RopeLocalTheta != c.RopeTheta || c.RopeScaling != nil) {
		l := newRope(c.HeadDim, c.RopeLocalTheta, nil)
		m.local = &l
	}
	switch {
	case c.IsEmbedding():
		// An embedding model has no use for the output head (bitnet.cpp's
		// converter drops it too): no memory for it, Forward refuses steps
		// that want logits, and token embeddings stay exact (an int8
		// lookup would cost the 0.9999 cosine to the reference).
		o.embInt8 = false
	case head8 != nil:
		m.head8 = head8
	case o.headInt8:
		m.head8 = quantizeInt8Rows(w.HeadWeights(), c.VocabSize, c.HiddenSize)
	default:
		m.head = w.HeadWeights()
	}
	if o.headInt8 && o.embInt8 && c.TieWordEmbeddings {
		m.embed = embedding{rows: c.VocabSize, cols: c.HiddenSize, i8: m.head8}
	} else {
		m.embed = newEmbedding(w.Embed, c.VocabSize, c.HiddenSize)
	}
	if m.head8 != nil && o.headFmt != kernels.HeadInt8 {
		p, err := packHead(m.head8, o.headFmt.Bits())
		if err != nil {
			return nil, err
		}
		m.headP = p
		if m.embed.i8 == nil {
			m.head8 = nil // only the packed rows are read
		}
	}
	if o.hugePages {
		m.hugePages()
	}
	m.resident = kernels.CacheResident(m.weightBytes())
	if m.eng == nil {
		e, err := kernels.New()
		if err != nil {
			return nil, fmt.Errorf("model: kernel engine: %w", err)
		}
		m.eng, m.ownsEng = e, true
	}
	m.fl = m.eng.Floats()
	if m.eng.ReadsTrits(m.resident) {
		if err := m.packTrits(); err != nil {
			return nil, err
		}
		if o.hugePages {
			collapse(hugeChunks(m.weightArena(tritsOf)))
		}
	}
	if err := m.prepareDevice(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// prepareDevice maps the weights into the engine's GPU, when its plan runs
// products there, so that the first request does not pay for it and
// DeviceBytes can be counted against a memory budget.
func (m *Model) prepareDevice() error {
	var ws []*ternary.Matrix
	for i := range m.layers {
		l := &m.layers[i]
		ws = append(ws, l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down)
	}
	h8 := m.head8
	if m.headP != nil {
		h8 = nil // the packed head is the one multiplied
	}
	n, err := m.eng.Prepare(ws, h8, m.headP)
	if err != nil {
		return fmt.Errorf("model: map weights into the GPU: %w", err)
	}
	m.deviceBytes = n
	return nil
}

// DeviceBytes is the memory the model's weights take on the engine's GPU
// beyond the CPU's (copies the GPU could not map in place; 0 on the CPU).
func (m *Model) DeviceBytes() int64 { return m.deviceBytes }

// Close releases the kernel engine if the model created it.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ownsEng && m.eng != nil {
		m.eng.Close()
		m.eng = nil
	}
	return nil
}

// Config returns the model configuration.
func (m *Model) Config() Config { return m.cfg }

// Tokenizer returns the tokenizer given to New or found by Load (may be nil).
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// EOS returns the end-of-sequence token ids.
func (m *Model) EOS() []int { return m.eos }

// IsEOS reports whether id ends a sequence.
func (m *Model) IsEOS(id int) bool {
	for _, e := range m.eos {
		if e == id {
			return true
		}
	}
	return false
}

// Engine returns the kernel engine the model runs on.
func (m *Model) Engine() *kernels.Engine { return m.eng }

// KVType returns the KV cache element type.
func (m *Model) KVType() KVType { return m.kvType }

// packTrits adds the 1.6-bit layout, on all cores, to every ternary matrix
// whose decode GEMV the plan runs from it (see
// kernels.Engine.ReadsTritsFor). The 2-bit codes stay: prefill reads them.
func (m *Model) packTrits() error {
	var ws []*ternary.Matrix
	for i := range m.layers {
		l := &m.layers[i]
		for _, w := range []*ternary.Matrix{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
			if m.eng.ReadsTritsFor(m.resident, w.Rows, w.Cols) {
				ws = append(ws, w)
			}
		}
	}
	errs := make([]error, len(ws))
	parallelFor(len(ws), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if ws[i].Trits == nil {
				errs[i] = ws[i].PackTrits()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("model: 1.6-bit layout: %w", err)
		}
	}
	return nil
}

// weightBytes is what decoding one token reads: ternary codes and the head.
func (m *Model) weightBytes() int64 {
	var n int64
	for i := range m.layers {
		l := &m.layers[i]
		for _, t := range []*ternary.Matrix{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
			n += int64(len(t.Codes))
		}
	}
	return n + m.HeadBytes()
}

// TernaryBytes returns the bytes of ternary weights one decoded token reads:
// the 1.6-bit layout where the plan reads it, else the 2-bit codes.
func (m *Model) TernaryBytes() int64 {
	var n int64
	for i := range m.layers {
		l := &m.layers[i]
		for _, t := range []*ternary.Matrix{l.Q, l.K, l.V, l.O, l.Gate, l.Up, l.Down} {
			if t.Trits != nil && m.eng != nil && m.eng.ReadsTritsFor(m.resident, t.Rows, t.Cols) {
				n += int64(len(t.Trits))
			} else {
				n += int64(len(t.Codes))
			}
		}
	}
	return n
}

// HeadBytes returns the bytes of the output head read per decoded token.
func (m *Model) HeadBytes() int64 {
	switch {
	case m.headP != nil:
		return int64(len(m.headP.Data))
	case m.head8 != nil:
		return int64(len(m.head8.Data))
	}
	return 4 * int64(len(m.head))
}

// HeadFormat returns the head's storage: int8, int6, int4, or "" for float32.
func (m *Model) HeadFormat() kernels.HeadFormat {
	switch {
	case m.headP != nil:
		return kernels.HeadFormat(fmt.Sprintf("int%d", m.headP.Bits))
	case m.head8 != nil:
		return kernels.HeadInt8
	}
	return ""
}

// packHead builds the packed head from the int8 rows, which every loader
// makes (so New and Load agree bit for bit; the extra rounding is under
// half an int8 step, far below a 6- or 4-bit one).
func packHead(h8 *kernels.Int8Matrix, bits int) (*kernels.PackedMatrix, error) {
	rows, cols := h8.Rows, h8.Cols
	p, err := kernels.NewPackedRows(rows, cols, bits)
	if err != nil {
		return nil, fmt.Errorf("model: pack head: %w", err)
	}
	parallelFor(rows, 256, func(lo, hi int) {
		x, q := make([]float32, cols), make([]int8, cols)
		for r := lo; r < hi; r++ {
			for c, v := range h8.Data[r*h8.Stride : r*h8.Stride+cols] {
				x[c] = float32(v) * h8.Scales[r]
			}
			p.SetRow(r, x, q)
		}
	})
	return p, nil
}

// hugePages moves the weights decoding streams (ternary codes, the head)
// onto transparent huge pages, on all cores (the kernel copies them); see
// WithHugePages. The ternary codes are first copied into one 2 MiB-aligned
// arena in the order a token streams them: most tensors of a layer (Q, K,
// V, O: 0.4-1.6 MiB in a 2B4T model) are smaller than a huge page, so on
// their own none of their pages could be collapsed and decoding streamed
// 60% of the codes through 4 KiB pages (more TLB misses, and the hardware
// prefetchers stop at every page); in one arena every 2 MiB of it collapses
// and the prefetchers run on from one tensor into the next.
func (m *Model) hugePages() {
	bufs := hugeChunks(m.weightArena(codesOf))
	// The head in pieces too, so that they spread over the cores.
	var head []byte
	if m.headP != nil {
		head = m.headP.Data
	} else if m.head8 != nil {
		head = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(m.head8.Data))), len(m.head8.Data))
	} else if len(m.head) > 0 {
		head = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(m.head))), 4*len(m.head))
	}
	collapse(append(bufs, hugeChunks(head)...))
}

// collapse moves bufs onto huge pages (mmap.HugePages), on all cores.
func collapse(bufs [][]byte) {
	parallelFor(len(bufs), 1, func(lo, hi int) {
		for _, b := range bufs[lo:hi] {
			mmap.HugePages(b)
		}
	})
}

func codesOf(t *ternary.Matrix) *[]byte { return &t.Codes }
func tritsOf(t *ternary.Matrix) *[]byte { return &t.Trits }

// weightArena copies one byte slice of every layer's ternary matrices (the
// codes or the 1.6-bit trits: field) into one arena that starts on a 2 MiB
// boundary, each at a 64-byte aligned offset, in layer and LinQ..LinDown
// order, and points the matrices at their copies (the bytes are the same).
// It returns the arena, nil when there is nothing to copy.
func (m *Model) weightArena(field func(*ternary.Matrix) *[]byte) []byte {
	const align, huge = 64, 2 << 20
	n := 0
	for i := range m.layers {
		for _, t := range m.layers[i].Linears() {
			n += (len(*field(*t)) + align - 1) &^ (align - 1)
		}
	}
	if n == 0 {
		return nil
	}
	buf := make([]byte, n+huge)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	start := int((p+huge-1)&^(huge-1) - p)
	arena := buf[start : start+n : start+n]
	// Mark the arena before the copies touch it, so that its pages fault in
	// huge where the kernel has them (collapse takes the rest).
	for _, c := range hugeChunks(arena) {
		mmap.Advise(c)
	}
	// The arena's pages are resident only once written, and the old
	// slices are garbage once copied: returning them to the OS every 64
	// MiB keeps the copy from adding the whole arena to the peak resident
	// memory (a few collections of a heap of byte slices, milliseconds).
	const release = 64 << 20
	off, copied := 0, 0
	for i := range m.layers {
		for _, t := range m.layers[i].Linears() {
			f := field(*t)
			if len(*f) == 0 {
				continue
			}
			dst := arena[off : off+len(*f) : off+len(*f)]
			copy(dst, *f)
			*f = dst
			off += (len(dst) + align - 1) &^ (align - 1)
			if copied += len(dst); copied >= release {
				debug.FreeOSMemory()
				copied = 0
			}
		}
	}
	return arena
}

// hugeChunks cuts b into pieces of at most 32 MiB that end on 2 MiB
// address boundaries (but the last), so that collapsing them in parallel
// loses no huge page at the cuts.
func hugeChunks(b []byte) [][]byte {
	const huge, piece = 2 << 20, 32 << 20
	var out [][]byte
	for len(b) > 0 {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		n := int((p+piece)&^(huge-1) - p) // the last 2 MiB boundary within 32 MiB
		n = min(len(b), max(n, 1))
		out, b = append(out, b[:n]), b[n:]
	}
	return out
}
