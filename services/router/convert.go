package router

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
)

// HardwareToPB converts a hardware report to its API message.
func HardwareToPB(r hardware.Report) *modelv1.Hardware {
	h := &modelv1.Hardware{
		Arch: r.Arch, Os: r.OS, Vendor: r.Vendor, Brand: r.Brand,
		Kernel: string(r.BestKernel), KernelCap: string(r.KernelCap),
		LogicalCores: uint32(max(r.LogicalCores, 0)), PhysicalCores: uint32(max(r.PhysicalCores, 0)),
		MemoryBytes:   r.MemoryBytes,
		CacheL1DBytes: uint64(max(r.CacheL1D, 0)), CacheL2Bytes: uint64(max(r.CacheL2, 0)), CacheL3Bytes: uint64(max(r.CacheL3, 0)),
		MetalDevice: r.Metal.Device,
		ReadGbps:    r.Perf.ReadGBps, DecodeTokS: r.Perf.DecodeTokS, PrefillTokS: r.Perf.PrefillTokS, KernelPlan: r.Perf.Plan,
	}
	for _, k := range r.Kernels {
		h.Kernels = append(h.Kernels, string(k))
	}
	f := r.Features
	for _, fl := range []struct {
		name string
		on   bool
	}{
		{"avx2", f.AVX2}, {"avx512f", f.AVX512F}, {"avx512bw", f.AVX512BW}, {"avx512vl", f.AVX512VL},
		{"avx512vnni", f.AVX512VNNI}, {"neon", f.NEON}, {"dotprod", f.DotProd}, {"sve", f.SVE}, {"metal", f.Metal},
	} {
		if fl.on {
			h.Features = append(h.Features, fl.name)
		}
	}
	return h
}

// nodeToPB describes a node from its advertised meta and the router's own
// count of requests in flight on it.
func nodeToPB(s nodeSnapshot) *inferencev1.Node {
	m := s.meta
	n := &inferencev1.Node{
		Name: s.id, Address: s.addr, Version: m.Version, Hardware: HardwareToPB(m.Hardware),
		Load: &inferencev1.NodeLoad{
			ActiveRequests:  uint32(max(m.Inflight, s.inflight)),
			QueueDepth:      uint32(m.QueueDepth),
			QueueCapacity:   uint32(m.QueueCapacity),
			TokensPerSecond: m.TokensPerSecond,
			P50FirstTokenMs: m.P50FirstTokenMS,
		},
		MemoryBudgetBytes: m.MemoryBudget, MemoryUsedBytes: m.MemoryUsed,
		Healthy: s.usable,
	}
	if !m.StartTime.IsZero() {
		n.StartTime = timestamppb.New(m.StartTime)
	}
	for _, ref := range m.LoadedModels {
		n.Loaded = append(n.Loaded, &inferencev1.LoadedModel{Model: ref, Node: s.id})
	}
	return n
}
