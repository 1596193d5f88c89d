package hardware

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"

	"github.com/bitnet-mesh/bitnet-mesh/shared/kernels"
	"github.com/bitnet-mesh/bitnet-mesh/shared/metal"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestDetect(t *testing.T) {
	r, err := Detect()
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	if r.Arch != runtime.GOARCH || r.OS != runtime.GOOS {
		t.Errorf("got %s/%s, want %s/%s", r.OS, r.Arch, runtime.GOOS, runtime.GOARCH)
	}
	if r.BestKernel != kernels.Best() {
		t.Errorf("got BestKernel %q, want kernels.Best() = %q", r.BestKernel, kernels.Best())
	}
	if !slices.Equal(r.Kernels, kernels.Supported()) {
		t.Errorf("got Kernels %v, want kernels.Supported() = %v", r.Kernels, kernels.Supported())
	}
	if r.LogicalCores <= 0 || r.PhysicalCores <= 0 || r.PhysicalCores > r.LogicalCores {
		t.Errorf("got %d physical / %d logical cores, want 0 < physical <= logical", r.PhysicalCores, r.LogicalCores)
	}
	if runtime.GOOS == "linux" && r.MemoryBytes == 0 {
		t.Errorf("got MemoryBytes 0, want the machine's memory")
	}
	if r.Metal != metal.Probe() || r.Features.Metal != r.Metal.Available {
		t.Errorf("got Metal %+v (flag %t), want %+v", r.Metal, r.Features.Metal, metal.Probe())
	}
	if runtime.GOARCH == "arm64" && !r.Features.NEON {
		t.Errorf("got NEON false on arm64, want true")
	}
	if runtime.GOARCH != "amd64" && (r.Features.AVX2 || r.Features.AVX512F) {
		t.Errorf("got x86 features %+v on %s", r.Features, runtime.GOARCH)
	}
	t.Logf("%+v", r)
}

func TestDetectCap(t *testing.T) {
	r, err := Detect(WithKernelCap(kernels.Generic))
	if err != nil {
		t.Fatalf("Detect(cap generic): %v", err)
	}
	if r.BestKernel != kernels.Generic || !slices.Equal(r.Kernels, []kernels.Path{kernels.Generic}) || r.KernelCap != kernels.Generic {
		t.Errorf("got best %q, kernels %v, cap %q; want generic only", r.BestKernel, r.Kernels, r.KernelCap)
	}
	if r.Features.AVX2 || r.Features.AVX512VNNI || r.Features.NEON || r.Features.DotProd {
		t.Errorf("got features %+v under a generic cap, want the SIMD flags cleared", r.Features)
	}
	foreign := kernels.NEON
	if runtime.GOARCH == "arm64" {
		foreign = kernels.AVX2
	}
	if _, err := Detect(WithKernelCap(foreign)); !errors.Is(err, kernels.ErrUnsupported) {
		t.Errorf("Detect(cap %s): got error %v, want kernels.ErrUnsupported", foreign, err)
	}
	if _, err := Detect(WithKernelCap("sse9")); err == nil {
		t.Errorf("Detect(cap sse9): got nil error, want unknown path")
	}
	if r, err := Detect(WithKernelCap("")); err != nil || r.BestKernel != kernels.Best() {
		t.Errorf("Detect(cap \"\"): got %q, %v; want no cap", r.BestKernel, err)
	}
}

// Fake machines for the capping and flattening logic.
var (
	avx512Box = machine{
		arch: "amd64", os: "linux", vendor: "GenuineIntel", brand: "Intel(R) Xeon(R) Platinum 8480+",
		features: Features{AVX2: true, AVX512F: true, AVX512BW: true, AVX512VL: true, AVX512VNNI: true},
		physical: 56, logical: 112, l1d: 48 << 10, l2: 2 << 20, l3: 105 << 20, memory: 512 << 30,
		kernels: []kernels.Path{kernels.Generic, kernels.AVX2, kernels.AVX512},
		metal:   metal.Info{Reason: metal.ReasonNotMacOS},
	}
	graviton = machine{
		arch: "arm64", os: "linux", vendor: "ARM", brand: "",
		features: Features{NEON: true, DotProd: true, SVE: true},
		physical: 64, logical: 64, l1d: 64 << 10, l2: 1 << 20, l3: 32 << 20, memory: 128 << 30,
		kernels: []kernels.Path{kernels.Generic, kernels.NEON},
		metal:   metal.Info{Reason: metal.ReasonNotMacOS},
	}
	macbook = machine{
		arch: "arm64", os: "darwin", vendor: "Apple", brand: "Apple M2 Pro",
		features: Features{NEON: true, DotProd: true},
		physical: 12, logical: 12, l1d: 128 << 10, l2: 16 << 20, memory: 32 << 30,
		kernels: []kernels.Path{kernels.Generic, kernels.NEON},
		metal:   metal.Info{Reason: metal.ReasonNotStarted, Device: "Apple M2 Pro GPU"},
	}
)

func TestBuildCap(t *testing.T) {
	tests := []struct {
		name    string
		m       machine
		cap     kernels.Path
		best    kernels.Path
		kernels []kernels.Path
		feat    Features
		wantErr bool
	}{
		{"avx512 uncapped", avx512Box, "", kernels.AVX512, avx512Box.kernels, avx512Box.features, false},
		{"avx512 capped avx512", avx512Box, kernels.AVX512, kernels.AVX512, avx512Box.kernels, avx512Box.features, false},
		{"avx512 capped avx2", avx512Box, kernels.AVX2, kernels.AVX2, []kernels.Path{kernels.Generic, kernels.AVX2}, Features{AVX2: true}, false},
		{"avx512 capped generic", avx512Box, kernels.Generic, kernels.Generic, []kernels.Path{kernels.Generic}, Features{}, false},
		{"avx512 capped neon", avx512Box, kernels.NEON, "", nil, Features{}, true},
		{"arm capped generic keeps sve", graviton, kernels.Generic, kernels.Generic, []kernels.Path{kernels.Generic}, Features{SVE: true}, false},
		{"arm capped avx2", graviton, kernels.AVX2, "", nil, Features{}, true},
		{"cap spelled loosely", graviton, " NEON ", kernels.NEON, graviton.kernels, graviton.features, false},
		{"unknown cap", graviton, "sve", "", nil, Features{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := build(tt.m, config{cap: tt.cap})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got report %+v, want an error", r)
				}
				if !strings.Contains(err.Error(), strings.TrimSpace(string(tt.cap))) {
					t.Errorf("got error %q, want it to name the cap %q", err, tt.cap)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if r.BestKernel != tt.best || !slices.Equal(r.Kernels, tt.kernels) || r.Features != tt.feat {
				t.Errorf("got best %q kernels %v features %+v, want %q %v %+v", r.BestKernel, r.Kernels, r.Features, tt.best, tt.kernels, tt.feat)
			}
		})
	}
}

var metaKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func TestMetaRoundTrip(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes: must be clipped on a rune boundary
	box := avx512Box
	box.brand = long
	for _, tc := range []struct {
		name string
		m    machine
		cap  kernels.Path
	}{{"avx512", avx512Box, ""}, {"avx512 capped", avx512Box, kernels.AVX2}, {"graviton", graviton, ""},
		{"macbook", macbook, ""}, {"long brand", box, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := build(tc.m, config{cap: tc.cap})
			if err != nil {
				t.Fatal(err)
			}
			meta := r.Meta()
			if len(meta) > 32 {
				t.Errorf("got %d meta pairs, want <= 32 (Consul allows 64 in all)", len(meta))
			}
			for k, v := range meta {
				if !metaKey.MatchString(k) || strings.HasPrefix(k, "consul-") {
					t.Errorf("meta key %q is not a valid Consul key", k)
				}
				if len(v) > MaxMetaValue || !utf8.ValidString(v) {
					t.Errorf("meta %q: value of %d bytes, want <= %d", k, len(v), MaxMetaValue)
				}
			}
			got, err := ParseMeta(meta)
			if err != nil {
				t.Fatalf("ParseMeta(Meta()): %v", err)
			}
			want := r
			want.Brand = clip(want.Brand)
			want.Metal.Reason = "" // not carried
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseMeta(Meta()):\n got %+v\nwant %+v", got, want)
			}
		})
	}
	if got := clip(long); len(got) != 512 || !strings.HasPrefix(long, got) {
		t.Errorf("clip: got %d bytes, want 512 bytes of whole runes", len(got))
	}
}

func TestMetaKeys(t *testing.T) {
	r, _ := build(avx512Box, config{})
	m := r.Meta()
	want := map[string]string{"arch": "amd64", "kernel": "avx512", "kernels": "generic,avx2,avx512",
		"avx512vnni": "true", "neon": "false", "cores": "112", "physical_cores": "56", "metal": "false",
		"memory_bytes": "549755813888", "l3_bytes": "110100480"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("meta[%q]: got %q, want %q", k, m[k], v)
		}
	}
	if _, ok := m[KeyKernelCap]; ok {
		t.Errorf("got %q without a cap, want it absent", KeyKernelCap)
	}
}

func TestParseMetaErrors(t *testing.T) {
	good, _ := build(graviton, config{})
	tests := []struct {
		name string
		edit func(map[string]string)
	}{
		{"no kernel", func(m map[string]string) { delete(m, KeyKernel) }},
		{"no kernels", func(m map[string]string) { delete(m, KeyKernels) }},
		{"unknown kernel", func(m map[string]string) { m[KeyKernel] = "sse2" }},
		{"kernel not listed", func(m map[string]string) { m[KeyKernel] = "avx2" }},
		{"bad kernels", func(m map[string]string) { m[KeyKernels] = "generic,,neon" }},
		{"bad cap", func(m map[string]string) { m[KeyKernelCap] = "fast" }},
		{"bad cores", func(m map[string]string) { m[KeyCores] = "-1" }},
		{"huge cores", func(m map[string]string) { m[KeyCores] = "99999999999" }},
		{"bad memory", func(m map[string]string) { m[KeyMemory] = "1e9" }},
		{"bad cache", func(m map[string]string) { m[KeyL2] = "1M" }},
		{"bad flag", func(m map[string]string) { m["dotprod"] = "yes" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good.Meta()
			tt.edit(m)
			if r, err := ParseMeta(m); !errors.Is(err, ErrMeta) {
				t.Errorf("got %+v, %v; want ErrMeta", r, err)
			}
		})
	}
	m := good.Meta()
	m["version"] = "1.2.3" // foreign keys are ignored
	if _, err := ParseMeta(m); err != nil {
		t.Errorf("with a foreign key: got %v, want nil", err)
	}
}

func TestHas(t *testing.T) {
	capped, _ := build(avx512Box, config{cap: kernels.AVX2})
	arm, _ := build(graviton, config{})
	tests := []struct {
		r       Report
		name    string
		want    bool
		wantErr bool
	}{
		{capped, "avx2", true, false},
		{capped, "AVX512", false, false},
		{capped, "avx512vnni", false, false},
		{capped, "generic", true, false},
		{arm, "neon", true, false},
		{arm, "dotprod", true, false},
		{arm, "sve", true, false},
		{arm, "metal", false, false},
		{arm, "avx2", false, false},
		{arm, "tpu", false, true},
	}
	for _, tt := range tests {
		got, err := tt.r.Has(tt.name)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s Has(%q): got %t, %v; want %t, error %t", tt.r.BestKernel, tt.name, got, err, tt.want, tt.wantErr)
		}
	}
	for _, n := range Requirements() {
		if _, err := arm.Has(n); err != nil {
			t.Errorf("Has(%q) of a listed requirement: %v", n, err)
		}
	}
}

func TestReportJSONGolden(t *testing.T) {
	r, err := build(avx512Box, config{cap: kernels.AVX2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("JSON report:\n got %s\nwant %s", got, want)
	}
}

func TestSysfsCaches(t *testing.T) {
	fsys := fstest.MapFS{
		"index0/level": {Data: []byte("1\n")}, "index0/type": {Data: []byte("Data\n")}, "index0/size": {Data: []byte("48K\n")},
		"index1/level": {Data: []byte("1\n")}, "index1/type": {Data: []byte("Instruction\n")}, "index1/size": {Data: []byte("64K\n")},
		"index2/level": {Data: []byte("2\n")}, "index2/type": {Data: []byte("Unified\n")}, "index2/size": {Data: []byte("2048K\n")},
		"index3/level": {Data: []byte("3\n")}, "index3/type": {Data: []byte("Unified\n")}, "index3/size": {Data: []byte("32M\n")},
		"index4/level": {Data: []byte("4\n")}, "index4/type": {Data: []byte("Unified\n")}, "index4/size": {Data: []byte("junk\n")},
	}
	l1d, l2, l3 := sysfsCaches(fsys)
	if l1d != 48<<10 || l2 != 2<<20 || l3 != 32<<20 {
		t.Errorf("got %d/%d/%d, want %d/%d/%d", l1d, l2, l3, 48<<10, 2<<20, 32<<20)
	}
	if l1d, l2, l3 := sysfsCaches(fstest.MapFS{}); l1d|l2|l3 != 0 {
		t.Errorf("empty: got %d/%d/%d, want zeros", l1d, l2, l3)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{{"48K", 48 << 10}, {"32M", 32 << 20}, {"1G", 1 << 30}, {"512", 512}, {"", 0}, {"K", 0}, {"-4K", 0},
		{"12X", 0}, {"99999999999999999999K", 0}, {"9000000000000G", 0}}
	for _, tt := range tests {
		if got := parseSize(tt.in); got != tt.want {
			t.Errorf("parseSize(%q): got %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestCpuinfoBrand(t *testing.T) {
	in := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\nflags\t: fpu\n"
	if got, want := cpuinfoBrand(in), "Intel(R) Xeon(R) CPU @ 2.20GHz"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := cpuinfoBrand("processor : 0\nCPU implementer : 0x41\n"); got != "" {
		t.Errorf("arm cpuinfo: got %q, want empty", got)
	}
}

func TestPerfMetaRoundTrip(t *testing.T) {
	r, err := build(machine{arch: "amd64", os: "linux", kernels: []kernels.Path{kernels.Generic, kernels.AVX2}}, config{})
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Meta(); m[KeyDecodeTokS] != "" || m[KeyKernelPlan] != "" {
		t.Fatalf("unmeasured report wrote perf keys: %v", m)
	}
	want := Perf{ReadGBps: 21.5, DecodeTokS: 30.25, PrefillTokS: 140, Plan: "gemv_dram=avx2 gemm64=avx512 (measured)"}
	got, err := ParseMeta(r.WithPerf(want).Meta())
	if err != nil {
		t.Fatal(err)
	}
	if got.Perf != want {
		t.Errorf("got perf %+v, want %+v", got.Perf, want)
	}
	for _, bad := range []string{"-1", "fast", "NaN"} {
		m := r.Meta()
		m[KeyDecodeTokS] = bad
		if _, err := ParseMeta(m); err == nil {
			t.Errorf("ParseMeta with %s=%q: got nil error", KeyDecodeTokS, bad)
		}
	}
}

// TestWithMetal: a Mac whose GPU passed its self-test and whose plan runs
// products there offers metal (required or preferred by name); one whose
// GPU failed, or whose plan keeps to the CPU, does not.
func TestWithMetal(t *testing.T) {
	base, err := build(macbook, config{})
	if err != nil {
		t.Fatal(err)
	}
	gpu := metal.Info{Available: true, Device: "Apple M2 Pro"}
	failed := metal.Info{Reason: "metal: self-test on Apple M2 Pro: int6 ...", Device: "Apple M2 Pro GPU"}
	for _, tc := range []struct {
		name    string
		info    metal.Info
		runs    bool
		best    kernels.Path
		kernels []kernels.Path
		flag    bool
	}{
		{"runs on the GPU", gpu, true, kernels.Metal, []kernels.Path{kernels.Generic, kernels.NEON, kernels.Metal}, true},
		{"plan keeps to the CPU", gpu, false, kernels.NEON, []kernels.Path{kernels.Generic, kernels.NEON}, true},
		{"self-test failed", failed, true, kernels.NEON, []kernels.Path{kernels.Generic, kernels.NEON}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := base.WithMetal(tc.info, tc.runs)
			if r.BestKernel != tc.best || !slices.Equal(r.Kernels, tc.kernels) || r.Features.Metal != tc.flag || r.Metal != tc.info {
				t.Errorf("got best %s, kernels %v, metal flag %t, info %+v; want %s, %v, %t, %+v",
					r.BestKernel, r.Kernels, r.Features.Metal, r.Metal, tc.best, tc.kernels, tc.flag, tc.info)
			}
			if has, _ := r.Has("metal"); has != (tc.best == kernels.Metal) {
				t.Errorf("Has(metal) = %t", has)
			}
			got, err := ParseMeta(r.Meta())
			if err != nil {
				t.Fatal(err)
			}
			if got.BestKernel != r.BestKernel || !slices.Equal(got.Kernels, r.Kernels) || got.Features.Metal != r.Features.Metal {
				t.Errorf("round trip: got %s %v %t", got.BestKernel, got.Kernels, got.Features.Metal)
			}
			// Twice is the same as once (a node re-reports).
			if again := r.WithMetal(tc.info, tc.runs); !slices.Equal(again.Kernels, r.Kernels) {
				t.Errorf("WithMetal twice: kernels %v", again.Kernels)
			}
		})
	}
	if !slices.Contains(base.Kernels, kernels.NEON) || slices.Contains(base.Kernels, kernels.Metal) {
		t.Errorf("WithMetal changed the report it was called on: %v", base.Kernels)
	}
}
