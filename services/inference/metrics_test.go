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
	before := reg.WriteText()
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
	wants := []string{
		MetricLoadedModels + " 1\n",
		MetricGenerations + `{model="` + model + `",finish_reason="length"} 1`,
		MetricGeneratedTokens + `{model="` + model + `"} 3`,
		MetricFirstToken + `_count{model="` + model + `"} 1`,
		MetricGenerationTime + `_count{model="` + model + `"} 1`,
		MetricActiveRequests + " 0\n",
		MetricQueueDepth + " 0\n",
		"# TYPE " + MetricTokensPerSecond + " gauge",
		"# TYPE " + MetricMemoryUsedBytes + " gauge",
	}
	// The scheduler retires a request before its final message goes out, so
	// the gauges are settled when the client has read it.
	text := reg.WriteText()
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
