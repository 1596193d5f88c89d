package sdk_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/registry/v1"
	"github.com/bitnet-mesh/bitnet-mesh/sdk"
)

// flakyRegistry fails GetModel with the queued errors, then succeeds, and
// records the request metadata of every call.
type flakyRegistry struct {
	registryv1.UnimplementedRegistryServiceServer
	mu    sync.Mutex
	errs  []error
	calls int
	md    []metadata.MD
}

func (f *flakyRegistry) GetModel(ctx context.Context, req *registryv1.GetModelRequest) (*registryv1.GetModelResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	md, _ := metadata.FromIncomingContext(ctx)
	f.md = append(f.md, md)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return &registryv1.GetModelResponse{Model: &registryv1.Model{Name: req.GetName()}}, nil
}

func startFlaky(t *testing.T, f *flakyRegistry, opts ...sdk.Option) *sdk.Client {
	return startServer(t, func(g grpc.ServiceRegistrar) { registryv1.RegisterRegistryServiceServer(g, f) }, opts...)
}

func retryInfo(d time.Duration) error {
	st, err := status.New(codes.ResourceExhausted, "queue full").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func TestRetry(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "node restarting")
	tests := []struct {
		name      string
		errs      []error
		attempts  int
		wantCode  codes.Code
		wantCalls int
	}{
		{"recovers", []error{unavailable, unavailable}, 5, codes.OK, 3},
		{"retry info", []error{retryInfo(time.Millisecond)}, 5, codes.OK, 2},
		{"gives up", []error{unavailable, unavailable, unavailable}, 2, codes.Unavailable, 2},
		{"not retryable", []error{status.Error(codes.NotFound, "no such model")}, 5, codes.NotFound, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flakyRegistry{errs: tt.errs}
			c := startFlaky(t, f, sdk.WithRetry(tt.attempts, time.Millisecond))
			_, _, err := c.Registry().Get(context.Background(), "m")
			if status.Code(err) != tt.wantCode || f.calls != tt.wantCalls {
				t.Errorf("got %v after %d calls, want code %v after %d", err, f.calls, tt.wantCode, tt.wantCalls)
			}
		})
	}
}

func TestRetryRespectsDeadline(t *testing.T) {
	f := &flakyRegistry{errs: []error{status.Error(codes.Unavailable, "down"), status.Error(codes.Unavailable, "down")}}
	c := startFlaky(t, f, sdk.WithRetry(10, time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := c.Registry().Get(ctx, "m")
	if status.Code(err) != codes.Unavailable || time.Since(start) > 10*time.Second {
		t.Errorf("got %v after %v, want Unavailable once the deadline passed", err, time.Since(start))
	}
}

func TestRequestIDAndUserAgent(t *testing.T) {
	f := &flakyRegistry{errs: []error{status.Error(codes.Unavailable, "down")}}
	c := startFlaky(t, f, sdk.WithRetry(3, time.Millisecond), sdk.WithUserAgent("bitnet-cli/test"))
	if _, _, err := c.Registry().Get(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
	ctx := sdk.ContextWithRequestID(context.Background(), "req-42")
	if _, _, err := c.Registry().Get(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	if len(f.md) != 3 {
		t.Fatalf("got %d calls, want 3", len(f.md))
	}
	id0, id1 := f.md[0].Get("x-request-id"), f.md[1].Get("x-request-id")
	if len(id0) != 1 || len(id1) != 1 || id0[0] != id1[0] || id0[0] == "" {
		t.Errorf("retried call: got request IDs %v and %v, want one shared ID", id0, id1)
	}
	if got := f.md[2].Get("x-request-id"); len(got) != 1 || got[0] != "req-42" {
		t.Errorf("got request ID %v, want req-42", got)
	}
	if ua := f.md[0].Get("user-agent"); len(ua) == 0 || !strings.HasPrefix(ua[0], "bitnet-cli/test bitnet-sdk/v1") {
		t.Errorf("got user agent %v, want bitnet-cli/test bitnet-sdk/v1 ...", ua)
	}

	f2 := &flakyRegistry{}
	c2 := startFlaky(t, f2, sdk.WithRequestID("fixed-1"))
	if _, _, err := c2.Registry().Get(context.Background(), "m"); err != nil {
		t.Fatal(err)
	}
	if got := f2.md[0].Get("x-request-id"); len(got) != 1 || got[0] != "fixed-1" {
		t.Errorf("got request ID %v, want fixed-1", got)
	}
}

func TestErrorKeepsStatus(t *testing.T) {
	f := &flakyRegistry{errs: []error{status.Error(codes.PermissionDenied, "nope")}}
	c := startFlaky(t, f)
	_, _, err := c.Registry().Get(context.Background(), "m")
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("got code %v, want PermissionDenied", status.Code(err))
	}
	if want := `get model "m": PermissionDenied: nope`; err.Error() != want {
		t.Errorf("got message %q, want %q", err.Error(), want)
	}
}

func TestDialErrors(t *testing.T) {
	if _, err := sdk.Dial(context.Background(), ""); err == nil {
		t.Error("empty address: got no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sdk.Dial(ctx, "127.0.0.1:1"); err == nil {
		t.Error("cancelled context: got no error")
	}
}
