// NEON kernels for arm64: int32 dot products of ternary codes (2-bit w+1,
// layout of package ternary) or int8 weights with int8 activations. The Go
// side (neon_arm64.go) applies the sum correction and the float scales.
//
// Two variants of each kernel: SDOT (ARMv8.2 dotprod, cpuid ASIMDDP) and plain
// ARMv8.0 NEON (SMULL/SMLAL into 16-bit lanes, SADALP into 32-bit lanes).
// Go's assembler lacks these mnemonics, so the macros below emit their
// encodings as WORDs; arguments are vector register numbers.
//
// Integer arithmetic wraps modulo 2^32 exactly as the generic Go code does, so
// results are bit-identical whatever the association order.

#include "textflag.h"

// SDOT Vd.4S, Vn.16B, Vm.16B
#define SDOT(d, n, m) WORD $(0x4E809400 | (m)<<16 | (n)<<5 | (d))
// SMULL Vd.8H, Vn.8B, Vm.8B
#define SMULL(d, n, m) WORD $(0x0E20C000 | (m)<<16 | (n)<<5 | (d))
// SMULL2 Vd.8H, Vn.16B, Vm.16B
#define SMULL2(d, n, m) WORD $(0x4E20C000 | (m)<<16 | (n)<<5 | (d))
// SMLAL Vd.8H, Vn.8B, Vm.8B
#define SMLAL(d, n, m) WORD $(0x0E208000 | (m)<<16 | (n)<<5 | (d))
// SMLAL2 Vd.8H, Vn.16B, Vm.16B
#define SMLAL2(d, n, m) WORD $(0x4E208000 | (m)<<16 | (n)<<5 | (d))
// SADALP Vd.4S, Vn.8H
#define SADALP(d, n) WORD $(0x4E606800 | (n)<<5 | (d))
// ADD Vd.4S, Vn.4S, Vm.4S (encoded so that macros can take register numbers)
#define ADD4S(d, n, m) WORD $(0x4EA08400 | (m)<<16 | (n)<<5 | (d))
// SSHR Vd.4S, Vn.4S, #sh (immh:immb = 64-sh)
#define SSHR4S(d, n, sh) WORD $(0x4F000400 | (64-(sh))<<16 | (n)<<5 | (d))

#define ZERO4(a, b, c, d) \
	VEOR a.B16, a.B16, a.B16; \
	VEOR b.B16, b.B16, b.B16; \
	VEOR c.B16, c.B16, c.B16; \
	VEOR d.B16, d.B16, d.B16

// GEMV kernels run blocks of 4 rows x 1 token, block b at rows 4b..4b+3
// from R12 (advanced by R11 = 4*stride), activations from R13, R14 groups
// or steps per row; out (R9) receives 4 int32 per block. BLOCK_START sets
// up one block's row pointers R0..R3, activation pointer R4 and counter R8.
#define BLOCK_START \
	MOVD R12, R0; \
	ADD  R10, R0, R1; \
	ADD  R10, R1, R2; \
	ADD  R10, R2, R3; \
	ADD  R11, R12, R12; \
	MOVD R13, R4; \
	MOVD R14, R8

// HSUM4 leaves in dst the four horizontal sums [sum a, sum b, sum c, sum d].
#define HSUM4(a, b, c, d, t, dst) \
	VADDP b.S4, a.S4, t.S4; \
	VADDP d.S4, c.S4, dst.S4; \
	VADDP dst.S4, t.S4, dst.S4

// ---- Ternary, SDOT -------------------------------------------------------
//
// GEMV kernels avoid shifting most codes: field n of a byte is masked in
// place (code << 2n, at most 2<<4 = 32 for n <= 2, still a valid s8) and
// summed into its own accumulator, divided by 4^n (an exact arithmetic shift)
// at the end; this saves one instruction per 16 codes. Field 3 (bits 6-7) is
// shifted down instead, as 2<<6 does not fit s8.
// Masks: V28 = 0x03, V29 = 0x0c, V30 = 0x30. The 128 activations of the group
// are in V16..V23 (slice j = 2n+h covers weights 32n+16h ..+16).

// TROW_SDOT accumulates one row's group (32 bytes at R) into a0..a3 (field n).
#define TROW_SDOT(R, a0, a1, a2, a3) \
	VLD1.P 32(R), [V24.B16, V25.B16]; \
	VAND V28.B16, V24.B16, V26.B16; \
	VAND V28.B16, V25.B16, V27.B16; \
	SDOT(a0, 26, 16); \
	SDOT(a0, 27, 17); \
	VAND V29.B16, V24.B16, V26.B16; \
	VAND V29.B16, V25.B16, V27.B16; \
	SDOT(a1, 26, 18); \
	SDOT(a1, 27, 19); \
	VAND V30.B16, V24.B16, V26.B16; \
	VAND V30.B16, V25.B16, V27.B16; \
	SDOT(a2, 26, 20); \
	SDOT(a2, 27, 21); \
	VUSHR $6, V24.B16, V26.B16; \
	VUSHR $6, V25.B16, V27.B16; \
	SDOT(a3, 26, 22); \
	SDOT(a3, 27, 23)

// TCOMBINE folds the field accumulators: a0 += a1>>2 + a2>>4 + a3. The
// arithmetic shifts are exact while no lane has wrapped, which the Go side
// guarantees by bounding the number of groups (maxMaskGroups).
#define TCOMBINE(a0, a1, a2, a3) \
	SSHR4S(a1, a1, 2); \
	SSHR4S(a2, a2, 4); \
	ADD4S(a0, a0, a1); \
	ADD4S(a2, a2, a3); \
	ADD4S(a0, a0, a2)

#define TMASKS \
	VMOVI $0x03, V28.B16; \
	VMOVI $0x0c, V29.B16; \
	VMOVI $0x30, V30.B16

// func tern4x1SDOT(codes *byte, stride int, q *int8, groups, blocks int, out *int32)
TEXT ·tern4x1SDOT(SB), NOSPLIT, $0-48
	MOVD codes+0(FP), R12
	MOVD stride+8(FP), R10
	MOVD q+16(FP), R13
	MOVD groups+24(FP), R14
	MOVD blocks+32(FP), R15
	MOVD out+40(FP), R9
	LSL  $2, R10, R11
	TMASKS

t41block:
	BLOCK_START
	ZERO4(V0, V1, V2, V3)
	ZERO4(V4, V5, V6, V7)
	ZERO4(V8, V9, V10, V11)
	ZERO4(V12, V13, V14, V15)

t41loop:
	VLD1.P 64(R4), [V16.B16, V17.B16, V18.B16, V19.B16]
	VLD1.P 64(R4), [V20.B16, V21.B16, V22.B16, V23.B16]
	TROW_SDOT(R0, 0, 1, 2, 3)
	TROW_SDOT(R1, 4, 5, 6, 7)
	TROW_SDOT(R2, 8, 9, 10, 11)
	TROW_SDOT(R3, 12, 13, 14, 15)
	SUBS $1, R8, R8
	BNE  t41loop

	TCOMBINE(0, 1, 2, 3)
	TCOMBINE(4, 5, 6, 7)
	TCOMBINE(8, 9, 10, 11)
	TCOMBINE(12, 13, 14, 15)
	HSUM4(V0, V4, V8, V12, V16, V17)
	VST1.P [V17.S4], 16(R9)
	SUBS $1, R15, R15
	BNE  t41block
	RET

// func tern1x1SDOT(codes *byte, q *int8, groups int) int32
TEXT ·tern1x1SDOT(SB), NOSPLIT, $0-28
	MOVD codes+0(FP), R0
	MOVD q+8(FP), R4
	MOVD groups+16(FP), R8
	TMASKS
	ZERO4(V0, V1, V2, V3)

t11loop:
	VLD1.P 64(R4), [V16.B16, V17.B16, V18.B16, V19.B16]
	VLD1.P 64(R4), [V20.B16, V21.B16, V22.B16, V23.B16]
	TROW_SDOT(R0, 0, 1, 2, 3)
	SUBS $1, R8, R8
	BNE  t11loop

	TCOMBINE(0, 1, 2, 3)
	VADDP V0.S4, V0.S4, V0.S4
	VADDP V0.S4, V0.S4, V0.S4
	VMOV  V0.S[0], R1
	MOVW  R1, ret+24(FP)
	RET

// GEMM tile: 4 rows x 4 tokens. Codes are unpacked once per 16 weights and
// reused by the 4 tokens, so here they are shifted down to {0,1,2} (one
// accumulator per row and token: acc[t][r] = V(4t+r)). Raw codes of the 4
// rows: V16..V23 (row r half h in V(16+2r+h)); unpacked codes V24..V27;
// activations V28..V30; mask 0x03 in V31.

// UNPACK4_0 / UNPACK4_S / UNPACK4_6 unpack field n = 0 / 1..2 / 3 of half h
// of the 4 rows into V24..V27.
#define UNPACK4_0(h0, h1, h2, h3) \
	VAND V31.B16, h0.B16, V24.B16; \
	VAND V31.B16, h1.B16, V25.B16; \
	VAND V31.B16, h2.B16, V26.B16; \
	VAND V31.B16, h3.B16, V27.B16

#define UNPACK4_S(sh, h0, h1, h2, h3) \
	VUSHR $sh, h0.B16, V24.B16; \
	VUSHR $sh, h1.B16, V25.B16; \
	VUSHR $sh, h2.B16, V26.B16; \
	VUSHR $sh, h3.B16, V27.B16; \
	VAND V31.B16, V24.B16, V24.B16; \
	VAND V31.B16, V25.B16, V25.B16; \
	VAND V31.B16, V26.B16, V26.B16; \
	VAND V31.B16, V27.B16, V27.B16

#define UNPACK4_6(h0, h1, h2, h3) \
	VUSHR $6, h0.B16, V24.B16; \
	VUSHR $6, h1.B16, V25.B16; \
	VUSHR $6, h2.B16, V26.B16; \
	VUSHR $6, h3.B16, V27.B16

// DOT4 multiplies the 4 unpacked rows by activation register qr into the
// accumulators of token t (a0..a3 = 4t..4t+3).
#define DOT4(qr, a0, a1, a2, a3) \
	SDOT(a0, 24, qr); \
	SDOT(a1, 25, qr); \
	SDOT(a2, 26, qr); \
	SDOT(a3, 27, qr)

// SLICE4x4 loads the next 16 activations of each token and runs the 16 SDOTs.
#define SLICE4x4 \
	VLD1.P 16(R4), [V28.B16]; \
	VLD1.P 16(R5), [V29.B16]; \
	VLD1.P 16(R6), [V30.B16]; \
	DOT4(28, 0, 1, 2, 3); \
	VLD1.P 16(R7), [V28.B16]; \
	DOT4(29, 4, 5, 6, 7); \
	DOT4(30, 8, 9, 10, 11); \
	DOT4(28, 12, 13, 14, 15)

// func tern4x4SDOT(codes *byte, stride int, q *int8, qstride int, groups int, out *[16]int32)
// out[4t+r] = dot(row r, token t).
TEXT ·tern4x4SDOT(SB), NOSPLIT, $0-48
	MOVD codes+0(FP), R0
	MOVD stride+8(FP), R10
	MOVD q+16(FP), R4
	MOVD qstride+24(FP), R11
	MOVD groups+32(FP), R8
	MOVD out+40(FP), R9
	ADD  R10, R0, R1
	ADD  R10, R1, R2
	ADD  R10, R2, R3
	ADD  R11, R4, R5
	ADD  R11, R5, R6
	ADD  R11, R6, R7
	VMOVI $0x03, V31.B16
	ZERO4(V0, V1, V2, V3)
	ZERO4(V4, V5, V6, V7)
	ZERO4(V8, V9, V10, V11)
	ZERO4(V12, V13, V14, V15)

t44loop:
	VLD1.P 32(R0), [V16.B16, V17.B16]
	VLD1.P 32(R1), [V18.B16, V19.B16]
	VLD1.P 32(R2), [V20.B16, V21.B16]
	VLD1.P 32(R3), [V22.B16, V23.B16]
	// Slices in activation order j = 2n+h.
	UNPACK4_0(V16, V18, V20, V22)
	SLICE4x4
	UNPACK4_0(V17, V19, V21, V23)
	SLICE4x4
	UNPACK4_S(2, V16, V18, V20, V22)
	SLICE4x4
	UNPACK4_S(2, V17, V19, V21, V23)
	SLICE4x4
	UNPACK4_S(4, V16, V18, V20, V22)
	SLICE4x4
	UNPACK4_S(4, V17, V19, V21, V23)
	SLICE4x4
	UNPACK4_6(V16, V18, V20, V22)
	SLICE4x4
	UNPACK4_6(V17, V19, V21, V23)
	SLICE4x4
	SUBS $1, R8, R8
	BNE  t44loop

	HSUM4(V0, V1, V2, V3, V16, V24)
	HSUM4(V4, V5, V6, V7, V17, V25)
	HSUM4(V8, V9, V10, V11, V18, V26)
	HSUM4(V12, V13, V14, V15, V19, V27)
	VST1 [V24.S4, V25.S4, V26.S4, V27.S4], (R9)
	RET

// ---- Ternary, plain NEON -------------------------------------------------
//
// Codes are shifted down to {0,1,2}; SMULL/SMLAL(2) accumulate a group's 16
// products per 16-bit lane (|sum| <= 16*2*128 = 4096, no overflow), two lanes
// sets per row (halves h = 0, 1), then SADALP widens them into 32-bit lanes.
// Activations in V16..V23, mask 0x03 in V31, raw codes V24/V25, codes V26/V27.

#define TROW_NEON(R, acc, t0, t1) \
	VLD1.P 32(R), [V24.B16, V25.B16]; \
	VAND V31.B16, V24.B16, V26.B16; \
	VAND V31.B16, V25.B16, V27.B16; \
	SMULL(t0, 26, 16); \
	SMLAL2(t0, 26, 16); \
	SMULL(t1, 27, 17); \
	SMLAL2(t1, 27, 17); \
	VUSHR $2, V24.B16, V26.B16; \
	VUSHR $2, V25.B16, V27.B16; \
	VAND V31.B16, V26.B16, V26.B16; \
	VAND V31.B16, V27.B16, V27.B16; \
	SMLAL(t0, 26, 18); \
	SMLAL2(t0, 26, 18); \
	SMLAL(t1, 27, 19); \
	SMLAL2(t1, 27, 19); \
	VUSHR $4, V24.B16, V26.B16; \
	VUSHR $4, V25.B16, V27.B16; \
	VAND V31.B16, V26.B16, V26.B16; \
	VAND V31.B16, V27.B16, V27.B16; \
	SMLAL(t0, 26, 20); \
	SMLAL2(t0, 26, 20); \
	SMLAL(t1, 27, 21); \
	SMLAL2(t1, 27, 21); \
	VUSHR $6, V24.B16, V26.B16; \
	VUSHR $6, V25.B16, V27.B16; \
	SMLAL(t0, 26, 22); \
	SMLAL2(t0, 26, 22); \
	SMLAL(t1, 27, 23); \
	SMLAL2(t1, 27, 23); \
	SADALP(acc, t0); \
	SADALP(acc, t1)

// func tern4x1NEON(codes *byte, stride int, q *int8, groups, blocks int, out *int32)
TEXT ·tern4x1NEON(SB), NOSPLIT, $0-48
	MOVD codes+0(FP), R12
	MOVD stride+8(FP), R10
	MOVD q+16(FP), R13
	MOVD groups+24(FP), R14
	MOVD blocks+32(FP), R15
	MOVD out+40(FP), R9
	LSL  $2, R10, R11
	VMOVI $0x03, V31.B16

n41block:
	BLOCK_START
	ZERO4(V0, V1, V2, V3)

n41loop:
	VLD1.P 64(R4), [V16.B16, V17.B16, V18.B16, V19.B16]
	VLD1.P 64(R4), [V20.B16, V21.B16, V22.B16, V23.B16]
	TROW_NEON(R0, 0, 4, 5)
	TROW_NEON(R1, 1, 6, 7)
	TROW_NEON(R2, 2, 8, 9)
	TROW_NEON(R3, 3, 10, 11)
	SUBS $1, R8, R8
	BNE  n41loop

	HSUM4(V0, V1, V2, V3, V16, V17)
	VST1.P [V17.S4], 16(R9)
	SUBS $1, R15, R15
	BNE  n41block
	RET

// func tern1x1NEON(codes *byte, q *int8, groups int) int32
TEXT ·tern1x1NEON(SB), NOSPLIT, $0-28
	MOVD codes+0(FP), R0
	MOVD q+8(FP), R4
	MOVD groups+16(FP), R8
	VMOVI $0x03, V31.B16
	VEOR V0.B16, V0.B16, V0.B16

n11loop:
	VLD1.P 64(R4), [V16.B16, V17.B16, V18.B16, V19.B16]
	VLD1.P 64(R4), [V20.B16, V21.B16, V22.B16, V23.B16]
	TROW_NEON(R0, 0, 4, 5)
	SUBS $1, R8, R8
	BNE  n11loop

	VADDP V0.S4, V0.S4, V0.S4
	VADDP V0.S4, V0.S4, V0.S4
	VMOV  V0.S[0], R1
	MOVW  R1, ret+24(FP)
	RET

// GEMM tile without SDOT: 4 rows x 2 tokens. acc[t][r] = V(4t+r) (32-bit
// lanes), per-group 16-bit sums tmp[t][r] = V(8+4t+r); raw codes V16..V23 and
// unpacked codes V24..V27 as in tern4x4SDOT; activations V28, V29.

// NMUL2 multiplies the 16 codes of row register c by token register qr
// into the 16-bit sums d.
#define NMUL2(d, c, qr) \
	SMLAL(d, c, qr); \
	SMLAL2(d, c, qr)

#define NSLICE4x2 \
	VLD1.P 16(R4), [V28.B16]; \
	VLD1.P 16(R5), [V29.B16]; \
	NMUL2(8, 24, 28); \
	NMUL2(9, 25, 28); \
	NMUL2(10, 26, 28); \
	NMUL2(11, 27, 28); \
	NMUL2(12, 24, 29); \
	NMUL2(13, 25, 29); \
	NMUL2(14, 26, 29); \
	NMUL2(15, 27, 29)

// func tern4x2NEON(codes *byte, stride int, q *int8, qstride int, groups int, out *[16]int32)
// out[4t+r] = dot(row r, token t) for t < 2; out[8:] is not written.
TEXT ·tern4x2NEON(SB), NOSPLIT, $0-48
	MOVD codes+0(FP), R0
	MOVD stride+8(FP), R10
	MOVD q+16(FP), R4
	MOVD qstride+24(FP), R11
	MOVD groups+32(FP), R8
	MOVD out+40(FP), R9
	ADD  R10, R0, R1
	ADD  R10, R1, R2
	ADD  R10, R2, R3
	ADD  R11, R4, R5
	VMOVI $0x03, V31.B16
	ZERO4(V0, V1, V2, V3)
	ZERO4(V4, V5, V6, V7)

n42loop:
	ZERO4(V8, V9, V10, V11)
	ZERO4(V12, V13, V14, V15)
	VLD1.P 32(R0), [V16.B16, V17.B16]
	VLD1.P 32(R1), [V18.B16, V19.B16]
	VLD1.P 32(R2), [V20.B16, V21.B16]
	VLD1.P 32(R3), [V22.B16, V23.B16]
	UNPACK4_0(V16, V18, V20, V22)
	NSLICE4x2
	UNPACK4_0(V17, V19, V21, V23)
	NSLICE4x2
	UNPACK4_S(2, V16, V18, V20, V22)
	NSLICE4x2
	UNPACK4_S(2, V17, V19, V21, V23)
	NSLICE4x2
	UNPACK4_S(4, V16, V18, V20, V22)
	NSLICE4x2
	UNPACK4_S(4, V17, V19, V21, V23)
	NSLICE4x2
	UNPACK4_6(V16, V18, V20, V22)
	NSLICE4x2
	UNPACK4_6(V17, V19, V21, V23)
	NSLICE4x2
	SADALP(0, 8)
	SADALP(1, 9)
	SADALP(2, 10)
	SADALP(3, 11)
	SADALP(4, 12)
	SADALP(5, 13)
	SADALP(6, 14)
	SADALP(7, 15)
	SUBS $1, R8, R8
	BNE  n42loop

	HSUM4(V0, V1, V2, V3, V16, V24)
	HSUM4(V4, V5, V6, V7, V17, V25)
	VST1 [V24.S4, V25.S4], (R9)
	RET

// ---- Int8 weights --------------------------------------------------------
//
// Rows and activations advance 64 bytes per step (strides are multiples of
// 256). Activations in V16..V19, weights V20..V23 / V24..V27.

#define IROW_SDOT(R, a0, a1, a2, a3) \
	VLD1.P 64(R), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	SDOT(a0, 20, 16); \
	SDOT(a1, 21, 17); \
	SDOT(a2, 22, 18); \
	SDOT(a3, 23, 19)

// IFOLD adds the four accumulators a1..a3 into a0.
#define IFOLD(a0, a1, a2, a3) \
	VADD a1.S4, a0.S4, a0.S4; \
	VADD a3.S4, a2.S4, a2.S4; \
	VADD a2.S4, a0.S4, a0.S4

// func int84x1SDOT(w *int8, stride int, q *int8, steps, blocks int, out *int32)
TEXT ·int84x1SDOT(SB), NOSPLIT, $0-48
	MOVD w+0(FP), R12
	MOVD stride+8(FP), R10
	MOVD q+16(FP), R13
	MOVD steps+24(FP), R14
	MOVD blocks+32(FP), R15
	MOVD out+40(FP), R9
	LSL  $2, R10, R11

i41block:
	BLOCK_START
	ZERO4(V0, V1, V2, V3)
	ZERO4(V4, V5, V6, V7)
	ZERO4(V8, V9, V10, V11)
	ZERO4(V12, V13, V14, V15)

i41loop:
	VLD1.P 64(R4), [V16.B16, V17.B16, V18.B16, V19.B16]
	IROW_SDOT(R0, 0, 1, 2, 3)
	IROW_SDOT(R1, 4, 5, 6, 7)
	IROW_SDOT(R2, 8, 9, 10, 11)
	IROW_SDOT(R3, 12, 13, 14, 15)
	SUBS $1, R8, R8
	BNE  i41loop

	IFOLD(V0, V1, V2, V3)
	IFOLD(V4, V5, V6, V7)
	IFOLD(V8, V9, V10, V11)
	IFOLD(V12, V13, V14, V15)
	HSUM4(V0, V4, V8, V12, V16, V17)
	VST1.P [V17.S4], 16(R9)
	SUBS $1, R15, R15
	BNE  i41block
	RET

// func int81x1SDOT(w *int8, q *int8, steps int) int32
TEXT ·int81x1SDOT(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD q+8(FP), R4
	MOVD steps+16(FP), R8
	ZERO4(V0, V1, V2, V3)

i11loop:
	VLD1.P 64(R4), [V16.B16, V17.B16, V18.B16, V19.B16]
	IROW_SDOT(R0, 0, 1, 2, 3)
	SUBS $1, R8, R8
	BNE  i11loop

	IFOLD(V0, V1, V2, V3)
	VADDP V0.S4, V0.S4, V0.S4
	VADDP V0.S4, V0.S4, V0.S4
	VMOV  V0.S[0], R1
	MOVW  R1, ret+24(FP)
	RET

// GEMM tile for int8 weights: 4 rows x 4 tokens, 32 weights per step.
// acc[t][r] = V(4t+r); rows in V16..V23 (row r half h in V(16+2r+h));
// activations V24..V27.

// IDOT4 multiplies the half h of the 4 rows (registers r0..r3) by token
// register qr into the accumulators a0..a3 of that token.
#define IDOT4(qr, r0, r1, r2, r3, a0, a1, a2, a3) \
	SDOT(a0, r0, qr); \
	SDOT(a1, r1, qr); \
	SDOT(a2, r2, qr); \
	SDOT(a3, r3, qr)

#define IHALF4x4(r0, r1, r2, r3) \
	VLD1.P 16(R4), [V24.B16]; \
	VLD1.P 16(R5), [V25.B16]; \
	VLD1.P 16(R6), [V26.B16]; \
	VLD1.P 16(R7), [V27.B16]; \
	IDOT4(24, r0, r1, r2, r3, 0, 1, 2, 3); \
	IDOT4(25, r0, r1, r2, r3, 4, 5, 6, 7); \
	IDOT4(26, r0, r1, r2, r3, 8, 9, 10, 11); \
	IDOT4(27, r0, r1, r2, r3, 12, 13, 14, 15)

// func int84x4SDOT(w *int8, stride int, q *int8, qstride int, steps32 int, out *[16]int32)
// out[4t+r] = dot(row r, token t); steps32 counts 32-byte steps.
TEXT ·int84x4SDOT(SB), NOSPLIT, $0-48
	MOVD w+0(FP), R0
	MOVD stride+8(FP), R10
	MOVD q+16(FP), R4
	MOVD qstride+24(FP), R11
	MOVD steps32+32(FP), R8
	MOVD out+40(FP), R9
	ADD  R10, R0, R1
	ADD  R10, R1, R2
	ADD  R10, R2, R3
	ADD  R11, R4, R5
	ADD  R11, R5, R6
	ADD  R11, R6, R7
	ZERO4(V0, V1, V2, V3)
	ZERO4(V4, V5, V6, V7)
	ZERO4(V8, V9, V10, V11)
	ZERO4(V12, V13, V14, V15)

i44loop:
	VLD1.P 32(R0), [V16.B16, V17.B16]
	VLD1.P 32(R1), [V18.B16, V19.B16]
	VLD1.P 32(R2), [V20.B16, V21.B16]
	VLD1.P 32(R3), [V22.B16, V23.B16]
	IHALF4x4(16, 18, 20, 22)
	IHALF4x4(17, 19, 21, 23)
	SUBS $1, R8, R8
	BNE  i44loop

	HSUM4(V0, V1, V2, V3, V16, V24)
	HSUM4(V4, V5, V6, V7, V17, V25)
	HSUM4(V8, V9, V10, V11, V18, V26)
	HSUM4(V12, V13, V14, V15, V19, V27)
	VST1 [V24.S4, V25.S4, V26.S4, V27.S4], (R9)
	RET

// Plain NEON: products of two s8 reach 2^14, so two of them may overflow a
// 16-bit lane; each SMULL/SMULL2 result is widened by SADALP at once.
#define IMUL_NEON(acc, t0, t1, wr, qr) \
	SMULL(t0, wr, qr); \
	SMULL2(t1, wr, qr); \
	SADALP(acc, t0); \
	SADALP(acc, t1)

#define IROW_NEON(R, acc) \
	VLD1.P 64(R), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	IMUL_NEON(acc, 24, 25, 20, 16); \
	IMUL_NEON(acc, 26, 27, 21, 17); \
	IMUL_NEON(acc, 28, 29, 22, 18); \
	IMUL_NEON(acc, 30, 31, 23, 19)

// func int84x1NEON(w *int8, stride int, q *int8, steps, blocks int, out *int32)
TEXT ·int84x1NEON(SB), NOSPLIT, $0-48
	MOVD w+0(FP), R12
	MOVD stride+8(FP), R10
	MOVD q+16(FP), R13
	MOVD steps+24(FP), R14
	MOVD blocks+32(FP), R15
	MOVD out+40(FP), R9
	LSL  $2, R10, R11

i41nblock:
	BLOCK_START
	ZERO4(V0, V1, V2, V3)

i41nloop:
	VLD1.P 64(R4), [V16.B16, V17.B16, V18.B16, V19.B16]
	IROW_NEON(R0, 0)
	IROW_NEON(R1, 1)
	IROW_NEON(R2, 2)
	IROW_NEON(R3, 3)
	SUBS $1, R8, R8
	BNE  i41nloop

	HSUM4(V0, V1, V2, V3, V16, V17)
	VST1.P [V17.S4], 16(R9)
	SUBS $1, R15, R15
	BNE  i41nblock
	RET

// func int81x1NEON(w *int8, q *int8, steps int) int32
TEXT ·int81x1NEON(SB), NOSPLIT, $0-28
	MOVD w+0(FP), R0
	MOVD q+8(FP), R4
	MOVD steps+16(FP), R8
	VEOR V0.B16, V0.B16, V0.B16

i11nloop:
	VLD1.P 64(R4), [V16.B16, V17.B16, V18.B16, V19.B16]
	IROW_NEON(R0, 0)
	SUBS $1, R8, R8
	BNE  i11nloop

	VADDP V0.S4, V0.S4, V0.S4
	VADDP V0.S4, V0.S4, V0.S4
	VMOV  V0.S[0], R1
	MOVW  R1, ret+24(FP)
	RET
