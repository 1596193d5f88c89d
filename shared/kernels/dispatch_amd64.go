package kernels

import "github.com/klauspost/cpuid/v2"

// archImpls returns the amd64 SIMD paths this CPU supports: AVX2, and AVX-512
// when it has F, BW and VL (with VNNI's VPDPBUSD when present, else
// VPMADDUBSW on zmm); cpuid also checks that the OS saves the ymm/zmm state.
func archImpls() map[Path]impl {
	m := map[Path]impl{}
	if cpuid.CPU.Supports(cpuid.AVX2) {
		m[AVX2] = avx2Impl()
	}
	if cpuid.CPU.Supports(cpuid.AVX2, cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL) {
		m[AVX512] = avx512Impl(cpuid.CPU.Supports(cpuid.AVX512VNNI))
	}
	return m
}

func avx2Impl() impl {
	return impl{matMul: ternaryTiles(&tern256Set), matMulInt8: int8Tiles(&i8x256Set, 0)}
}

// avx512Impl returns the AVX-512 path, with or without VNNI.
func avx512Impl(vnni bool) impl {
	if !vnni {
		return impl{matMul: ternaryTiles(&tern512bwSet), matMulInt8: int8Tiles(&i8x256Set, 0), prepare: permute512}
	}
	return impl{matMul: ternaryTiles(&tern512Set), matMulInt8: int8Tiles(&i8x512Set, 128), prepare: permute512}
}
