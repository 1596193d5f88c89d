// Package inference is an inference node of the mesh: it serves the
// bitnet.inference.v1 InferenceService over gRPC (and REST through
// grpc-gateway) for BitNet b1.58 models.
//
// Three layers, each usable alone:
//
//   - Scheduler: one per loaded model. A single owner goroutine runs the
//     engine loop with continuous batching: every iteration puts the next
//     decode token of each active sequence and chunks of newly admitted
//     prompts into ONE model.Forward call, so concurrent requests share the
//     weight reads. Requests wait in a bounded queue (ErrQueueFull beyond it)
//     and stream their results as Events.
//   - Manager: loads models by reference through a Fetcher (ref -> verified
//     local path), keeps several within a memory budget, evicts the least
//     recently used and unloads idle ones after a TTL (a janitor goroutine).
//   - Server: the gRPC service over a Manager, mapping errors to status codes
//     and stamping node and kernel on every stream's first and last message;
//     with WithMetrics it exports Prometheus metrics (tokens, time to first
//     token, queue depth, loaded models, memory: the Metric* names).
package inference
