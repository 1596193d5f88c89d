package metal

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestGeometryMatchesSource checks that the host sizes grids and
// threadgroup memory with the kernels' own numbers.
func TestGeometryMatchesSource(t *testing.T) {
	src := Source()
	want := map[string]int{
		"MV_SIMDS": mvSimds, "MV_ROWS": mvRows, "MM_SIMDS": mmSimds, "MM_ROWS": mmRows,
		"MM_TOKENS": mmTokens, "MM_KC": mmKC, "Q_THREADS": qThreads,
	}
	for name, v := range want {
		m := regexp.MustCompile(`(?m)^#define ` + name + ` (\d+)`).FindStringSubmatch(src)
		if m == nil {
			t.Errorf("%s is not defined in the source", name)
			continue
		}
		if got, _ := strconv.Atoi(m[1]); got != v {
			t.Errorf("%s = %d in the source, %d in Go", name, got, v)
		}
	}
	if mmRows*mmTokens != simdWidth {
		t.Errorf("MM_ROWS*MM_TOKENS = %d: each lane of a GEMM finishes one output, want %d", mmRows*mmTokens, simdWidth)
	}
	if mmTokens*mmKC > maxTGBytes || mmKC%256 != 0 {
		t.Errorf("MM_KC = %d: %d bytes of threadgroup memory (at most %d) and a multiple of 256 wanted", mmKC, mmTokens*mmKC, maxTGBytes)
	}
}

// TestSourceOrder: common.metal (types, helpers) comes first, and every
// embedded file is compiled.
func TestSourceOrder(t *testing.T) {
	files, err := sources.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(sourceFiles) {
		t.Errorf("%d .metal files embedded, %d in sourceFiles", len(files), len(sourceFiles))
	}
	if !strings.HasPrefix(Source(), "// ---- common.metal\n") {
		t.Error("Source does not start with common.metal")
	}
}

// TestParamsLayout: matParams and quantParams have the layout of the
// MatParams and QuantParams structs (32-bit fields in declaration order).
func TestParamsLayout(t *testing.T) {
	src := Source()
	for _, tc := range []struct {
		name   string
		fields []string
		size   int
	}{
		{"MatParams", []string{"rows", "n", "kp", "row_bytes", "wscale", "zero"}, len(matParams(1, 1, 256, 64, 1, 1))},
		{"QuantParams", []string{"n", "k", "kp"}, len(quantParams(1, 1, 256))},
	} {
		m := regexp.MustCompile(`(?s)struct ` + tc.name + ` \{(.*?)\};`).FindStringSubmatch(src)
		if m == nil {
			t.Fatalf("struct %s not found", tc.name)
		}
		var fields []string
		for _, f := range regexp.MustCompile(`(?m)^\s*(uint|float) (\w+);`).FindAllStringSubmatch(m[1], -1) {
			fields = append(fields, f[2])
		}
		if strings.Join(fields, ",") != strings.Join(tc.fields, ",") || tc.size != 4*len(fields) {
			t.Errorf("%s: fields %v (%d bytes in Go), want %v", tc.name, fields, tc.size, tc.fields)
		}
	}
}
