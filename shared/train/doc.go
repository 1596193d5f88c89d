// Package train trains BitNet b1.58 models with quantisation-aware training
// (QAT), in the style of llm.c: explicit forward and backward passes over flat
// fp32 master weights, no autograd.
//
// BitLinear layers ternarise their weights in the forward pass exactly as
// ternary.Quantize does (absmean per tensor) and quantise their inputs per
// token exactly as kernels.QuantizeRow does (absmax int8); the backward pass
// is the straight-through estimator: gradients are those of y = x_q W_q^T
// with x_q and W_q treated as identity functions of x and W (their
// dequantised values are what the forward multiplies). The output head, the
// norms, RoPE and attention run in full precision like the inference engine
// in package model. Options.FullPrec turns both quantisers off.
//
// The layer math is generic over float32 and float64: training runs in
// float32, the gradient checks of the tests in float64.
//
// Matrix products, attention, norms and the loss run on a goroutine pool the
// Trainer owns. Every output element is computed by one goroutine in a fixed
// order on a work grid fixed by the shapes, so results are bitwise identical
// for any thread count. The float32 products use AVX2+FMA register tiles on
// amd64 when the engine's kernels.Floats has SIMD (package kernels'
// floatgemm_amd64.s: 4x3 dot-product tiles for x W^T, 4x16 rank-1 tiles for
// the backward products, which read transposed operands through strides) and
// 4x4 Go tiles elsewhere.
//
// Around the engine: AdamW with decoupled weight decay, global-norm clipping,
// warmup+cosine and BitNet's two-stage schedules, gradient accumulation
// (optim.go, schedule.go); tokenised, packed, shuffled data streamed from a
// token file on disk (data.go); atomic checkpoints that resume bit for bit
// (checkpoint.go); export to a Hugging Face directory with master weights or
// with packed ternary linears (export.go); the data order of a run, for
// replaying it elsewhere (SequenceOrder, plan.go); and the training loop with
// validation and a loss-curve SVG (run.go, svg.go).
package train
