package inference

import (
	"context"
	"strings"
	"testing"
	"time"

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
	// The client can hold the last message before the scheduler has retired
	// the request from its batch: give the gauges a moment to settle.
	var text string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		text = reg.WriteText()
		if missing(text, wants) == "" || time.Now().After(deadline) {
			break
		}
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
