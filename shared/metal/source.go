package metal

import (
	"embed"
	"strings"
)

// The kernel sources, compiled at run time (newLibraryWithSource on a Mac;
// as C++ by package emulator elsewhere).
//
//go:embed *.metal
var sources embed.FS

// sourceFiles is the order in which Source concatenates the .metal files:
// common.metal first (types, helpers, geometry), then the kernels.
var sourceFiles = []string{"common.metal", "matmul.metal", "quantize.metal"}

// Source returns the Metal Shading Language source of every kernel: the
// bytes the darwin backend compiles with newLibraryWithSource and the
// emulator compiles as C++.
func Source() string {
	var b strings.Builder
	for _, f := range sourceFiles {
		data, err := sources.ReadFile(f)
		if err != nil {
			panic("metal: embedded source " + f + ": " + err.Error()) // the build embeds every file
		}
		b.WriteString("// ---- " + f + "\n")
		b.Write(data)
		b.WriteString("\n")
	}
	return b.String()
}

// Kernel names, as the .metal files declare them.
const (
	kernelQuantize = "quantize_rows"
)

// threadsOf returns the threads per threadgroup the host launches kernel
// name with.
func threadsOf(name string) int {
	switch {
	case strings.HasPrefix(name, "mv_"):
		return mvSimds * simdWidth
	case strings.HasPrefix(name, "mm_"):
		return mmSimds * simdWidth
	}
	return qThreads
}

// Geometry of the kernels: must match the #defines in common.metal (a test
// checks).
const (
	mvSimds    = 2    // MV_SIMDS
	mvRows     = 4    // MV_ROWS
	mmSimds    = 4    // MM_SIMDS
	mmRows     = 4    // MM_ROWS
	mmTokens   = 8    // MM_TOKENS
	mmKC       = 2048 // MM_KC
	qThreads   = 256  // Q_THREADS
	simdWidth  = 32
	maxTGBytes = 32 << 10 // threadgroup memory every Apple GPU offers
)
