package quantizer

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/bitnet-mesh/bitnet-mesh/services/registry"
	"github.com/bitnet-mesh/bitnet-mesh/shared/jobs"
)

// panicSource panics on the second Resolve (the job's, after Create's), as
// a bug in a source would.
type panicSource struct {
	Source
	calls atomic.Int32
}

func (p *panicSource) Resolve(ctx context.Context, ref string) (registry.Version, error) {
	if p.calls.Add(1) > 1 {
		panic("source bug")
	}
	return p.Source.Resolve(ctx, ref)
}

// TestPanickingJobFails: a job that panics is recorded FAILED with
// jobs.ErrInternal (no panic text for the client) and the process lives on.
func TestPanickingJobFails(t *testing.T) {
	e, _ := pushed(t)
	b := registry.NewBackend(e.store)
	q, err := New(&panicSource{Source: b}, b, WithWorkDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	j, err := q.Create(ctx, Request{Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, q, j.ID, jobs.StateFailed)
	got, err := q.Get(ctx, j.ID)
	if err != nil || !errors.Is(got.Err, jobs.ErrInternal) || strings.Contains(got.Err.Error(), "source bug") {
		t.Fatalf("got %v %v, want a failed job with jobs.ErrInternal and no panic text", got.Err, err)
	}
}

// TestJobOverBudget: a source whose weights need more memory than the
// budget fails RESOURCE_EXHAUSTED from its config, before they are read,
// and the message names no path of this host.
func TestJobOverBudget(t *testing.T) {
	e, _ := pushed(t, WithMemoryBudget(1000))
	ctx := context.Background()
	j, err := e.q.Create(ctx, Request{Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, e.q, j.ID, jobs.StateFailed)
	got, _ := e.q.Get(ctx, j.ID)
	if code(got.Err) != codes.ResourceExhausted || !strings.Contains(got.Err.Error(), "budget") || strings.Contains(got.Err.Error(), os.TempDir()) {
		t.Fatalf("got %v (%v), want RESOURCE_EXHAUSTED naming the budget and no path", code(got.Err), got.Err)
	}
}
