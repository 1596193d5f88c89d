package model

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/bitnet-mesh/bitnet-mesh/shared/ternary"
)

// Shape limits every Config must meet (Validate checks them) whatever the
// memory at hand: they keep a hostile or mistyped config.json, GGUF header
// or training request from asking for allocations that cannot exist, and
// keep the arithmetic on shapes far from overflow. The largest open models
// (405 B parameters, 126 layers, 128 K vocabulary) are well inside them.
const (
	MaxDim    = 1 << 24 // any one width, vocabulary or context length
	MaxLayers = 1 << 12 // decoder blocks
	MaxHeads  = 1 << 12 // attention heads (and KV heads)
	MaxParams = 1 << 40 // weights in all
)

// ErrOverBudget reports that a model needs more memory than a budget
// allows; the check runs on the config's shapes, before anything is
// allocated.
var ErrOverBudget = errors.New("model: over the memory budget")

// Params returns the number of weights of c's model (embedding, head when
// untied, norms and the seven linears of every block). It is exact for a
// valid Config and saturates instead of overflowing for any other.
func (c Config) Params() int64 {
	h, v, in := float64(c.HiddenSize), float64(c.VocabSize), float64(c.IntermediateSize)
	qd, kvd := float64(c.NumHeads)*float64(c.HeadDim), float64(c.NumKVHeads)*float64(c.HeadDim)
	layer := 2*h + qd + in + h*qd + 2*h*kvd + qd*h + 2*h*in + in*h
	n := v*h + h + float64(c.NumLayers)*layer
	if !c.TieWordEmbeddings {
		n += v * h
	}
	return satInt64(n)
}

// ServeBytes estimates the memory a loaded model keeps for serving: 2-bit
// ternary linears (rows padded to whole 256-weight blocks, any width), the
// int8 output head (the default; the tied embedding's lookups read its
// rows), a float32 embedding when untied, and the norms. KV caches grow
// with use and are not counted.
func (c Config) ServeBytes() int64 {
	h, q, kv, in := float64(c.HiddenSize), float64(c.NumHeads)*float64(c.HeadDim), float64(c.NumKVHeads)*float64(c.HeadDim), float64(c.IntermediateSize)
	v := float64(c.VocabSize)
	ph, pq, pin := padded(c.HiddenSize), padded(c.NumHeads*c.HeadDim), padded(c.IntermediateSize)
	perLayer := (q*ph+2*kv*ph+h*pq+2*in*ph+h*pin)/4 + 4*(2*h+q+in)
	b := float64(c.NumLayers)*perLayer + v*h + 4*h
	if !c.TieWordEmbeddings {
		b += 4 * v * h
	}
	return max(satInt64(b), 1)
}

// TritsBytes is the memory a load adds for the 1.6-bit copies
// (ternary.Matrix.Trits) of the BitLinear matrices whose shape reads says
// the engine decodes from them (kernels.Engine.ReadsTritsFor, cache-resident
// or not); the 2-bit codes stay for prefill. nil reads: none.
func (c Config) TritsBytes(reads func(rows, cols int) bool) int64 {
	if reads == nil {
		return 0
	}
	var n float64
	for _, s := range c.layerShapes() {
		if s[0] > 0 && s[1] > 0 && reads(s[0], s[1]) {
			n += float64(s[0]) * float64(ternary.TritStride(ternary.PaddedCols(s[1])/4))
		}
	}
	return satInt64(n * float64(c.NumLayers))
}

// KVBytes is the memory of the KV caches of seqs sequences of positions
// tokens each, with elements of type t: keys and values, every layer, every
// KV head.
func (c Config) KVBytes(t KVType, seqs, positions int) int64 {
	perToken := 2 * float64(c.NumLayers) * float64(c.NumKVHeads) * float64(c.HeadDim) * float64(t.Bytes())
	return satInt64(perToken * float64(seqs) * float64(positions))
}

// FloatBytes is the memory of every weight of c's model as float32: what
// LoadWeights holds (the quantizer's input) before ternarising.
func (c Config) FloatBytes() int64 { return satInt64(4 * float64(c.Params())) }

// CheckMemory returns an error wrapping ErrOverBudget when need bytes (an
// estimate from a Config's shapes: ServeBytes, FloatBytes, a trainer's
// footprint) exceed budget; what names the use in the message. A budget of
// 0 or less means none. Loading, quantizing and training call it, after
// Validate, before they allocate.
func CheckMemory(what string, need, budget int64) error {
	if budget > 0 && need > budget {
		return fmt.Errorf("%w: %s needs about %s, the budget is %s", ErrOverBudget, what, FormatBytes(need), FormatBytes(budget))
	}
	return nil
}

// FormatBytes formats n in binary units for messages ("1.5 GiB").
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), -1
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTPE"[i])
}

// padded is a row width rounded up to whole ternary blocks (what the
// 2-bit codes of a row take, in weights), for a valid width; other widths
// count as they are.
func padded(n int) float64 {
	if n <= 0 || n > MaxDim {
		return float64(n)
	}
	return float64(ternary.PaddedCols(n))
}

// satInt64 converts a non-negative estimate to int64, saturating.
func satInt64(f float64) int64 {
	if !(f < math.MaxInt64) {
		return math.MaxInt64
	}
	return int64(max(f, 0))
}

// checkShapeLimits is Validate's part for the limits above.
func (c Config) checkShapeLimits() error {
	switch {
	case c.NumLayers > MaxLayers:
		return fmt.Errorf("%w: num_hidden_layers = %d exceeds the limit %d", ErrConfig, c.NumLayers, MaxLayers)
	case c.NumHeads > MaxHeads || c.NumKVHeads > MaxHeads:
		return fmt.Errorf("%w: %d attention heads and %d KV heads: the limit is %d", ErrConfig, c.NumHeads, c.NumKVHeads, MaxHeads)
	case float64(c.NumHeads)*float64(c.HeadDim) > MaxDim:
		return fmt.Errorf("%w: num_attention_heads*head_dim = %d*%d exceeds the limit %d", ErrConfig, c.NumHeads, c.HeadDim, MaxDim)
	}
	if p := c.Params(); p > MaxParams {
		return fmt.Errorf("%w: the shapes make %d parameters, more than the limit %d", ErrConfig, p, int64(MaxParams))
	}
	return nil
}

// loadBytes estimates the peak memory of reading c's weights: the Weights
// kept (2-bit ternary linears, float32 norms, a float32 embedding unless
// head8 quantises a tied one straight to int8 rows, the head as int8 rows
// with head8 or float32 without) plus, when the linears are stored as
// floats (master weights), the float32 copies of the layers being
// ternarised at once (one per core at most).
func (c Config) loadBytes(head8, floatLinears bool) int64 {
	h, q, kv, in := float64(c.HiddenSize), float64(c.NumHeads)*float64(c.HeadDim), float64(c.NumKVHeads)*float64(c.HeadDim), float64(c.IntermediateSize)
	v, layers := float64(c.VocabSize), float64(c.NumLayers)
	linears := h*q + 2*h*kv + q*h + 3*h*in
	b := layers*(linears/4+4*(2*h+q+in)) + 4*h
	switch {
	case head8 && c.TieWordEmbeddings:
		b += v * h // int8 rows serve the head and the lookups
	case head8:
		b += 4*v*h + v*h // float32 embedding, int8 head
	case c.TieWordEmbeddings:
		b += 4 * v * h
	default:
		b += 8 * v * h
	}
	if floatLinears {
		b += min(float64(runtime.GOMAXPROCS(0)), layers) * 4 * linears
	}
	return satInt64(b)
}
