package train

import (
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// MemoryBytes estimates the memory a Trainer of config c with options o
// (defaults filled in) allocates, from the shapes alone, as newEngine and
// New lay it out: float32 parameters, gradients and the two AdamW moments;
// the dequantised ternary linears; every block's saved activations for
// Batch x Seq tokens (and their quantised copies), the attention
// probabilities, the logits and the backward scratch. New checks it against
// Options.MemoryBudget before allocating anything; services call it to
// refuse a job up front. It is float arithmetic and saturates rather than
// overflows.
func MemoryBytes(c model.Config, o Options) int64 {
	o = o.withDefaults()
	const f32 = 4
	params := float64(c.Params())
	h, qd, kvd, in := float64(c.HiddenSize), float64(c.NumHeads)*float64(c.HeadDim), float64(c.NumKVHeads)*float64(c.HeadDim), float64(c.IntermediateSize)
	v, layers := float64(c.VocabSize), float64(c.NumLayers)
	b, s := float64(o.Batch), float64(o.Seq)
	n := b * s
	// Parameters, gradients, AdamW m and v.
	total := 4 * params
	// Saved activations and attention probabilities of every block.
	perLayer := n*(6*h+3*qd+2*kvd+5*in) + 5*n + b*float64(c.NumHeads)*s*s
	if !o.FullPrec {
		perLayer += n * (2*h + qd + in)            // quantised activation copies
		perLayer += h*qd + 2*h*kvd + qd*h + 3*h*in // dequantised ternary linears
	}
	total += layers * perLayer
	wide := max(h, qd, in)
	total += 2*n*h + n + n*v + n*2 + n*h + 5*n*wide + (n/32+1)*wide // x, hn, logits, loss, targets, scratch
	total += float64(o.Threads) * s * s                             // attention scratch
	total += s * float64(c.HeadDim)                                 // rope tables
	return satBytes(f32 * total)
}

func satBytes(f float64) int64 {
	const maxInt64 = 1<<63 - 1
	if !(f < maxInt64) {
		return maxInt64
	}
	return int64(max(f, 0))
}
