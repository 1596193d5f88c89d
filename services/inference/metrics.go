package inference

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
)

// Metric names an inference Server exports (next to shared/server's per-RPC
// ones) to the registry given with WithMetrics. The per-request series are
// named as vLLM names them, with "bitnet:" for "vllm:", and labelled
// model_name (the loaded version, name@version), so that a vLLM dashboard
// works after that one substitution; docs/deploy.md lists them.
const (
	MetricTTFT             = "bitnet:time_to_first_token_seconds"  // submitted -> first token
	MetricInterToken       = "bitnet:inter_token_latency_seconds"  // gap before each generated token after the first, observed as it streams
	MetricE2E              = "bitnet:e2e_request_latency_seconds"  // submitted -> last token
	MetricQueueTime        = "bitnet:request_queue_time_seconds"   // submitted -> admitted into the batch
	MetricPrefillTime      = "bitnet:request_prefill_time_seconds" // admitted -> prompt processed
	MetricDecodeTime       = "bitnet:request_decode_time_seconds"  // first token -> last
	MetricPromptTokens     = "bitnet:prompt_tokens_total"          // prompt tokens processed
	MetricGenerationTokens = "bitnet:generation_tokens_total"      // tokens generated (tokens/s: rate())
	MetricRequestSuccess   = "bitnet:request_success_total"        // finished requests, by finished_reason
	MetricRunning          = "bitnet:num_requests_running"         // sequences in the running batch
	MetricWaiting          = "bitnet:num_requests_waiting"         // requests waiting for a batch slot
	MetricKVCacheUsage     = "bitnet:kv_cache_usage_perc"          // KV positions held / (max batch x context), 0..1
	MetricBatchSize        = "bitnet:iteration_batch_size"         // sequences per Forward call (histogram)
	MetricModelLoadTime    = "bitnet:model_load_time_seconds"      // how long the loaded version took to load

	MetricTokensPerSecond   = "bitnet_inference_tokens_per_second"   // generated tokens/s over the last minute
	MetricActiveRequests    = "bitnet_inference_active_requests"     // sequences in the running batches, over the loaded models
	MetricQueueDepth        = "bitnet_inference_queue_depth"         // requests waiting for a batch slot, over the loaded models (the HPAs' metric)
	MetricQueueCapacity     = "bitnet_inference_queue_capacity"      // queue slots over the loaded models
	MetricLoadedModels      = "bitnet_inference_loaded_models"       // model versions in memory
	MetricMemoryUsedBytes   = "bitnet_inference_memory_used_bytes"   // bytes the loaded models take
	MetricMemoryBudgetBytes = "bitnet_inference_memory_budget_bytes" // the loaded models' memory budget (0: none)
)

// WithMetrics exports the node's metrics (Metric* names) to reg, e.g. the
// registry its shared/server serves at /metrics (default: a private one,
// not exported). The gauges are read from the server at each scrape; a
// second Server on the same registry takes them over.
func WithMetrics(reg *metrics.Registry) Option { return func(c *serverConfig) { c.metrics = reg } }

// nodeMetrics are the counters and histograms Generate updates.
type nodeMetrics struct {
	success                             *prometheus.CounterVec
	prompt, generated                   *prometheus.CounterVec
	ttft, itl, e2e, queue, prefill, dec *prometheus.HistogramVec
}

// Buckets (seconds) for a CPU node. Time to first token and request
// latencies: 10 ms to 10 min; inter-token latency: 1 ms to 5 s; queue
// time: 1 ms to 5 min.
var (
	ttftBuckets    = []float64{.01, .025, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640}
	itlBuckets     = []float64{.001, .0025, .005, .01, .015, .02, .025, .03, .04, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 2.5, 5}
	requestBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 600}
	queueBuckets   = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
)

const modelLabel = "model_name"

func newNodeMetrics(reg *metrics.Registry, s *Server) (*nodeMetrics, error) {
	wrap := func(err error) error { return fmt.Errorf("inference server: metrics: %w", err) }
	counter := func(name, help string, labels ...string) (*prometheus.CounterVec, error) {
		return metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
	}
	hist := func(name, help string, buckets []float64) (*prometheus.HistogramVec, error) {
		return metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, []string{modelLabel}))
	}
	m := &nodeMetrics{}
	var err error
	for _, c := range []struct {
		dst         **prometheus.CounterVec
		name, help  string
		extraLabels []string
	}{
		{&m.success, MetricRequestSuccess, "Finished requests, by model and finish reason.", []string{"finished_reason"}},
		{&m.prompt, MetricPromptTokens, "Prompt tokens processed, by model.", nil},
		{&m.generated, MetricGenerationTokens, "Tokens generated, by model.", nil},
	} {
		if *c.dst, err = counter(c.name, c.help, append([]string{modelLabel}, c.extraLabels...)...); err != nil {
			return nil, wrap(err)
		}
	}
	for _, h := range []struct {
		dst        **prometheus.HistogramVec
		name, help string
		buckets    []float64
	}{
		{&m.ttft, MetricTTFT, "Time to first token in seconds (submitted to first token sampled), by model.", ttftBuckets},
		{&m.itl, MetricInterToken, "Inter-token latency in seconds: the time from one generated token of a request to the next, observed for each token after the first as it streams, by model.", itlBuckets},
		{&m.e2e, MetricE2E, "End-to-end request latency in seconds (submitted to last token), by model.", requestBuckets},
		{&m.queue, MetricQueueTime, "Time in seconds a request waited for a batch slot, by model.", queueBuckets},
		{&m.prefill, MetricPrefillTime, "Time in seconds the prompt took (prefill), by model.", requestBuckets},
		{&m.dec, MetricDecodeTime, "Time in seconds from the first token to the last (decode), by model.", requestBuckets},
	} {
		if *h.dst, err = hist(h.name, h.help, h.buckets); err != nil {
			return nil, wrap(err)
		}
	}
	gauges := []struct {
		name, help string
		fn         func() float64
	}{
		{MetricTokensPerSecond, "Generated tokens per second over the last minute.", func() float64 { return s.LoadProto().GetTokensPerSecond() }},
		{MetricActiveRequests, "Requests in the running batches, over the loaded models.", func() float64 { return float64(s.LoadProto().GetActiveRequests()) }},
		{MetricQueueDepth, "Requests waiting for a batch slot, over the loaded models.", func() float64 { return float64(s.LoadProto().GetQueueDepth()) }},
		{MetricQueueCapacity, "Queue slots over the loaded models.", func() float64 { return float64(s.LoadProto().GetQueueCapacity()) }},
		{MetricLoadedModels, "Model versions loaded in memory.", func() float64 { return float64(len(s.mgr.Loaded())) }},
		{MetricMemoryUsedBytes, "Bytes the loaded models take.", func() float64 { _, used := s.mgr.Budget(); return float64(used) }},
		{MetricMemoryBudgetBytes, "Memory budget of the loaded models in bytes (0: none).", func() float64 { b, _ := s.mgr.Budget(); return float64(b) }},
	}
	for _, g := range gauges {
		if err := reg.GaugeFunc(prometheus.GaugeOpts{Name: g.name, Help: g.help}, g.fn); err != nil {
			return nil, wrap(err)
		}
	}
	mc, err := metrics.Register(reg, newModelCollector(s))
	if err != nil {
		return nil, wrap(err)
	}
	mc.s.Store(s)
	return m, nil
}

// finished records a generation's final event.
func (m *nodeMetrics) finished(model string, ev Event) {
	m.success.WithLabelValues(model, ev.Finish.String()).Inc()
	m.prompt.WithLabelValues(model).Add(float64(ev.Usage.PromptTokens))
	m.generated.WithLabelValues(model).Add(float64(ev.Usage.CompletionTokens))
	t := ev.Timings
	m.e2e.WithLabelValues(model).Observe(t.Total.Seconds())
	m.queue.WithLabelValues(model).Observe(t.Queue.Seconds())
	if t.Prompt > 0 {
		m.prefill.WithLabelValues(model).Observe(t.Prompt.Seconds())
	}
	if t.FirstToken > 0 {
		m.ttft.WithLabelValues(model).Observe(t.FirstToken.Seconds())
		m.dec.WithLabelValues(model).Observe(t.Generation.Seconds())
	}
}

// token records the inter-token latency of ev's token: the real gap since
// the request's previous token (Event.TokenGap, stamped by the scheduler
// when it sampled the token), observed as the token streams, so a long
// generation shows in the histogram while it runs and one slow step shows
// as one slow gap, not spread over the request's average.
func (m *nodeMetrics) token(model string, ev Event) {
	if ev.TokenGap > 0 {
		m.itl.WithLabelValues(model).Observe(ev.TokenGap.Seconds())
	}
}

// modelCollector reads the loaded models' schedulers at each scrape.
type modelCollector struct {
	s                                     atomic.Pointer[Server] // a later Server on the registry takes over
	running, waiting, kv, batch, loadTime *prometheus.Desc
}

func newModelCollector(s *Server) *modelCollector {
	l := []string{modelLabel}
	c := &modelCollector{
		running:  prometheus.NewDesc(MetricRunning, "Sequences in the running batch, by model.", l, nil),
		waiting:  prometheus.NewDesc(MetricWaiting, "Requests waiting for a batch slot, by model.", l, nil),
		kv:       prometheus.NewDesc(MetricKVCacheUsage, "KV cache use, 0 to 1: positions held by the running sequences over max batch x context length, by model.", l, nil),
		batch:    prometheus.NewDesc(MetricBatchSize, "Sequences per Forward call of the batch scheduler, by model.", l, nil),
		loadTime: prometheus.NewDesc(MetricModelLoadTime, "Seconds the loaded model version took to load (read, place, start its scheduler), by model.", l, nil),
	}
	c.s.Store(s)
	return c
}

func (c *modelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.running, c.waiting, c.kv, c.batch, c.loadTime} {
		ch <- d
	}
}

func (c *modelCollector) Collect(ch chan<- prometheus.Metric) {
	for _, li := range c.s.Load().mgr.Loaded() {
		name := (&modelv1.ModelRef{Name: li.Ref.GetName(), Version: li.Ref.GetVersion()}).Text()
		st := li.Stats
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(st.Active), name)
		ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(st.QueueDepth), name)
		usage := 0.0
		if capacity := st.MaxBatch * li.ContextLength; capacity > 0 {
			usage = min(1, float64(st.KVTokens)/float64(capacity))
		}
		ch <- prometheus.MustNewConstMetric(c.kv, prometheus.GaugeValue, usage, name)
		buckets := make(map[float64]uint64, len(BatchSizeBuckets))
		var cum uint64
		for i, b := range BatchSizeBuckets {
			cum += st.BatchSizes[i]
			buckets[float64(b)] = cum
		}
		cum += st.BatchSizes[len(BatchSizeBuckets)]
		ch <- prometheus.MustNewConstHistogram(c.batch, cum, float64(st.BatchSizeSum), buckets, name)
		ch <- prometheus.MustNewConstMetric(c.loadTime, prometheus.GaugeValue, li.LoadDuration.Seconds(), name)
	}
}
