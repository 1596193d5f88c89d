package inference

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/gguf"
	"github.com/bitnet-mesh/bitnet-mesh/shared/model"
)

// hostileGGUF writes a small valid GGUF and a copy whose block count claims
// a million blocks (issue 10, defect 3) to dir as good.gguf and huge.gguf.
func hostileGGUF(t *testing.T, dir string) {
	t.Helper()
	tok := opticksTokenizer(t)
	good := filepath.Join(dir, "good.gguf")
	if err := model.WriteGGUF(good, randomWeights(t, tok, 256, 256, 1, 4), tok); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wr, err := gguf.Rewrite(f, func(kv *gguf.KV) bool {
		if kv.Key == "bitnet.block_count" {
			kv.Value = uint32(1 << 20)
		}
		return true
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wr.WriteFile(filepath.Join(dir, "huge.gguf")); err != nil {
		t.Fatal(err)
	}
}

// TestManagerHostileGGUF is defect 3 at the node: a GGUF whose header
// claims a million blocks is refused from its header at once with
// FAILED_PRECONDITION and a message free of this node's paths, and a good
// model still loads right after.
func TestManagerHostileGGUF(t *testing.T) {
	dir := t.TempDir()
	hostileGGUF(t, dir)
	m := newTestManager(t, WithIdleTTL(0))
	m.f = DirFetcher{Root: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := m.Acquire(ctx, "huge")
	if code := status.Code(toStatus(err)); code != codes.FailedPrecondition || !errors.Is(err, ErrBadModel) {
		t.Fatalf("Acquire(huge): got %v (%v), want FAILED_PRECONDITION", code, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("refused after %v, want well within a second", took)
	}
	if msg := err.Error(); strings.Contains(msg, dir) || !strings.Contains(msg, "huge@1") || !strings.Contains(msg, "num_hidden_layers") {
		t.Errorf("error %q: want the model's name and the bad field, not the path %s", msg, dir)
	}
	h, err := m.Acquire(ctx, "good")
	if err != nil {
		t.Fatalf("Acquire(good) after the hostile one: %v", err)
	}
	h.Release()
}

// TestManagerAbandonedLoad: a load whose every caller stopped waiting is
// cancelled (the loader sees its context end) and forgotten, and the next
// caller loads the model afresh.
func TestManagerAbandonedLoad(t *testing.T) {
	m := newTestManager(t, WithIdleTTL(0))
	started, stopped := make(chan struct{}, 1), make(chan error, 1)
	m.cfg.loadModel = func(ctx context.Context, path string, opts ...model.Option) (*model.Model, error) {
		started <- struct{}{}
		<-ctx.Done() // a load that would take forever
		stopped <- ctx.Err()
		return nil, ctx.Err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	errs := make(chan error, 2)
	for range 2 { // two callers wait for the same load
		go func() {
			_, err := m.Acquire(ctx, tinyName)
			errs <- err
		}()
	}
	<-started
	for range 2 {
		if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire: got %v, want the caller's deadline", err)
		}
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("loader's context ended with %v, want Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the load went on after every caller gave up")
	}
	m.cfg.loadModel = model.LoadContext
	h, err := m.Acquire(context.Background(), tinyName)
	if err != nil {
		t.Fatalf("Acquire after an abandoned load: %v", err)
	}
	h.Release()
}

// TestDirFetcherNoPaths: a missing model is NOT_FOUND without the node's
// directory in the message.
func TestDirFetcherNoPaths(t *testing.T) {
	dir := t.TempDir()
	m := newTestManager(t)
	m.f = DirFetcher{Root: dir}
	_, err := m.Acquire(context.Background(), "nope")
	if !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), dir) {
		t.Errorf("got %v, want NOT_FOUND without %s", err, dir)
	}
	_ = os.Remove(dir)
}

// TestListModelsBadToken is defect 6: a page token the list did not
// return (page_token=garbage) is INVALID_ARGUMENT, not an empty page.
func TestListModelsBadToken(t *testing.T) {
	n := startNode(t, nil)
	for _, tok := range []string{"garbage", "zzzz", encodeNameToken("Bad Name")} {
		_, err := n.client.ListModels(context.Background(), &inferencev1.ListModelsRequest{PageToken: tok})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("page token %q: got %v, want InvalidArgument", tok, err)
		}
	}
}
