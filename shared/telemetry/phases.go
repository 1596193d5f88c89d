package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Origin is where a background job was asked for: the span of the request
// that created it (its context and tracer provider), kept with the job so
// that the job's spans, made long after the request returned, join the
// request's trace. The zero Origin records nothing.
type Origin struct {
	sc trace.SpanContext
	tp trace.TracerProvider
}

// OriginOf returns the Origin of ctx's span.
func OriginOf(ctx context.Context) Origin {
	s := trace.SpanFromContext(ctx)
	if !s.SpanContext().IsValid() {
		return Origin{}
	}
	return Origin{sc: s.SpanContext(), tp: s.TracerProvider()}
}

// Phases records a job as a span (a child of its Origin) and each of its
// phases as a consecutive child span named prefix+"."+phase. Not safe for
// concurrent use: one goroutine runs a job's phases.
type Phases struct {
	ctx    context.Context
	tracer trace.Tracer
	prefix string
	job    trace.Span
	phase  string
	span   trace.Span
}

// StartJob starts the job span name (e.g. "quantize.job") under o, with
// attrs. Without an Origin it records nothing.
func (o Origin) StartJob(scope, name string, attrs ...attribute.KeyValue) *Phases {
	tp := o.tp
	if tp == nil {
		tp = Off().Provider
	}
	ctx := context.Background()
	if o.sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, o.sc)
	}
	tr := tp.Tracer(scope)
	ctx, job := tr.Start(ctx, name, trace.WithAttributes(attrs...))
	prefix := name
	if i := len(name) - len(".job"); i > 0 && name[i:] == ".job" {
		prefix = name[:i]
	}
	return &Phases{ctx: ctx, tracer: tr, prefix: prefix, job: job}
}

// Enter ends the current phase's span, if any, and starts phase's; the
// same phase again does nothing.
func (p *Phases) Enter(phase string) {
	if p == nil || phase == p.phase {
		return
	}
	if p.span != nil {
		p.span.End()
	}
	p.phase = phase
	_, p.span = p.tracer.Start(p.ctx, p.prefix+"."+phase)
}

// End ends the current phase and the job, marking both failed with err.
func (p *Phases) End(err error) {
	if p == nil {
		return
	}
	for _, s := range []trace.Span{p.span, p.job} {
		if s == nil {
			continue
		}
		if err != nil {
			s.RecordError(err)
			s.SetStatus(otelcodes.Error, "job failed")
		}
		s.End()
	}
	p.span = nil
}
