package inference

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metrics"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
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

// pacedModel makes decode steps alternate between a short and a long
// delay, so a request's real inter-token gaps differ from their mean.
type pacedModel struct {
	*model.Model
	short, long time.Duration
}

func (p *pacedModel) Forward(ctx context.Context, steps []model.Step) error {
	if len(steps) == 1 && len(steps[0].Tokens) == 1 { // one sequence decoding
		d := p.short
		if steps[0].Seq.Len()%2 == 1 {
			d = p.long
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return p.Model.Forward(ctx, steps)
}

// TestInterTokenLatencyIsThePerTokenGap checks that the inter-token
// histogram holds the real gap before each token after the first, as a
// client of the stream sees them: as many observations as gaps, the same
// sum, and the same split between short and long gaps (a request's mean
// gap, observed once per token, would put every gap on one side).
func TestInterTokenLatencyIsThePerTokenGap(t *testing.T) {
	const (
		short, long = 2 * time.Millisecond, 150 * time.Millisecond
		split       = 0.1 // a histogram bucket bound between them (seconds)
	)
	reg := metrics.NewRegistry()
	n := startNode(t, func(*testNode) []Option {
		return []Option{WithMetrics(reg), WithManager(withModelWrapper(func(m *model.Model) Model {
			return &pacedModel{Model: m, short: short, long: long}
		}))}
	})
	stream, err := n.client.Generate(context.Background(), greedyReq("Light", 17))
	if err != nil {
		t.Fatal(err)
	}
	var (
		arrivals []time.Time
		last     *inferencev1.GenerateResponse
	)
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if len(msg.GetTokenIds()) > 0 {
			arrivals = append(arrivals, now)
		}
		last = msg
	}
	var gaps []time.Duration
	var clientSum time.Duration
	clientShort := 0
	for i := 1; i < len(arrivals); i++ {
		g := arrivals[i].Sub(arrivals[i-1])
		gaps = append(gaps, g)
		clientSum += g
		if g.Seconds() <= split {
			clientShort++
		}
	}
	if len(gaps) < 6 || clientShort < 2 || len(gaps)-clientShort < 2 {
		t.Fatalf("got %d token gaps (%d short) as the client saw them %v, want at least 6 with short and long ones", len(gaps), clientShort, gaps)
	}
	if got, want := last.GetUsage().GetCompletionTokens(), uint32(len(arrivals)); got != want {
		t.Fatalf("got %d completion tokens, want %d (one token per message)", got, want)
	}

	ref := last.GetModel()
	h := histogram(t, reg, MetricInterToken, (&modelv1.ModelRef{Name: ref.GetName(), Version: ref.GetVersion()}).Text())
	if got, want := h.GetSampleCount(), uint64(len(gaps)); got != want {
		t.Errorf("got %d observations, want %d (one per token after the first)", got, want)
	}
	// The sums differ only by the delivery delays of the first and last
	// token's messages.
	sum := time.Duration(h.GetSampleSum() * float64(time.Second))
	if tol := max(100*time.Millisecond, clientSum/10); (sum - clientSum).Abs() > tol {
		t.Errorf("got sum %v, want the client's %v within %v", sum, clientSum, tol)
	}
	var below uint64
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == split {
			below = b.GetCumulativeCount()
		}
	}
	if d := int(below) - clientShort; d < -1 || d > 1 {
		t.Errorf("got %d observations <= %gs, want the client's %d short gaps (of %d) within 1: %v", below, split, clientShort, len(gaps), gaps)
	}
}

// histogram returns the histogram name{model_name=model} from reg.
func histogram(t *testing.T, reg *metrics.Registry, name, model string) *dto.Histogram {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == modelLabel && l.GetValue() == model {
					return m.GetHistogram()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q} in the registry", name, modelLabel, model)
	return nil
}
