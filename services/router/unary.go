package router

import (
	"context"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
)

// unary sends one request to the best node for d, trying other nodes while
// they fail with a retryable error (the calls it forwards are idempotent).
func unary[T any](r *Router, ctx context.Context, method string, d demand, call func(context.Context, *node) (T, error)) (T, error) {
	var zero T
	ctx = outgoing(ctx)
	tried := map[string]bool{}
	var lastErr error
	for attempt := 0; attempt <= r.cfg.retries; attempt++ {
		n, err := r.pick(ctx, d, tried)
		if err != nil {
			err = noNodeErr(err, lastErr)
			r.metrics.noNode(err)
			return zero, err
		}
		tried[n.id] = true
		r.metrics.routed.WithLabelValues(n.id, method).Inc()
		resp, err := call(ctx, n)
		r.table.release(n)
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return resp, err
		}
		n.markFailed(time.Now(), r.cfg.failBackoff)
		r.metrics.retried(n.id, err)
		logging.FromContext(ctx, r.cfg.log).Warn("node failed: retrying", zap.String("node", n.id), zap.Error(err))
		lastErr = err
	}
	return zero, lastErr
}

// Tokenize forwards to a node, preferably one with the model loaded.
func (r *Router) Tokenize(ctx context.Context, req *inferencev1.TokenizeRequest) (*inferencev1.TokenizeResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	d, err := newDemand(req.GetModel(), nil, "")
	if err != nil {
		return nil, err
	}
	return unary(r, ctx, "Tokenize", d, func(ctx context.Context, n *node) (*inferencev1.TokenizeResponse, error) {
		return n.client.Tokenize(ctx, req)
	})
}

// Detokenize forwards to a node, preferably one with the model loaded.
func (r *Router) Detokenize(ctx context.Context, req *inferencev1.DetokenizeRequest) (*inferencev1.DetokenizeResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	d, err := newDemand(req.GetModel(), nil, "")
	if err != nil {
		return nil, err
	}
	return unary(r, ctx, "Detokenize", d, func(ctx context.Context, n *node) (*inferencev1.DetokenizeResponse, error) {
		return n.client.Detokenize(ctx, req)
	})
}

// LoadModel loads on the node named, or on the best node for the
// constraints (as Generate would choose it).
func (r *Router) LoadModel(ctx context.Context, req *inferencev1.LoadModelRequest) (*inferencev1.LoadModelResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	d, err := newDemand(req.GetModel(), req.GetRequire(), "")
	if err != nil {
		return nil, err
	}
	fwd := &inferencev1.LoadModelRequest{Model: req.GetModel()} // node and require are router-only
	call := func(ctx context.Context, n *node) (*inferencev1.LoadModelResponse, error) {
		resp, err := n.client.LoadModel(ctx, fwd)
		if l := resp.GetLoaded(); l != nil {
			l.Node = n.id
		}
		return resp, err
	}
	if req.GetNode() == "" {
		return unary(r, ctx, "LoadModel", d, call)
	}
	n, err := r.named(req.GetNode())
	if err != nil {
		return nil, err
	}
	defer r.table.release(n)
	if missing := d.unmet(n.snapshot(time.Now())); len(missing) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "node %s does not offer %v (it offers %s)", n.id, missing, offer(n.snapshot(time.Now()).meta.Hardware))
	}
	return call(outgoing(ctx), n)
}

// named acquires the node with ID id (NOT_FOUND when unknown).
func (r *Router) named(id string) (*node, error) {
	for _, s := range r.table.snapshot() {
		if s.id == id && r.table.acquire(s.n) {
			return s.n, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "router: no healthy inference node %q", id)
}

// UnloadModel unloads from the node named, or from every node.
func (r *Router) UnloadModel(ctx context.Context, req *inferencev1.UnloadModelRequest) (*inferencev1.UnloadModelResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	if _, err := newDemand(req.GetModel(), nil, ""); err != nil {
		return nil, err
	}
	fwd := &inferencev1.UnloadModelRequest{Model: req.GetModel()}
	if req.GetNode() != "" {
		n, err := r.named(req.GetNode())
		if err != nil {
			return nil, err
		}
		defer r.table.release(n)
		resp, err := n.client.UnloadModel(outgoing(ctx), fwd)
		for _, l := range resp.GetUnloaded() {
			l.Node = n.id
		}
		return resp, err
	}
	out := &inferencev1.UnloadModelResponse{}
	err := r.fanOut(ctx, func(ctx context.Context, n *node) (func(), error) {
		resp, err := n.client.UnloadModel(ctx, fwd)
		return func() {
			for _, l := range resp.GetUnloaded() {
				l.Node = n.id
				out.Unloaded = append(out.Unloaded, l)
			}
		}, err
	})
	return out, err
}

// Embed forwards to the best node for the model and constraints, as
// Generate does (a node that fails or has a full queue before answering is
// replaced by another, up to the retry limit). The response names the node.
func (r *Router) Embed(ctx context.Context, req *inferencev1.EmbedRequest) (*inferencev1.EmbedResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	d, err := newDemand(req.GetModel(), req.GetRequire(), req.GetPreferKernel())
	if err != nil {
		return nil, err
	}
	return unary(r, ctx, "Embed", d, func(ctx context.Context, n *node) (*inferencev1.EmbedResponse, error) {
		resp, err := n.client.Embed(ctx, req)
		if err == nil {
			resp.Node = n.id
			if resp.Kernel == "" {
				resp.Kernel = n.kernel()
			}
		}
		return resp, err
	})
}
