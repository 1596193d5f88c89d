package inference

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
)

// ListModels implements InferenceService: the fetcher's models (when it can
// list them) and the loaded ones, in name order, paged by name.
func (s *Server) ListModels(ctx context.Context, req *inferencev1.ListModelsRequest) (*inferencev1.ListModelsResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = 100
	case size > 1000:
		return nil, status.Errorf(codes.InvalidArgument, "page_size %d, want at most 1000", size)
	}
	after, err := decodeNameToken(req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	byName := map[string]*inferencev1.ServableModel{}
	get := func(name string) *inferencev1.ServableModel {
		m, ok := byName[name]
		if !ok {
			m = &inferencev1.ServableModel{Name: name}
			byName[name] = m
		}
		return m
	}
	if l, ok := s.mgr.Fetcher().(Lister); ok {
		locals, err := l.List(ctx)
		if err != nil {
			return nil, toStatus(err)
		}
		for _, loc := range locals {
			m := get(loc.Ref.GetName())
			if v := loc.Ref.GetVersion(); v >= m.LatestVersion {
				m.LatestVersion, m.Format, m.QuantType, m.SizeBytes = v, loc.Format, loc.Quant, uint64(loc.Size)
			}
		}
	}
	for _, li := range s.mgr.Loaded() {
		m := get(li.Ref.GetName())
		m.LatestVersion = max(m.LatestVersion, li.Ref.GetVersion())
		m.Loaded = append(m.Loaded, loadedProto(s.node, li))
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		if strings.HasPrefix(n, req.GetNamePrefix()) && n > after {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	resp := &inferencev1.ListModelsResponse{}
	for i, n := range names {
		if i == size {
			resp.NextPageToken = encodeNameToken(names[i-1])
			break
		}
		resp.Models = append(resp.Models, byName[n])
	}
	return resp, nil
}

// ModelStatus implements InferenceService.
func (s *Server) ModelStatus(ctx context.Context, req *inferencev1.ModelStatusRequest) (*inferencev1.ModelStatusResponse, error) {
	var filter *modelv1.ModelRef
	if req.GetModel() != "" {
		r, err := modelv1.ParseRef(req.GetModel())
		if err != nil {
			return nil, toStatus(err)
		}
		filter = r
	}
	resp := &inferencev1.ModelStatusResponse{}
	budget, used := s.mgr.Budget()
	resp.MemoryBudgetBytes, resp.MemoryUsedBytes = uint64(budget), uint64(used)
	for _, li := range s.mgr.Loaded() {
		if filter != nil && (li.Ref.GetName() != filter.GetName() || (filter.GetVersion() != 0 && li.Ref.GetVersion() != filter.GetVersion())) {
			continue
		}
		resp.Loaded = append(resp.Loaded, loadedProto(s.node, li))
	}
	if l, ok := s.mgr.Fetcher().(Lister); ok {
		if locals, err := l.List(ctx); err == nil {
			for _, loc := range locals {
				if filter == nil || loc.Ref.GetName() == filter.GetName() {
					resp.Cached = append(resp.Cached, loc.Ref)
				}
			}
		}
	}
	return resp, nil
}

// LoadModel implements InferenceService.
func (s *Server) LoadModel(ctx context.Context, req *inferencev1.LoadModelRequest) (*inferencev1.LoadModelResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	if n := req.GetNode(); n != "" && n != s.node {
		return nil, status.Errorf(codes.InvalidArgument, "node %q: this is node %q (ask the router to load elsewhere)", n, s.node)
	}
	if err := s.checkRequire(req.GetRequire()); err != nil {
		return nil, toStatus(err)
	}
	li, err := s.mgr.Load(ctx, req.GetModel())
	if err != nil {
		return nil, toStatus(err)
	}
	return &inferencev1.LoadModelResponse{Loaded: loadedProto(s.node, li)}, nil
}

// UnloadModel implements InferenceService.
func (s *Server) UnloadModel(ctx context.Context, req *inferencev1.UnloadModelRequest) (*inferencev1.UnloadModelResponse, error) {
	if req.GetModel() == "" {
		return nil, status.Error(codes.InvalidArgument, "model is required")
	}
	if n := req.GetNode(); n != "" && n != s.node {
		return nil, status.Errorf(codes.InvalidArgument, "node %q: this is node %q", n, s.node)
	}
	lis, err := s.mgr.Unload(ctx, req.GetModel())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &inferencev1.UnloadModelResponse{}
	for _, li := range lis {
		resp.Unloaded = append(resp.Unloaded, loadedProto(s.node, li))
	}
	return resp, nil
}

// NodeInfo implements InferenceService.
func (s *Server) NodeInfo(ctx context.Context, _ *inferencev1.NodeInfoRequest) (*inferencev1.NodeInfoResponse, error) {
	return &inferencev1.NodeInfoResponse{Node: s.NodeProto()}, nil
}

// NodeProto describes the node as NodeInfo does: hardware, load, loaded
// models and memory (also for Consul registration and the router).
func (s *Server) NodeProto() *inferencev1.Node {
	n := &inferencev1.Node{
		Name: s.node, Address: s.address, Version: s.version, Hardware: hardwareProto(s.hw),
		Healthy: true, StartTime: timestamppb.New(s.start), Load: s.LoadProto(),
	}
	budget, used := s.mgr.Budget()
	n.MemoryBudgetBytes, n.MemoryUsedBytes = uint64(budget), uint64(used)
	for _, li := range s.mgr.Loaded() {
		n.Loaded = append(n.Loaded, loadedProto(s.node, li))
	}
	return n
}

// LoadProto sums the schedulers' load over the loaded models.
func (s *Server) LoadProto() *inferencev1.NodeLoad {
	l := &inferencev1.NodeLoad{}
	var p50 float64
	for _, li := range s.mgr.Loaded() {
		st := li.Stats
		l.ActiveRequests += uint32(st.Active)
		l.QueueDepth += uint32(st.QueueDepth)
		l.QueueCapacity += uint32(st.QueueCapacity)
		l.BatchSize += uint32(st.BatchSize)
		l.TokensPerSecond += st.TokensPerSecond
		p50 = max(p50, ms(st.P50FirstToken)) // the slowest model's median
	}
	l.P50FirstTokenMs = p50
	l.CpuUtilization = s.cpu.utilization()
	return l
}

// Page tokens of ListModels: the last name of the page, tagged, so that a
// token this list did not return is INVALID_ARGUMENT rather than a page.
const nameTokenTag = "n:"

func encodeNameToken(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(nameTokenTag + name))
}

func decodeNameToken(t string) (string, error) {
	if t == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	name, ok := strings.CutPrefix(string(b), nameTokenTag)
	if err != nil || !ok || modelv1.CheckName(name) != nil {
		return "", invalidf("page token %q is not one this list returned", t)
	}
	return name, nil
}
