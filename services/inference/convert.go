package inference

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	inferencev1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/inference/v1"
	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
)

func toU32(ids []int) []uint32 {
	if len(ids) == 0 {
		return nil
	}
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// finishProto maps a finish reason to the API's: an end token and a stop
// string are both STOP.
func finishProto(f FinishReason) inferencev1.FinishReason {
	switch f {
	case FinishStop, FinishEOS:
		return inferencev1.FinishReason_FINISH_REASON_STOP
	case FinishLength:
		return inferencev1.FinishReason_FINISH_REASON_LENGTH
	case FinishContext:
		return inferencev1.FinishReason_FINISH_REASON_CONTEXT_LENGTH
	}
	return inferencev1.FinishReason_FINISH_REASON_UNSPECIFIED
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func timingsProto(t Timings) *modelv1.Timings {
	return &modelv1.Timings{
		QueueMs: ms(t.Queue), PromptMs: ms(t.Prompt), FirstTokenMs: ms(t.FirstToken),
		GenerationMs: ms(t.Generation), TotalMs: ms(t.Total),
		PromptTokensPerSecond: t.PromptTokensPerSecond, TokensPerSecond: t.TokensPerSecond,
	}
}

// byteLevel writes raw token bytes in the byte-level BPE alphabet of the
// tokenizer's vocabulary (GPT-2's bytes_to_unicode: printable Latin-1 bytes
// stand for themselves, the others map to U+0100 upwards).
func byteLevel(raw string) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		b.WriteRune(byteRune(raw[i]))
	}
	return b.String()
}

func byteRune(c byte) rune {
	printable := func(c byte) bool { return ('!' <= c && c <= '~') || (0xA1 <= c && c <= 0xAC) || 0xAE <= c }
	if printable(c) {
		return rune(c)
	}
	n := 0
	for x := 0; x < int(c); x++ {
		if !printable(byte(x)) {
			n++
		}
	}
	return rune(256 + n)
}

func loadedProto(node string, li LoadedInfo) *inferencev1.LoadedModel {
	return &inferencev1.LoadedModel{
		Model: li.Ref, Node: node, MemoryBytes: uint64(li.Bytes),
		QuantType: li.Quant, ContextLength: uint32(li.ContextLength),
		ActiveRequests: uint32(li.Active),
		LoadTime:       timestamppb.New(li.LoadTime), LastUsedTime: timestamppb.New(li.LastUsed),
	}
}

// hardwareProto converts a hardware report for NodeInfo.
func hardwareProto(r hardware.Report) *modelv1.Hardware {
	h := &modelv1.Hardware{
		Arch: r.Arch, Os: r.OS, Vendor: r.Vendor, Brand: r.Brand,
		Kernel: string(r.BestKernel), KernelCap: string(r.KernelCap),
		LogicalCores: uint32(r.LogicalCores), PhysicalCores: uint32(r.PhysicalCores),
		MemoryBytes: r.MemoryBytes, CacheL1DBytes: uint64(r.CacheL1D), CacheL2Bytes: uint64(r.CacheL2),
		CacheL3Bytes: uint64(r.CacheL3), MetalDevice: r.Metal.Device,
		ReadGbps: r.Perf.ReadGBps, DecodeTokS: r.Perf.DecodeTokS, PrefillTokS: r.Perf.PrefillTokS, KernelPlan: r.Perf.Plan,
	}
	for _, k := range r.Kernels {
		h.Kernels = append(h.Kernels, string(k))
	}
	f := r.Features
	for _, x := range []struct {
		on   bool
		name string
	}{{f.AVX2, "avx2"}, {f.AVX512F, "avx512f"}, {f.AVX512BW, "avx512bw"}, {f.AVX512VL, "avx512vl"},
		{f.AVX512VNNI, "avx512vnni"}, {f.NEON, "neon"}, {f.DotProd, "dotprod"}, {f.SVE, "sve"}, {f.Metal, "metal"}} {
		if x.on {
			h.Features = append(h.Features, x.name)
		}
	}
	return h
}
