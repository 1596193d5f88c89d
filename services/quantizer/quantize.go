package quantizer

import (
	"context"
	"fmt"
	"os"

	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
	"github.com/bitnet-mesh/bitnet-mesh/shared/safetensors"
	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// namedLinear is one of a layer's seven linears (index i, model.LinQ..)
// with its Hugging Face and GGUF names.
type namedLinear struct {
	i        int
	hf, gguf string
	m        *ternary.Matrix
}

// ggufLinearNames are the GGUF name parts of the seven linears.
var ggufLinearNames = [model.NumLinears]string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

func linearsOf(l *model.Layer) []namedLinear {
	out := make([]namedLinear, 0, model.NumLinears)
	for i, p := range l.Linears() {
		out = append(out, namedLinear{i, model.LinearNames[i], ggufLinearNames[i], *p})
	}
	return out
}

// hfPrefix is the checkpoint's tensor-name prefix: "model." for a CausalLM,
// "" for a bare backbone (embedding models).
func hfPrefix(ck *safetensors.Checkpoint) string {
	if _, ok := ck.Tensor("model.embed_tokens.weight"); ok {
		return "model."
	}
	if _, ok := ck.Tensor("embed_tokens.weight"); ok {
		return ""
	}
	return "model."
}

// quantize fills the per-linear report from the ternary weights the loader
// made (w) and the checkpoint's full-precision tensors, and returns the
// reference ("before") model when withRef is set, with a function that
// releases the checkpoint it reads (call it after the evaluation). Linears
// stored ternary already (packed HF tensors, GGUF) are their own
// full-precision weights.
func (r *runner) quantize(ctx context.Context, src string, w *model.Weights, withRef bool) (_ *reference, release func(), err error) {
	var ck *safetensors.Checkpoint
	release = func() {}
	if st, serr := os.Stat(src); serr == nil && st.IsDir() {
		if ck, err = safetensors.OpenCheckpoint(src); err != nil {
			return nil, release, fmt.Errorf("open %s: %w: %w", src, err, ErrCheckpoint)
		}
		release = func() { ck.Close() }
		defer func() {
			if err != nil || !withRef {
				release()
				release = func() {}
			}
		}()
	}
	c := w.Config
	total := uint64(7 * len(w.Layers))
	var layers []refLayer
	if withRef {
		layers = make([]refLayer, len(w.Layers))
	}
	done := uint64(0)
	for li := range w.Layers {
		l := &w.Layers[li]
		if withRef {
			layers[li] = refLayer{norms: l}
		}
		for _, lin := range linearsOf(l) {
			if err := ctx.Err(); err != nil {
				return nil, release, err
			}
			name := fmt.Sprintf("blk.%d.%s.weight", li, lin.gguf)
			if ck != nil {
				name = fmt.Sprintf("%slayers.%d.%s.weight", hfPrefix(ck), li, lin.hf)
			}
			r.progress(PhaseQuantizing, done, total, "tensors", name)
			fp, rows, err := fullPrecision(ck, name, lin.m)
			if err != nil {
				return nil, release, err
			}
			zeros, relErr, err := ternary.Stats(fp, lin.m)
			if err != nil {
				return nil, release, fmt.Errorf("stats of %s: %w: %w", name, err, ErrCheckpoint)
			}
			lr := LinearReport{Name: name, Rows: lin.m.Rows, Cols: lin.m.Cols, ZerosFraction: zeros, Scale: float64(lin.m.Scale), RelativeError: relErr,
				GGUF: model.TensorChoice{Name: fmt.Sprintf("blk.%d.%s.weight", li, lin.gguf)}}
			r.q.update(r.j, func(j *Job) { j.Report.Linears = append(j.Report.Linears, lr) })
			if withRef {
				layers[li].lin[lin.i] = rows
			}
			done++
		}
	}
	r.progress(PhaseQuantizing, total, total, "tensors", "writing GGUF")
	if !withRef {
		return nil, release, nil
	}
	return newReference(c, w.Embed, w.Norm, w.HeadWeights(), layers, r.req.Threads), release, nil
}

// fullPrecision returns the float weights of a linear and their rows for
// the reference: the checkpoint's float tensor, or s*T when it is stored
// ternary (or there is no checkpoint).
func fullPrecision(ck *safetensors.Checkpoint, name string, m *ternary.Matrix) ([]float32, denseRows, error) {
	if ck != nil {
		t, ok := ck.Tensor(name)
		if !ok {
			return nil, denseRows{}, fmt.Errorf("tensor %s missing: %w", name, ErrCheckpoint)
		}
		switch t.DType {
		case safetensors.F32, safetensors.F16, safetensors.BF16:
			v, err := t.Float32()
			if err != nil {
				return nil, denseRows{}, fmt.Errorf("tensor %s: %w: %w", name, err, ErrCheckpoint)
			}
			if len(v) != m.Rows*m.Cols {
				return nil, denseRows{}, fmt.Errorf("tensor %s has %d weights, want %d*%d: %w", name, len(v), m.Rows, m.Cols, ErrCheckpoint)
			}
			return v, denseRows{t: t, cols: m.Cols}, nil
		}
	}
	t := m.Unpack()
	out := make([]float32, len(t))
	for i, v := range t {
		out[i] = float32(v) * m.Scale
	}
	return out, denseRows{m: m, cols: m.Cols}, nil
}
