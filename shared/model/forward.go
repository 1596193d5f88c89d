package model

import (
	"context"
	"errors"
	"fmt"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// ErrInput reports a bad Forward request: token ids out of range, sequences
// past the context limit, misused sequences.
var ErrInput = errors.New("model: bad input")

// Step is the work of one sequence in a Forward call: Tokens are appended to
// Seq (prefill of a prompt, or one decode token).
type Step struct {
	Seq    *Sequence
	Tokens []int
	// AllLogits asks for the logits of every token (for scoring) instead of
	// the last one only.
	AllLogits bool
	// Logits is filled by Forward: VocabSize floats for the last token, or
	// len(Tokens)*VocabSize when AllLogits. Its storage is reused when large enough.
	Logits []float32
	// Pool asks for the step's final hidden states (after the final norm)
	// pooled by Config.Pooling instead of logits (embedding models; the
	// output head does not run for the step): Hidden receives HiddenSize
	// floats, the last token's state (PoolLast) or the sum over the step's
	// tokens (PoolMean; divide by the sequence's length when the last chunk
	// is in, see FinishEmbedding). Its storage is reused when large enough.
	Pool   bool
	Hidden []float32
}

// scratch holds the per-token buffers of a Forward call, reused across calls.
type scratch struct {
	x, xn, q, k, v, att, tmp, gate, up []float32
	pn                                 []float32   // a per-projection norm's output (ProjNorms)
	scores                             [][]float32 // per attention worker
	group4                             bool        // attention units are KV-head groups (attendGroups)
	kvs                                []kvView    // per step
	hidden, logits                     []float32
	pos, step                          []int
	act                                *kernels.Activations
	ws                                 []*ternary.Matrix // projLinears' matrices
	// The layer being computed, for the tokenOps.
	li    int
	layer *Layer
	steps []Step
	lin   int       // the linear whose input opProjNorm normalises
	src   []float32 // opProjNorm's input
}

// Forward runs all tokens of all steps through the model: every BitLinear
// multiplies the tokens of every step at once (one GEMM), attention runs per
// sequence over its KV cache. On success each Seq has grown by its tokens and
// each Logits is filled; on error the sequences are unchanged. Forward calls on
// one Model are serialised.
func (m *Model) Forward(ctx context.Context, steps []Step) error {
	if m == nil {
		return errors.New("model: forward on a nil model")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("model: forward: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	total, err := m.checkSteps(steps)
	if err != nil {
		return err
	}
	if m.eng == nil {
		return errors.New("model: forward on a closed model")
	}
	// Workers poll through the gaps between products (attention, norms)
	// instead of parking in them.
	m.eng.Hold()
	defer m.eng.Release()
	c := m.cfg
	sc := &m.scratch
	sc.resize(total, c)
	t := 0
	for si := range steps {
		st := &steps[si]
		st.Seq.reserve(st.Seq.n + len(st.Tokens))
		m.rope.ensure(st.Seq.n + len(st.Tokens))
		if m.local != nil {
			m.local.ensure(st.Seq.n + len(st.Tokens))
		}
		for i, id := range st.Tokens {
			m.embed.row(sc.x[t*c.HiddenSize:(t+1)*c.HiddenSize], id)
			if m.embScale != 1 {
				scaleTo(sc.x[t*c.HiddenSize:(t+1)*c.HiddenSize], m.embScale)
			}
			sc.pos[t], sc.step[t] = st.Seq.n+i, si
			t++
		}
	}
	for l := range m.layers {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("model: forward cancelled before layer %d: %w", l, err)
		}
		if err := m.layer(l, steps, total); err != nil {
			return err
		}
	}
	if err := m.logits(steps); err != nil {
		return err
	}
	for si := range steps {
		steps[si].Seq.n += len(steps[si].Tokens)
	}
	return nil
}

// checkSteps validates the request and returns the number of tokens.
func (m *Model) checkSteps(steps []Step) (int, error) {
	if len(steps) == 0 {
		return 0, fmt.Errorf("%w: no steps", ErrInput)
	}
	total := 0
	m.epoch++ // marks the sequences of this call, to find duplicates without a map
	for si, st := range steps {
		if st.Seq == nil || st.Seq.m != m {
			return 0, fmt.Errorf("%w: step %d: sequence is nil or belongs to another model", ErrInput, si)
		}
		if st.Seq.epoch == m.epoch {
			return 0, fmt.Errorf("%w: step %d repeats the sequence of an earlier step", ErrInput, si)
		}
		st.Seq.epoch = m.epoch
		if len(st.Tokens) == 0 {
			return 0, fmt.Errorf("%w: step %d has no tokens", ErrInput, si)
		}
		if !st.Pool && m.cfg.IsEmbedding() {
			return 0, fmt.Errorf("%w: step %d asks for logits, but %s is an embedding model (no output head): pool its states (Step.Pool, Embed)", ErrInput, si, m.cfg.Family())
		}
		for i, id := range st.Tokens {
			if id < 0 || id >= m.cfg.VocabSize {
				return 0, fmt.Errorf("%w: step %d token %d: id %d out of range [0,%d)", ErrInput, si, i, id, m.cfg.VocabSize)
			}
		}
		if end := st.Seq.n + len(st.Tokens); end > m.cfg.MaxPositions {
			return 0, fmt.Errorf("%w: step %d: %d cached + %d new tokens exceed max_position_embeddings = %d", ErrInput, si, st.Seq.n, len(st.Tokens), m.cfg.MaxPositions)
		}
		total += len(st.Tokens)
	}
	return total, nil
}

func (sc *scratch) resize(n int, c Config) {
	h, q, kv, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize
	sc.x, sc.xn, sc.tmp = grow(sc.x, n*h), grow(sc.xn, n*h), grow(sc.tmp, n*h)
	sc.q, sc.att = grow(sc.q, n*q), grow(sc.att, n*q)
	sc.k, sc.v = grow(sc.k, n*kv), grow(sc.v, n*kv)
	sc.gate, sc.up = grow(sc.gate, n*in), grow(sc.up, n*in)
	if c.ProjNorms {
		sc.pn = grow(sc.pn, n*max(h, q, in))
	}
	sc.pos, sc.step = grow(sc.pos, n), grow(sc.step, n)
	if sc.act == nil {
		sc.act = kernels.NewActivations(n, h)
	}
}

// bitLinear quantises x (n tokens of K = ws[0].Cols) once and multiplies it
// with each ws[i] into ys[i] (on a GPU, in one submission).
func (m *Model) bitLinear(x []float32, n int, ws []*ternary.Matrix, ys [][]float32) error {
	a := m.scratch.act
	a.Reset(n, ws[0].Cols)
	if err := m.eng.Quantize(a, x); err != nil {
		return fmt.Errorf("model: quantize activations: %w", err)
	}
	if err := m.eng.MatMuls(ys, ws, a, m.resident); err != nil {
		return fmt.Errorf("model: bitlinear %dx%d: %w", ws[0].Rows, ws[0].Cols, err)
	}
	return nil
}

// projLinears runs linears lins (indices into the layer's linears) on the
// n tokens of x: one activation quantisation for all when the layer has no
// per-projection norms, else each normalises x with its own norm first.
func (m *Model) projLinears(x []float32, n int, lins []int, ys [][]float32) error {
	L, sc := m.scratch.layer, &m.scratch
	all := L.Linears()
	if L.ProjNorm[lins[0]] == nil {
		ws := sc.ws[:0]
		for _, i := range lins {
			ws = append(ws, *all[i])
		}
		sc.ws = ws
		return m.bitLinear(x, n, ws, ys)
	}
	for j, i := range lins {
		w := *all[i]
		sc.lin, sc.src = i, x
		m.forTokens(n, w.Cols, opProjNorm)
		sc.ws = append(sc.ws[:0], w)
		if err := m.bitLinear(sc.pn[:n*w.Cols], n, sc.ws, ys[j:j+1]); err != nil {
			return err
		}
	}
	return nil
}

// layer runs decoder block li over the n tokens in scratch.x.
func (m *Model) layer(li int, steps []Step, n int) error {
	L := &m.layers[li]
	c, sc := m.cfg, &m.scratch
	sc.li, sc.layer, sc.steps = li, L, steps
	defer func() { sc.layer, sc.steps, sc.src = nil, nil, nil }()
	h, qd, kvd, in := c.HiddenSize, c.QDim(), c.KVDim(), c.IntermediateSize

	m.forTokens(n, h, opAttnNorm)
	if err := m.projLinears(sc.xn, n, []int{LinQ, LinK, LinV}, [][]float32{sc.q, sc.k, sc.v}); err != nil {
		return fmt.Errorf("layer %d attention: %w", li, err)
	}
	m.forTokens(n, qd+kvd, opRoPEStore)
	m.attention(li, steps, n)
	if L.AttnSubNorm != nil {
		m.forTokens(n, qd, opAttnSubNorm)
	}
	if err := m.projLinears(sc.att, n, []int{LinO}, [][]float32{sc.tmp}); err != nil {
		return fmt.Errorf("layer %d o_proj: %w", li, err)
	}
	m.forTokens(n, h, opResidualFFNNorm)
	if err := m.projLinears(sc.xn, n, []int{LinGate, LinUp}, [][]float32{sc.gate, sc.up}); err != nil {
		return fmt.Errorf("layer %d mlp: %w", li, err)
	}
	m.forTokens(n, in, opActSubNorm)
	if err := m.projLinears(sc.gate, n, []int{LinDown}, [][]float32{sc.tmp}); err != nil {
		return fmt.Errorf("layer %d down_proj: %w", li, err)
	}
	m.forTokens(n, h, opResidual)
	return nil
}

// tokenOp is one float step of a layer over tokens [lo, hi), reading the
// current layer from scratch. Plain functions, not closures: a decode step
// allocates nothing.
type tokenOp func(m *Model, lo, hi int)

// forTokens runs op over the n tokens (width floats each), on the engine's
// pool when the work pays for the hand-off (prefill, large batches) and
// inline otherwise (decode).
func (m *Model) forTokens(n, width int, op tokenOp) {
	// About 8K floats per range: a few microseconds of float work, the
	// cost of waking a pool worker.
	grain := (8<<10 + width - 1) / max(width, 1)
	if m.eng.Threads() == 1 || n < 2*grain {
		op(m, 0, n)
		return
	}
	m.eng.Parallel(n, grain, func(lo, hi int) { op(m, lo, hi) })
}

func opAttnNorm(m *Model, lo, hi int) {
	sc, h := &m.scratch, m.cfg.HiddenSize
	m.fl.RMSNorm(sc.xn[lo*h:hi*h], sc.x[lo*h:hi*h], sc.layer.AttnNorm, m.cfg.RMSNormEps)
}

// opProjNorm writes the per-projection norm of linear sc.lin of sc.src
// into sc.pn.
func opProjNorm(m *Model, lo, hi int) {
	sc := &m.scratch
	w := sc.layer.ProjNorm[sc.lin]
	k := len(w)
	m.fl.RMSNorm(sc.pn[lo*k:hi*k], sc.src[lo*k:hi*k], w, m.cfg.ProjEps())
}

// opRoPEStore normalises q and k per head (QKNorm), rotates them and
// appends k and v to each token's cache.
func opRoPEStore(m *Model, lo, hi int) {
	c, sc := m.cfg, &m.scratch
	qd, kvd := c.QDim(), c.KVDim()
	L := sc.layer
	r := &m.rope
	if m.local != nil && c.Sliding(sc.li) {
		r = m.local
	}
	for t := lo; t < hi; t++ {
		p := sc.pos[t]
		q, k := sc.q[t*qd:(t+1)*qd], sc.k[t*kvd:(t+1)*kvd]
		if L.QNorm != nil {
			m.fl.RMSNorm(q, q, L.QNorm, c.RMSNormEps)
			m.fl.RMSNorm(k, k, L.KNorm, c.RMSNormEps)
		}
		r.apply(q, c.NumHeads, p)
		r.apply(k, c.NumKVHeads, p)
		sc.steps[sc.step[t]].Seq.store(sc.li, p, k, sc.v[t*kvd:(t+1)*kvd])
	}
}

func opAttnSubNorm(m *Model, lo, hi int) {
	sc, qd := &m.scratch, m.cfg.QDim()
	m.fl.RMSNorm(sc.att[lo*qd:hi*qd], sc.att[lo*qd:hi*qd], sc.layer.AttnSubNorm, m.cfg.RMSNormEps)
}

// opResidualFFNNorm adds o_proj's output (normalised first with sandwich
// norms) to the residual and normalises it for the FFN.
func opResidualFFNNorm(m *Model, lo, hi int) {
	sc, h := &m.scratch, m.cfg.HiddenSize
	if pn := sc.layer.PostAttnNorm; pn != nil {
		m.fl.RMSNorm(sc.tmp[lo*h:hi*h], sc.tmp[lo*h:hi*h], pn, m.cfg.RMSNormEps)
	}
	addTo(sc.x[lo*h:hi*h], sc.tmp[lo*h:hi*h])
	m.fl.RMSNorm(sc.xn[lo*h:hi*h], sc.x[lo*h:hi*h], sc.layer.FFNNorm, m.cfg.RMSNormEps)
}

// opActSubNorm computes act(gate) * up into gate and applies the FFN
// sub-norm where the family has one.
func opActSubNorm(m *Model, lo, hi int) {
	sc, in := &m.scratch, m.cfg.IntermediateSize
	g, u := sc.gate[lo*in:hi*in], sc.up[lo*in:hi*in]
	switch m.cfg.HiddenAct {
	case ActSiLU:
		siluMul(g, u)
	case ActGELUTanh:
		geluTanhMul(g, u)
	default:
		m.fl.ReLU2Mul(g, u)
	}
	if sn := sc.layer.FFNSubNorm; sn != nil {
		m.fl.RMSNorm(g, g, sn, m.cfg.RMSNormEps)
	}
}

// opResidual adds down_proj's output (normalised first with sandwich norms)
// to the residual.
func opResidual(m *Model, lo, hi int) {
	sc, h := &m.scratch, m.cfg.HiddenSize
	if pn := sc.layer.PostFFNNorm; pn != nil {
		m.fl.RMSNorm(sc.tmp[lo*h:hi*h], sc.tmp[lo*h:hi*h], pn, m.cfg.RMSNormEps)
	}
	addTo(sc.x[lo*h:hi*h], sc.tmp[lo*h:hi*h])
}
