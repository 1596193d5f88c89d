package router

import (
	"context"
	"errors"
	"io"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
)

// Generate forwards the request to the best node and streams its answer
// back. A node that fails before its first message is marked failed and the
// request goes to another one (up to the retry limit); after the first
// message has been sent to the client an error ends the stream. The first
// and last messages carry the serving node's name, and its kernel when the
// node left it empty.
func (r *Router) Generate(req *inferencev1.GenerateRequest, stream grpc.ServerStreamingServer[inferencev1.GenerateResponse]) error {
	ctx := stream.Context()
	if req.GetModel() == "" {
		return status.Error(codes.InvalidArgument, "model is required")
	}
	d, err := newDemand(req.GetModel(), req.GetRequire(), req.GetPreferKernel())
	if err != nil {
		return err
	}
	ctx = outgoing(ctx)
	log := logging.FromContext(ctx, r.cfg.log)
	tried := map[string]bool{}
	var lastErr error
	for attempt := 0; attempt <= r.cfg.retries; attempt++ {
		n, err := r.pick(d, tried)
		if err != nil {
			err = noNodeErr(err, lastErr)
			r.metrics.noNode(err)
			return err
		}
		tried[n.id] = true
		r.metrics.routed.With(n.id, "Generate").Inc()
		sent, err := r.forward(ctx, n, req, stream)
		r.table.release(n)
		if err == nil || sent || ctx.Err() != nil || !retryable(err) {
			return err
		}
		n.markFailed(time.Now(), r.cfg.failBackoff)
		r.metrics.retried(n.id, err)
		log.Warn("node failed before first token: retrying", zap.String("node", n.id), zap.Int("attempt", attempt), zap.Error(err))
		lastErr = err
	}
	return lastErr
}

// forward runs the request on n, streaming to the client; sent reports
// whether any message reached the client (then it must not be retried).
func (r *Router) forward(ctx context.Context, n *node, req *inferencev1.GenerateRequest,
	stream grpc.ServerStreamingServer[inferencev1.GenerateResponse]) (sent bool, err error) {
	ctx, cancel := context.WithCancel(ctx) // ends the node's stream when the client goes
	defer cancel()
	begin := time.Now()
	// A call that had to wait for the connection measures the handshake,
	// not the node: its time to first token does not enter the average
	// (one such sample could keep an equal node unchosen for ttftStale).
	warm := n.conn.GetState() == connectivity.Ready
	up, err := n.client.Generate(ctx, req)
	if err != nil {
		return false, err
	}
	kernel := n.kernel()
	for {
		msg, err := up.Recv()
		if errors.Is(err, io.EOF) {
			if !sent { // a stream must say who served it: an empty one is the node's fault
				return false, status.Errorf(codes.Unavailable, "router: node %s ended the stream without a message", n.id)
			}
			return true, nil
		}
		if err != nil {
			return sent, err
		}
		if !sent {
			d := time.Since(begin)
			if warm {
				n.observeTTFT(d)
			}
			r.metrics.ttft.With(n.id).Observe(d.Seconds())
		}
		if !sent || msg.GetNode() != "" || msg.GetFinishReason() != inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED {
			msg.Node = n.id
			if msg.Kernel == "" {
				msg.Kernel = kernel
			}
		}
		if err := stream.Send(msg); err != nil {
			return true, err
		}
		sent = true
	}
}

// authorizationKey is the metadata key of the caller's credentials.
const authorizationKey = "authorization"

// outgoing carries the request ID to the node (the one the server
// interceptor put on ctx, else the client's, else a new one) and the
// caller's credentials, so that the node checks the caller's key and
// scopes, not the router's.
func outgoing(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	id := logging.RequestID(ctx)
	if id == "" {
		if v := md.Get(logging.RequestIDHeader); len(v) > 0 && logging.ValidRequestID(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		id = logging.NewRequestID()
	}
	kv := []string{logging.RequestIDHeader, id}
	for _, v := range md.Get(authorizationKey) {
		kv = append(kv, authorizationKey, v)
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// retryable reports whether a node's error before any answer means another
// node may do better: it is down or going down, or its queue is full.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	case codes.Canceled: // the router closed the node's connection (node left), not the client
		return true
	}
	return false
}

// noNodeErr is the error when pick finds nothing: the last node's error
// after retries, else pick's own.
func noNodeErr(pickErr, lastErr error) error {
	if errors.Is(pickErr, errNoneLeft) {
		if lastErr != nil {
			return lastErr
		}
		return status.Error(codes.Unavailable, "router: no inference node could take the request")
	}
	return pickErr
}
