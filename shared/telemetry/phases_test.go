package telemetry

import (
	"context"
	"errors"
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestPhases(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, req := tp.Tracer("test").Start(context.Background(), "CreateJob")
	o := OriginOf(ctx)
	req.End()

	ph := o.StartJob("test", "quantize.job")
	ph.Enter("fetching")
	ph.Enter("fetching") // no new span
	ph.Enter("quantizing")
	ph.End(errors.New("boom"))

	spans := rec.Ended()
	var names []string
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		names = append(names, s.Name())
		byName[s.Name()] = s
	}
	want := []string{"CreateJob", "quantize.fetching", "quantize.quantizing", "quantize.job"}
	if !slices.Equal(names, want) {
		t.Fatalf("got spans %v, want %v", names, want)
	}
	job := byName["quantize.job"]
	if job.Parent().SpanID() != req.SpanContext().SpanID() || job.SpanContext().TraceID() != req.SpanContext().TraceID() {
		t.Errorf("job span: got parent %v, want the request's span", job.Parent())
	}
	for _, n := range []string{"quantize.fetching", "quantize.quantizing"} {
		if byName[n].Parent().SpanID() != job.SpanContext().SpanID() {
			t.Errorf("%s: got parent %v, want the job span", n, byName[n].Parent())
		}
	}
	if job.Status().Code.String() != "Error" {
		t.Errorf("job span status: got %v, want Error", job.Status())
	}

	// Without an origin nothing is recorded and nothing panics.
	var none Origin
	p := none.StartJob("test", "train.job")
	p.Enter("train")
	p.End(nil)
	if n := len(rec.Ended()); n != len(want) {
		t.Errorf("got %d spans after an untraced job, want %d", n, len(want))
	}
}
