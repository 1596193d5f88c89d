package kernels

// archVariants returns the amd64 kernel variants this CPU runs, each path's
// default first. AVX2: VPMADDUBSW on ymm. AVX-512 (F, BW, VL): with VNNI,
// "avx512" (VPDPBUSD on zmm, q permuted per block), GEMV variants without
// software prefetch or with a longer prefetch distance, and "avx512y"
// (VPDPBUSD on ymm through VL: the half-width shape that cores executing
// 512-bit operations as two 256-bit halves, AMD Zen 4, may prefer);
// without VNNI, VPMADDUBSW on zmm; "-r1" variants of both that run
// one-token products one row at a time. The plan measures them all.
func archVariants() []variant {
	var vs []variant
	t5avx2 := tritsTiles([]rowKernel{{4, t5x256_4x1}, {1, t5x256_1x1}})
	if cpu.avx2 {
		vs = append(vs, variant{name: "avx2", path: AVX2,
			im: impl{matMul: ternaryTiles(&tern256Set), matMulInt8: int8Tiles(&i8x256Set, 0), matMulPacked: packedTiles(&h6x256Set, &h4x256Set), matMulTrits: t5avx2}})
	}
	if !(cpu.avx2 && cpu.avx512f && cpu.avx512bw && cpu.avx512vl) {
		return vs
	}
	if !cpu.avx512vnni {
		return append(vs, variant{name: "avx512", path: AVX512, quant512: true,
			im: impl{matMul: ternaryTiles(&tern512bwSet), matMulInt8: int8Tiles(&i8x256Set, 0), matMulPacked: packedTiles(&h6x256Set, &h4x256Set), matMulTrits: t5avx2, prepare: permute512}})
	}
	base := impl{matMul: ternaryTiles(&tern512Set), matMulInt8: int8Tiles(&i8x512Set, 128), matMulPacked: packedTiles(&h6x512Set, &h4x512Set), prepare: permute512,
		matMulTrits: tritsTiles([]rowKernel{{4, t5s512_4x1}, {1, t5s512_1x1}})}
	gemv := func(g []rowKernel) impl {
		ts := tern512Set
		ts.gemv = g
		im := base
		im.matMul = ternaryTiles(&ts)
		return im
	}
	ymm := impl{matMul: ternaryTiles(&tern256vSet), matMulInt8: int8Tiles(&i8x256vSet, 128), matMulPacked: packedTiles(&h6x256vSet, &h4x256vSet),
		matMulTrits: tritsTiles([]rowKernel{{4, t5s256v_4x1}, {1, t5s256v_1x1}})}
	// One row at a time ("-r1"): a single weight stream per thread. On
	// Zen 4, four rows read side by side stream long rows (the 6912-wide
	// down projection, the 2560-wide head) at 0.5-0.85 of the read probe,
	// one row at 0.9-1.2 (docs/perf.md).
	one := func(ts tileSet, k tileFn) *tileSet { ts.gemv = []rowKernel{{1, k}}; return &ts }
	r1 := base
	r1.matMul = ternaryTiles(one(tern512Set, tern512s_1x1))
	r1.matMulInt8 = int8Tiles(one(i8x512Set, i8x512_1x1), 128)
	r1.matMulPacked = packedTiles(one(h6x512Set, h6x512_1x1), one(h4x512Set, h4x512_1x1))
	y1 := ymm
	y1.matMul = ternaryTiles(one(tern256vSet, tern256vs_1x1))
	y1.matMulInt8 = int8Tiles(one(i8x256vSet, i8x256v_1x1), 128)
	y1.matMulPacked = packedTiles(one(h6x256vSet, h6x256v_1x1), one(h4x256vSet, h4x256v_1x1))
	ymmNoPF := tern256vSet
	ymmNoPF.gemv = []rowKernel{{4, tern256vn_4x1}, {1, tern256vn_1x1}}
	return append(vs,
		variant{name: "avx512", path: AVX512, quant512: true, im: base},
		variant{name: "avx512-nopf", path: AVX512, quant512: true, gemvOnly: true,
			im: gemv([]rowKernel{{4, tern512n_4x1}, {1, tern512n_1x1}})},
		variant{name: "avx512-pf4", path: AVX512, quant512: true, gemvOnly: true,
			im: gemv([]rowKernel{{4, tern512f_4x1}, {1, tern512f_1x1}})},
		variant{name: "avx512y", path: AVX512, quant512: true, im: ymm},
		variant{name: "avx512y-nopf", path: AVX512, quant512: true, gemvOnly: true,
			im: impl{matMul: ternaryTiles(&ymmNoPF), matMulInt8: ymm.matMulInt8, matMulPacked: ymm.matMulPacked}},
		variant{name: "avx512-r1", path: AVX512, quant512: true, oneToken: true, im: r1},
		variant{name: "avx512y-r1", path: AVX512, quant512: true, oneToken: true, im: y1},
	)
}
