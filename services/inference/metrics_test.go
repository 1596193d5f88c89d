package inference

import (
	"context"
	"strings"
	"testing"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
)

func TestMetricsAfterGenerate(t *testing.T) {
	reg := metrics.NewRegistry()
	n := startNode(t, func(*testNode) []Option { return []Option{WithMetrics(reg)} })
	before, err := reg.Text()
	if err != nil {
		t.Fatal(err)
	}
	if want := MetricLoadedModels + " 0\n"; !strings.Contains(before, want) {
		t.Errorf("before traffic: got\n%s\nwant a line %q", before, want)
	}
	stream, err := n.client.Generate(context.Background(), greedyReq("Light", 3))
	if err != nil {
		t.Fatal(err)
	}
	resps, err := readAll(stream)
	if err != nil {
		t.Fatal(err)
	}
	ref := resps[len(resps)-1].GetModel()
	model := (&modelv1.ModelRef{Name: ref.GetName(), Version: ref.GetVersion()}).Text()
	m := `{model_name="` + model + `"}`
	wants := []string{
		MetricLoadedModels + " 1\n",
		MetricRequestSuccess + `{finished_reason="length",model_name="` + model + `"} 1`,
		MetricGenerationTokens + m + " 3",
		MetricPromptTokens + m,
		MetricTTFT + `_count` + m + " 1",
		MetricE2E + `_count` + m + " 1",
		MetricQueueTime + `_count` + m + " 1",
		MetricPrefillTime + `_count` + m + " 1",
		MetricDecodeTime + `_count` + m + " 1",
		MetricInterToken + `_count` + m + " 2", // 3 tokens: 2 gaps
		MetricRunning + m + " 0\n",
		MetricActiveRequests + " 0\n",
		MetricQueueDepth + " 0\n",
		MetricWaiting + m + " 0\n",
		MetricKVCacheUsage + m,
		MetricBatchSize + `_bucket{model_name="` + model + `",le="1"}`,
		MetricModelLoadTime + m,
		"# TYPE " + MetricTokensPerSecond + " gauge",
		"# TYPE " + MetricMemoryUsedBytes + " gauge",
	}
	// The scheduler retires a request before its final message goes out, so
	// the gauges are settled when the client has read it.
	text, err := reg.Text()
	if err != nil {
		t.Fatal(err)
	}
	if m := missing(text, wants); m != "" {
		t.Errorf("got\n%s\nwant a line with %q", text, m)
	}
}

// missing returns the first of wants that text lacks ("" when none).
func missing(text string, wants []string) string {
	for _, w := range wants {
		if !strings.Contains(text, w) {
			return w
		}
	}
	return ""
}
