// Package quantizer runs quantization jobs: each turns a BitNet b1.58
// checkpoint (a Hugging Face directory with full-precision or packed ternary
// linears, or a GGUF file) into a llama.cpp "bitnet" GGUF file with TQ2_0
// (default) or TQ1_0 linears, stores it in the registry as a new version with
// lineage, and reports how much the quantization changed the model.
//
// A Quantizer owns a bounded queue and its worker goroutines (stopped by
// Close). A job moves QUEUED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED
// (RUNNING -> CANCELLING -> CANCELLED when cancelled while running) through
// the phases fetching (checkpoint files copied from registry blobs into a
// work directory, sha256 verified), loading, quantizing (per-linear
// statistics, GGUF written), evaluating (calibration text) and uploading
// (blob + version). Cancellation is checked between files, tensors and
// evaluation chunks, so a cancelled job stops within one of those steps.
//
// With WithJobStore every change of a job's state is persisted (a
// jobs.Store: one durable bbolt transaction each), so a Quantizer reopened
// after a Close or a crash (even a SIGKILL) has its finished jobs back with
// their reports and logs, and runs its unfinished ones again from the
// start (a quantization has no checkpoint worth resuming). WithRetention
// forgets finished jobs past an age.
//
// The quality report has, per linear weight, the share of zeros, the scale
// (absmean) and the relative reconstruction error ||W - s*T|| / ||W||
// (ternary.Stats; 0 by construction for inputs that are ternary already).
// On a calibration text (the request's, or a built-in English paragraph) it
// compares two models with the same tokens and windows:
//
//   - "before": the source checkpoint with its linear weights kept in full
//     precision (dequantised s*T for packed or GGUF inputs), run by the
//     float reference forward pass of this package (reference.go); the
//     inference engine (package model) always ternarises at load time, so
//     it cannot serve as "before". Activations are quantised per token to
//     int8 exactly as the engine does, so the comparison isolates the
//     weight quantization.
//   - "after": the GGUF file as written, loaded back by the engine.
//
// and reports both perplexities, the mean KL(before || after) of the
// next-token distributions and the share of positions whose argmax agrees.
// The text is tokenized with the checkpoint's tokenizer (BOS prepended when
// the config has one), cut to Calibration.MaxTokens and scored in windows of
// Calibration.ContextLength tokens, each token after a window's first from
// its prefix there. Checkpoints without a tokenizer, and requests with
// Calibration.Disabled, get the per-linear statistics only. The reference
// decodes weight rows on the fly from the memory-mapped checkpoint (or the
// ternary matrices), so it costs little memory but is about 12x slower than
// the engine: on a 2B model expect about a second per calibration token
// on two cores.
//
// Source and Sink (package artifact) are the quantizer's view of the
// registry; registry.NewBackend adapts an in-process *registry.Store and
// registry.NewClient its gRPC API. Server adapts a Quantizer to the
// bitnet.quantizer.v1 gRPC API.
package quantizer
