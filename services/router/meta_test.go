package router

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	modelv1 "github.com/bitnet-mesh/bitnet-mesh/proto/bitnet/model/v1"
	"github.com/bitnet-mesh/bitnet-mesh/shared/hardware"
	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
)

func TestNodeMetaRoundTrip(t *testing.T) {
	in := NodeMeta{
		Hardware:        hwReport(kernels.AVX512),
		Version:         "1.2.3",
		LoadedModels:    []*modelv1.ModelRef{{Name: "tiny", Version: 2}, {Name: "big", Version: 11}},
		Inflight:        3,
		QueueDepth:      1,
		QueueCapacity:   64,
		P50FirstTokenMS: 12.5,
		TokensPerSecond: 230,
		MemoryBudget:    8 << 30,
		MemoryUsed:      1 << 30,
		StartTime:       time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
	}
	meta := in.Meta()
	if meta[KeyLoadedModels] != "tiny@2,big@11" || meta[hardware.KeyKernel] != "avx512" {
		t.Errorf("got meta %v, want loaded_models tiny@2,big@11 and kernel avx512", meta)
	}
	out, err := ParseNodeMeta(meta)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Meta(), meta) {
		t.Errorf("got %v after a round trip, want %v", out.Meta(), meta)
	}
	if out.Inflight != 3 || out.P50FirstTokenMS != 12.5 || !out.StartTime.Equal(in.StartTime) || len(out.LoadedModels) != 2 {
		t.Errorf("got %+v, want the input back", out)
	}

	// Only hardware: the rest reads as zero.
	min, err := ParseNodeMeta(hwReport(kernels.Generic).Meta())
	if err != nil || min.Inflight != 0 || min.LoadedModels != nil || !min.StartTime.IsZero() {
		t.Errorf("got %+v err %v from hardware-only meta, want zero load", min, err)
	}
}

func TestNodeMetaLoadedModelsClipped(t *testing.T) {
	var m NodeMeta
	m.Hardware = hwReport(kernels.AVX2)
	for range 100 {
		m.LoadedModels = append(m.LoadedModels, &modelv1.ModelRef{Name: "model-with-a-long-name", Version: 12345})
	}
	v := m.Meta()[KeyLoadedModels]
	if len(v) > hardware.MaxMetaValue || len(v) < hardware.MaxMetaValue-30 {
		t.Errorf("got loaded_models of %d bytes, want close to but at most %d", len(v), hardware.MaxMetaValue)
	}
	if _, err := ParseNodeMeta(m.Meta()); err != nil {
		t.Errorf("clipped meta does not parse: %v", err)
	}
	m.Version = strings.Repeat("é", 400)
	if got := len(m.Meta()[KeyVersion]); got > hardware.MaxMetaValue {
		t.Errorf("got version of %d bytes, want at most %d", got, hardware.MaxMetaValue)
	}
}

func TestParseNodeMetaErrors(t *testing.T) {
	good := NodeMeta{Hardware: hwReport(kernels.AVX2)}.Meta()
	tests := []struct {
		key, value, want string
	}{
		{hardware.KeyKernel, "", `"kernel"`},
		{KeyLoadedModels, "tiny@2,Bad Name", `"loaded_models"`},
		{KeyLoadedModels, "tiny@0", `"loaded_models"`},
		{KeyInflight, "-1", `"inflight"`},
		{KeyQueueDepth, "lots", `"queue_depth"`},
		{KeyQueueCapacity, "99999999999", `"queue_capacity"`},
		{KeyP50FirstTokenMS, "NaN", `"p50_first_token_ms"`},
		{KeyTokensPerSecond, "-3", `"tokens_per_second"`},
		{KeyMemoryBudget, "-1", `"memory_budget_bytes"`},
		{KeyMemoryUsed, "1e9", `"memory_used_bytes"`},
		{KeyStartTime, "yesterday", `"start_time"`},
	}
	for _, tt := range tests {
		m := maps.Clone(good)
		m[tt.key] = tt.value
		_, err := ParseNodeMeta(m)
		if !errors.Is(err, ErrNodeMeta) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%q: got %v, want ErrNodeMeta naming %s", tt.key, tt.value, err, tt.want)
		}
	}
}

func TestHasModel(t *testing.T) {
	m := NodeMeta{LoadedModels: []*modelv1.ModelRef{{Name: "tiny", Version: 2}}}
	for _, tt := range []struct {
		ref  string
		want bool
	}{{"tiny", true}, {"tiny@2", true}, {"tiny@3", false}, {"tiny:prod", true}, {"big", false}} {
		ref, _ := modelv1.ParseRef(tt.ref)
		if got := m.HasModel(ref); got != tt.want {
			t.Errorf("HasModel(%s): got %v, want %v", tt.ref, got, tt.want)
		}
	}
}

// FuzzParseNodeMeta feeds Meta as "key=value" lines: ParseNodeMeta must not
// panic, and what it accepts must survive Meta and ParseNodeMeta again.
func FuzzParseNodeMeta(f *testing.F) {
	for _, m := range []map[string]string{
		NodeMeta{Hardware: hwReport(kernels.AVX512), LoadedModels: []*modelv1.ModelRef{{Name: "tiny", Version: 2}}, Inflight: 2}.Meta(),
		hwReport(kernels.NEON).Meta(),
	} {
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(m)) {
			b.WriteString(k + "=" + m[k] + "\n")
		}
		f.Add(b.String())
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 { // per-input cost bound
			return
		}
		meta := map[string]string{}
		for line := range strings.SplitSeq(s, "\n") {
			k, v, _ := strings.Cut(line, "=")
			meta[k] = v
		}
		m, err := ParseNodeMeta(meta)
		if err != nil {
			return
		}
		again, err := ParseNodeMeta(m.Meta())
		if err != nil {
			t.Fatalf("Meta of an accepted input does not parse: %v", err)
		}
		if !reflect.DeepEqual(again.Meta(), m.Meta()) {
			t.Fatalf("got %v after a second round trip, want %v", again.Meta(), m.Meta())
		}
	})
}
