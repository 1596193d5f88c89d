package router

import (
	"context"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/logging"
)

// fanOut calls fn on every usable node at once (each bounded by
// fanOutTimeout) and then runs the merge functions of the nodes that
// answered, in node order. Nodes that fail are left out (and logged); it
// fails only when no node answered.
func (r *Router) fanOut(ctx context.Context, fn func(context.Context, *node) (merge func(), err error)) error {
	ctx = outgoing(ctx)
	var nodes []*node
	for _, s := range r.table.snapshot() {
		if s.usable && r.table.acquire(s.n) {
			nodes = append(nodes, s.n)
		}
	}
	if len(nodes) == 0 {
		return status.Error(codes.Unavailable, "router: no healthy inference node")
	}
	merges := make([]func(), len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			defer r.table.release(n)
			cctx, cancel := context.WithTimeout(ctx, fanOutTimeout)
			defer cancel()
			merges[i], errs[i] = fn(cctx, n)
		})
	}
	wg.Wait()
	var firstErr error
	ok := 0
	for i, n := range nodes {
		if errs[i] != nil {
			logging.FromContext(ctx, r.cfg.log).Warn("node left out of aggregate", zap.String("node", n.id), zap.Error(errs[i]))
			if firstErr == nil {
				firstErr = errs[i]
			}
			continue
		}
		ok++
		merges[i]()
	}
	if ok == 0 {
		return firstErr
	}
	return nil
}

// ListModels asks every node (each lists the registry's models and its own
// loaded versions) and merges: one entry per model, with every node's
// loaded versions.
func (r *Router) ListModels(ctx context.Context, req *inferencev1.ListModelsRequest) (*inferencev1.ListModelsResponse, error) {
	byName := map[string]*inferencev1.ServableModel{}
	out := &inferencev1.ListModelsResponse{}
	err := r.fanOut(ctx, func(ctx context.Context, n *node) (func(), error) {
		resp, err := n.client.ListModels(ctx, req)
		return func() {
			if out.NextPageToken == "" {
				out.NextPageToken = resp.GetNextPageToken()
			}
			for _, m := range resp.GetModels() {
				for _, l := range m.GetLoaded() {
					l.Node = n.id
				}
				if have := byName[m.GetName()]; have != nil {
					have.Loaded = append(have.Loaded, m.GetLoaded()...)
					continue
				}
				byName[m.GetName()] = m
				out.Models = append(out.Models, m)
			}
		}, err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out.Models, func(a, b *inferencev1.ServableModel) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

// ModelStatus sums every node's status.
func (r *Router) ModelStatus(ctx context.Context, req *inferencev1.ModelStatusRequest) (*inferencev1.ModelStatusResponse, error) {
	if req.GetModel() != "" {
		if _, err := newDemand(req.GetModel(), nil, ""); err != nil {
			return nil, err
		}
	}
	out := &inferencev1.ModelStatusResponse{}
	cached := map[string]bool{}
	err := r.fanOut(ctx, func(ctx context.Context, n *node) (func(), error) {
		resp, err := n.client.ModelStatus(ctx, req)
		return func() {
			for _, l := range resp.GetLoaded() {
				l.Node = n.id
				out.Loaded = append(out.Loaded, l)
			}
			out.MemoryBudgetBytes += resp.GetMemoryBudgetBytes()
			out.MemoryUsedBytes += resp.GetMemoryUsedBytes()
			for _, c := range resp.GetCached() {
				if !cached[c.Text()] {
					cached[c.Text()] = true
					out.Cached = append(out.Cached, c)
				}
			}
		}, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// NodeInfo describes the router: no hardware of its own, the mesh's totals.
func (r *Router) NodeInfo(ctx context.Context, _ *inferencev1.NodeInfoRequest) (*inferencev1.NodeInfoResponse, error) {
	self := &inferencev1.Node{
		Name: r.cfg.name, Version: r.cfg.version, Hardware: &modelv1.Hardware{},
		Load: &inferencev1.NodeLoad{}, Healthy: true, StartTime: timestamppb.New(r.start),
	}
	p50s := []float64{}
	for _, s := range r.table.snapshot() {
		if !s.usable {
			continue
		}
		n := nodeToPB(s)
		self.Load.ActiveRequests += n.Load.ActiveRequests
		self.Load.QueueDepth += n.Load.QueueDepth
		self.Load.QueueCapacity += n.Load.QueueCapacity
		self.Load.TokensPerSecond += n.Load.TokensPerSecond
		self.MemoryBudgetBytes += n.MemoryBudgetBytes
		self.MemoryUsedBytes += n.MemoryUsedBytes
		self.Loaded = append(self.Loaded, n.Loaded...)
		if n.Load.P50FirstTokenMs > 0 {
			p50s = append(p50s, n.Load.P50FirstTokenMs)
		}
	}
	if len(p50s) > 0 { // the median of the nodes' medians: a rough mesh figure
		slices.Sort(p50s)
		self.Load.P50FirstTokenMs = p50s[len(p50s)/2]
	}
	return &inferencev1.NodeInfoResponse{Node: self}, nil
}

// ListNodes lists the healthy nodes from their advertisements, with the
// router's own count of its requests on each when that is higher.
func (r *Router) ListNodes(ctx context.Context, req *inferencev1.ListNodesRequest) (*inferencev1.ListNodesResponse, error) {
	d, err := newDemand(req.GetModel(), req.GetRequire(), "")
	if err != nil {
		return nil, err
	}
	out := &inferencev1.ListNodesResponse{}
	for _, s := range r.table.snapshot() {
		if !s.usable || len(d.unmet(s)) > 0 || (d.model != nil && !s.meta.HasModel(d.model)) {
			continue
		}
		n := nodeToPB(s)
		n.Healthy = !s.failing
		out.Nodes = append(out.Nodes, n)
	}
	return out, nil
}
