package sdk

import (
	"context"
	"math/rand/v2"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bitnet-mesh/bitnet-mesh/shared/requestid"
)

type requestIDKey struct{}

// ContextWithRequestID makes the calls made with the returned context carry
// id as their x-request-id.
func ContextWithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// withRequestID adds an x-request-id to the outgoing metadata unless one is
// there: the context's, the client's fixed one, or a fresh random one.
func withRequestID(ctx context.Context, fixed string) context.Context {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(requestid.Header)) > 0 {
		return ctx
	}
	id, _ := ctx.Value(requestIDKey{}).(string)
	if id == "" {
		id = fixed
	}
	if id == "" {
		id = requestid.New()
	}
	return requestid.Outgoing(ctx, id)
}

func requestIDUnary(fixed string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(withRequestID(ctx, fixed), method, req, reply, cc, opts...)
	}
}

func requestIDStream(fixed string) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(withRequestID(ctx, fixed), desc, cc, method, opts...)
	}
}

// retryable reports whether a failed call may succeed when repeated.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}

// delay is the wait before retry n (from 1): the server's RetryInfo when it
// sent one, else a random time in [d/2, d] with d = Backoff*2^(n-1) capped.
func (p RetryPolicy) delay(n int, err error) time.Duration {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				return min(ri.GetRetryDelay().AsDuration(), max(p.MaxBackoff, time.Second))
			}
		}
	}
	d := p.Backoff
	for i := 1; i < n && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func retryUnary(p RetryPolicy) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		var err error
		for n := 1; ; n++ {
			err = invoker(ctx, method, req, reply, cc, opts...)
			if err == nil || !retryable(err) || n >= p.MaxAttempts {
				return err
			}
			if serr := sleep(ctx, p.delay(n, err)); serr != nil {
				return err // the caller's deadline ends the retries; report the call's error
			}
		}
	}
}

// retryLoop runs fn until it succeeds, fails with an error that retry says
// is final, or the policy's attempts are spent; streams use it to resume.
func (p RetryPolicy) retryLoop(ctx context.Context, retry func(error) bool, fn func() error) error {
	var err error
	for n := 1; ; n++ {
		err = fn()
		if err == nil || !retry(err) || n >= p.MaxAttempts || ctx.Err() != nil {
			return err
		}
		if serr := sleep(ctx, p.delay(n, err)); serr != nil {
			return err
		}
	}
}
