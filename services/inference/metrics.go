package inference

import (
	"fmt"

	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
)

// Metric names an inference Server exports (next to shared/server's per-RPC
// ones) to the registry given with WithMetrics.
const (
	MetricGenerations       = "bitnet_inference_generations_total"      // finished generations, by model and finish reason
	MetricPromptTokens      = "bitnet_inference_prompt_tokens_total"    // prompt tokens processed, by model
	MetricGeneratedTokens   = "bitnet_inference_generated_tokens_total" // tokens generated, by model (tokens/s: rate())
	MetricFirstToken        = "bitnet_inference_first_token_seconds"    // time to first token, by model
	MetricGenerationTime    = "bitnet_inference_generation_seconds"     // submitted -> last token, by model
	MetricTokensPerSecond   = "bitnet_inference_tokens_per_second"      // generated tokens/s over the last minute
	MetricActiveRequests    = "bitnet_inference_active_requests"        // requests in the running batches
	MetricQueueDepth        = "bitnet_inference_queue_depth"            // requests waiting for a batch slot
	MetricQueueCapacity     = "bitnet_inference_queue_capacity"         // queue slots over the loaded models
	MetricLoadedModels      = "bitnet_inference_loaded_models"          // model versions in memory
	MetricMemoryUsedBytes   = "bitnet_inference_memory_used_bytes"      // bytes the loaded models take
	MetricMemoryBudgetBytes = "bitnet_inference_memory_budget_bytes"    // the loaded models' memory budget (0: none)
)

// WithMetrics exports the node's metrics (Metric* names) to reg, e.g. the
// registry its shared/server serves at /metrics (default: a private one,
// not exported). The gauges are read from the server at each scrape; a
// second Server on the same registry takes them over.
func WithMetrics(reg *metrics.Registry) Option { return func(c *serverConfig) { c.metrics = reg } }

// nodeMetrics are the counters and histograms Generate updates.
type nodeMetrics struct {
	generations *metrics.CounterVec
	prompt      *metrics.CounterVec
	generated   *metrics.CounterVec
	firstToken  *metrics.HistogramVec
	total       *metrics.HistogramVec
}

// tokenBuckets are latency buckets for a CPU node: 1 ms to 2 min.
var tokenBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

func newNodeMetrics(reg *metrics.Registry, s *Server) (*nodeMetrics, error) {
	m := &nodeMetrics{}
	var err error
	wrap := func(err error) error { return fmt.Errorf("inference server: metrics: %w", err) }
	if m.generations, err = reg.Counter(MetricGenerations, "Finished generations, by model and finish reason.", "model", "finish_reason"); err != nil {
		return nil, wrap(err)
	}
	if m.prompt, err = reg.Counter(MetricPromptTokens, "Prompt tokens processed, by model.", "model"); err != nil {
		return nil, wrap(err)
	}
	if m.generated, err = reg.Counter(MetricGeneratedTokens, "Tokens generated, by model.", "model"); err != nil {
		return nil, wrap(err)
	}
	if m.firstToken, err = reg.Histogram(MetricFirstToken, "Time from submission to the first token, seconds, by model.", tokenBuckets, "model"); err != nil {
		return nil, wrap(err)
	}
	if m.total, err = reg.Histogram(MetricGenerationTime, "Time from submission to the last token, seconds, by model.", tokenBuckets, "model"); err != nil {
		return nil, wrap(err)
	}
	gauges := []struct {
		name, help string
		fn         func() float64
	}{
		{MetricTokensPerSecond, "Generated tokens per second over the last minute.", func() float64 { return s.LoadProto().GetTokensPerSecond() }},
		{MetricActiveRequests, "Requests in the running batches.", func() float64 { return float64(s.LoadProto().GetActiveRequests()) }},
		{MetricQueueDepth, "Requests waiting for a batch slot.", func() float64 { return float64(s.LoadProto().GetQueueDepth()) }},
		{MetricQueueCapacity, "Queue slots over the loaded models.", func() float64 { return float64(s.LoadProto().GetQueueCapacity()) }},
		{MetricLoadedModels, "Model versions loaded in memory.", func() float64 { return float64(len(s.mgr.Loaded())) }},
		{MetricMemoryUsedBytes, "Bytes the loaded models take.", func() float64 { _, used := s.mgr.Budget(); return float64(used) }},
		{MetricMemoryBudgetBytes, "Memory budget of the loaded models in bytes (0: none).", func() float64 { b, _ := s.mgr.Budget(); return float64(b) }},
	}
	for _, g := range gauges {
		if err := reg.GaugeFunc(g.name, g.help, g.fn); err != nil {
			return nil, wrap(err)
		}
	}
	return m, nil
}

// finished records a generation's final event.
func (m *nodeMetrics) finished(model string, ev Event) {
	m.generations.With(model, ev.Finish.String()).Inc()
	m.prompt.With(model).Add(float64(ev.Usage.PromptTokens))
	m.generated.With(model).Add(float64(ev.Usage.CompletionTokens))
	if ev.Timings.FirstToken > 0 {
		m.firstToken.With(model).Observe(ev.Timings.FirstToken.Seconds())
	}
	m.total.With(model).Observe(ev.Timings.Total.Seconds())
}
