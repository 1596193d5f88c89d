#include "textflag.h"

// PREFETCH256 prefetches the four cache lines from the address in register
// r (an fp16 row of 128 values; prefetches never fault).
#define PREFETCH256(r) PREFETCHT0 (r); PREFETCHT0 64(r); PREFETCHT0 128(r); PREFETCHT0 192(r)

// func dotAVX2(a, b *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

dot32:
	CMPQ        CX, $32
	JL          dot8
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         dot32

dot8:
	CMPQ        CX, $8
	JL          dotsum
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         dot8

dotsum:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0

dottail:
	TESTQ       CX, CX
	JEQ         dotdone
	VMOVSS      (SI), X4
	VFMADD231SS (DI), X4, X0
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         dottail

dotdone:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX2(y, x *float32, n int, a float32)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-28
	MOVQ         y+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS a+24(FP), Y0

axpy32:
	CMPQ        CX, $32
	JL          axpy8
	VMOVUPS     (DI), Y1
	VMOVUPS     32(DI), Y2
	VMOVUPS     64(DI), Y3
	VMOVUPS     96(DI), Y4
	VFMADD231PS (SI), Y0, Y1
	VFMADD231PS 32(SI), Y0, Y2
	VFMADD231PS 64(SI), Y0, Y3
	VFMADD231PS 96(SI), Y0, Y4
	VMOVUPS     Y1, (DI)
	VMOVUPS     Y2, 32(DI)
	VMOVUPS     Y3, 64(DI)
	VMOVUPS     Y4, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         axpy32

axpy8:
	CMPQ        CX, $8
	JL          axpytail
	VMOVUPS     (DI), Y1
	VFMADD231PS (SI), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         axpy8

axpytail:
	TESTQ       CX, CX
	JEQ         axpydone
	VMOVSS      (DI), X1
	VFMADD231SS (SI), X0, X1
	VMOVSS      X1, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         axpytail

axpydone:
	VZEROUPPER
	RET

// func f16ToF32F16C(dst *float32, src *uint16, n int)
// n must be a multiple of 8.
TEXT ·f16ToF32F16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

cvt32:
	CMPQ      CX, $32
	JL        cvt8
	VCVTPH2PS (SI), Y0
	VCVTPH2PS 16(SI), Y1
	VCVTPH2PS 32(SI), Y2
	VCVTPH2PS 48(SI), Y3
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	VMOVUPS   Y2, 64(DI)
	VMOVUPS   Y3, 96(DI)
	ADDQ      $64, SI
	ADDQ      $128, DI
	SUBQ      $32, CX
	JMP       cvt32

cvt8:
	CMPQ      CX, $8
	JL        cvtdone
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       cvt8

cvtdone:
	VZEROUPPER
	RET

// func dotRowsAVX2(out, q, k *float32, n, hd, stride int)
// out[j] = dot(q[:hd], k[j*stride:][:hd]) for j < n; hd > 0, hd%8 == 0.
// Four rows at a time share the loads of q and keep four FMA chains busy.
TEXT ·dotRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ k+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ hd+32(FP), R11
	MOVQ stride+40(FP), R9
	SHLQ $2, R9            // row stride in bytes
	SHLQ $2, R11           // row length in bytes
	LEAQ (R9)(R9*2), R13   // 3 rows in bytes

rows4:
	CMPQ   CX, $4
	JL     rows1
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ   R10, R10

inner4:
	VMOVUPS     (SI)(R10*1), Y4
	LEAQ        (DX)(R10*1), R12
	VFMADD231PS (R12), Y4, Y0
	VFMADD231PS (R12)(R9*1), Y4, Y1
	VFMADD231PS (R12)(R9*2), Y4, Y2
	VFMADD231PS (R12)(R13*1), Y4, Y3
	ADDQ        $32, R10
	CMPQ        R10, R11
	JL          inner4

	// [a b c d] = horizontal sums of Y0..Y3.
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (DI)
	ADDQ         $16, DI
	LEAQ         (DX)(R9*4), DX
	SUBQ         $4, CX
	JMP          rows4

rows1:
	TESTQ  CX, CX
	JEQ    rowsdone
	VXORPS Y0, Y0, Y0
	XORQ   R10, R10

inner1:
	VMOVUPS     (SI)(R10*1), Y4
	VFMADD231PS (DX)(R10*1), Y4, Y0
	ADDQ        $32, R10
	CMPQ        R10, R11
	JL          inner1

	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, (DI)
	ADDQ         $4, DI
	ADDQ         R9, DX
	DECQ         CX
	JMP          rows1

rowsdone:
	VZEROUPPER
	RET

// func accumRowsAVX2(out, p, v *float32, n, hd, stride int)
// out[:hd] = sum over j < n of p[j] * v[j*stride:][:hd]; hd > 0, hd%8 == 0.
// Columns go in blocks of 64 held in eight registers across all rows.
TEXT ·accumRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ hd+32(FP), R8
	MOVQ stride+40(FP), R9
	SHLQ $2, R9

block64:
	CMPQ   R8, $64
	JL     block8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   CX, R12

rows64:
	TESTQ        R12, R12
	JEQ          store64
	VBROADCASTSS (R10), Y8
	VFMADD231PS  (R11), Y8, Y0
	VFMADD231PS  32(R11), Y8, Y1
	VFMADD231PS  64(R11), Y8, Y2
	VFMADD231PS  96(R11), Y8, Y3
	VFMADD231PS  128(R11), Y8, Y4
	VFMADD231PS  160(R11), Y8, Y5
	VFMADD231PS  192(R11), Y8, Y6
	VFMADD231PS  224(R11), Y8, Y7
	ADDQ         $4, R10
	ADDQ         R9, R11
	DECQ         R12
	JMP          rows64

store64:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ    $256, DI
	ADDQ    $256, DX
	SUBQ    $64, R8
	JMP     block64

block8:
	TESTQ  R8, R8
	JEQ    accumdone
	VXORPS Y0, Y0, Y0
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   CX, R12

rows8:
	TESTQ        R12, R12
	JEQ          store8
	VBROADCASTSS (R10), Y8
	VFMADD231PS  (R11), Y8, Y0
	ADDQ         $4, R10
	ADDQ         R9, R11
	DECQ         R12
	JMP          rows8

store8:
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, DX
	SUBQ    $8, R8
	JMP     block8

accumdone:
	VZEROUPPER
	RET

// func dotRowsF16(out, q *float32, k *uint16, n, hd, stride int)
// dotRowsAVX2 with k in IEEE half (F16C): the widening is exact, the FMA
// order the same, so the results are those of widening k first.
TEXT ·dotRowsF16(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ k+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ hd+32(FP), R11
	MOVQ stride+40(FP), R9
	SHLQ $1, R9            // row stride in bytes
	SHLQ $2, R11           // q length in bytes
	LEAQ (R9)(R9*2), R13   // 3 rows in bytes

h4rows:
	CMPQ   CX, $4
	JL     h1rows
	// Prefetch the first 256 bytes of the rows 16 ahead: a cold fp16
	// cache (a decode step's KV, evicted by the weight stream since the
	// last token) otherwise waits on DRAM for every row (prefetches past
	// the end are harmless).
	MOVQ       R9, R14
	SHLQ       $4, R14
	ADDQ       DX, R14
	PREFETCH256(R14)
	ADDQ       R9, R14
	PREFETCH256(R14)
	ADDQ       R9, R14
	PREFETCH256(R14)
	ADDQ       R9, R14
	PREFETCH256(R14)
	VXORPS     Y0, Y0, Y0
	VXORPS     Y1, Y1, Y1
	VXORPS     Y2, Y2, Y2
	VXORPS     Y3, Y3, Y3
	XORQ       R10, R10    // q offset
	MOVQ       DX, R12     // k of row 0 at this offset

h4inner:
	VMOVUPS     (SI)(R10*1), Y4
	VCVTPH2PS   (R12), Y5
	VCVTPH2PS   (R12)(R9*1), Y6
	VCVTPH2PS   (R12)(R9*2), Y7
	VCVTPH2PS   (R12)(R13*1), Y8
	VFMADD231PS Y5, Y4, Y0
	VFMADD231PS Y6, Y4, Y1
	VFMADD231PS Y7, Y4, Y2
	VFMADD231PS Y8, Y4, Y3
	ADDQ        $32, R10
	ADDQ        $16, R12
	CMPQ        R10, R11
	JL          h4inner

	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (DI)
	ADDQ         $16, DI
	LEAQ         (DX)(R9*4), DX
	SUBQ         $4, CX
	JMP          h4rows

h1rows:
	TESTQ  CX, CX
	JEQ    hrowsdone
	VXORPS Y0, Y0, Y0
	XORQ   R10, R10
	MOVQ   DX, R12

h1inner:
	VMOVUPS     (SI)(R10*1), Y4
	VCVTPH2PS   (R12), Y5
	VFMADD231PS Y5, Y4, Y0
	ADDQ        $32, R10
	ADDQ        $16, R12
	CMPQ        R10, R11
	JL          h1inner

	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, (DI)
	ADDQ         $4, DI
	ADDQ         R9, DX
	DECQ         CX
	JMP          h1rows

hrowsdone:
	VZEROUPPER
	RET

// func accumRowsF16(out, p *float32, v *uint16, n, hd, stride int)
// accumRowsAVX2 with v in IEEE half (F16C), same order, same results.
TEXT ·accumRowsF16(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ hd+32(FP), R8
	MOVQ stride+40(FP), R9
	SHLQ $1, R9

hblock64:
	CMPQ   R8, $64
	JL     hblock8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   CX, R12

hrows64:
	TESTQ        R12, R12
	JEQ          hstore64
	PREFETCHT0   (R11)(R9*8)   // this block of the row 8 ahead (see dotRowsF16)
	PREFETCHT0   64(R11)(R9*8)
	VBROADCASTSS (R10), Y8
	VCVTPH2PS    (R11), Y9
	VCVTPH2PS    16(R11), Y10
	VCVTPH2PS    32(R11), Y11
	VCVTPH2PS    48(R11), Y12
	VFMADD231PS  Y9, Y8, Y0
	VFMADD231PS  Y10, Y8, Y1
	VFMADD231PS  Y11, Y8, Y2
	VFMADD231PS  Y12, Y8, Y3
	VCVTPH2PS    64(R11), Y9
	VCVTPH2PS    80(R11), Y10
	VCVTPH2PS    96(R11), Y11
	VCVTPH2PS    112(R11), Y12
	VFMADD231PS  Y9, Y8, Y4
	VFMADD231PS  Y10, Y8, Y5
	VFMADD231PS  Y11, Y8, Y6
	VFMADD231PS  Y12, Y8, Y7
	ADDQ         $4, R10
	ADDQ         R9, R11
	DECQ         R12
	JMP          hrows64

hstore64:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ    $256, DI
	ADDQ    $128, DX
	SUBQ    $64, R8
	JMP     hblock64

hblock8:
	TESTQ  R8, R8
	JEQ    haccumdone
	VXORPS Y0, Y0, Y0
	MOVQ   SI, R10
	MOVQ   DX, R11
	MOVQ   CX, R12

hrows8:
	TESTQ        R12, R12
	JEQ          hstore8
	VBROADCASTSS (R10), Y8
	VCVTPH2PS    (R11), Y9
	VFMADD231PS  Y9, Y8, Y0
	ADDQ         $4, R10
	ADDQ         R9, R11
	DECQ         R12
	JMP          hrows8

hstore8:
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $16, DX
	SUBQ    $8, R8
	JMP     hblock8

haccumdone:
	VZEROUPPER
	RET

// expc holds expSumAVX2's float32 constants: the clamp -87.33655, log2(e),
// ln 2 in two parts (C1, C2), 1, then Cephes expf's polynomial
// coefficients from the highest degree down.
DATA expc<>+0(SB)/4, $0xc2aeac50
DATA expc<>+4(SB)/4, $0x3fb8aa3b
DATA expc<>+8(SB)/4, $0x3f318000
DATA expc<>+12(SB)/4, $0xb95e8083
DATA expc<>+16(SB)/4, $0x3f800000
DATA expc<>+20(SB)/4, $0x39506967
DATA expc<>+24(SB)/4, $0x3ab743ce
DATA expc<>+28(SB)/4, $0x3c088908
DATA expc<>+32(SB)/4, $0x3d2aa9c1
DATA expc<>+36(SB)/4, $0x3e2aaaaa
DATA expc<>+40(SB)/4, $0x3f000000
GLOBL expc<>(SB), RODATA|NOPTR, $44

// EXP_STEP adds the coefficient at expc+off to the polynomial in Y5 and
// multiplies by r (Y1).
#define EXP_STEP(off) VBROADCASTSS expc<>+off(SB), Y6; VADDPS Y6, Y5, Y5; VMULPS Y1, Y5, Y5

// func expSumAVX2(s *float32, n int, m, scale float32) float32
// s[i] = exp((s[i]-m)*scale) for i < n (n a multiple of 8, the arguments at
// most 0 in softmax) with expf32's float32 algorithm (Cephes expf: n =
// round(x*log2(e)), r = x - n*ln2 in two parts, a degree-5 polynomial,
// times 2^n), no FMA, so that every lane equals expf32 bit for bit;
// returns the sum of the results (eight partial sums, then a tree).
TEXT ·expSumAVX2(SB), NOSPLIT, $0-28
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y15
	VBROADCASTSS scale+20(FP), Y14
	VBROADCASTSS expc<>+0(SB), Y13  // clamp
	VBROADCASTSS expc<>+4(SB), Y12  // log2(e)
	VBROADCASTSS expc<>+8(SB), Y11  // C1
	VBROADCASTSS expc<>+12(SB), Y10 // C2
	VBROADCASTSS expc<>+16(SB), Y9  // 1
	VXORPS       Y0, Y0, Y0         // sum

expLoop:
	TESTQ    CX, CX
	JEQ      expDone
	VMOVUPS  (DI), Y1
	VSUBPS   Y15, Y1, Y1            // s - m
	VMULPS   Y14, Y1, Y1            // x = (s - m) * scale
	VMAXPS   Y13, Y1, Y1            // x >= the clamp
	VMULPS   Y12, Y1, Y2
	VROUNDPS $0, Y2, Y2             // n = round(x*log2e), to nearest even
	VMULPS   Y11, Y2, Y3
	VSUBPS   Y3, Y1, Y1             // x - n*C1
	VMULPS   Y10, Y2, Y3
	VSUBPS   Y3, Y1, Y1             // r = x - n*C1 - n*C2
	VMULPS   Y1, Y1, Y4             // r2
	VBROADCASTSS expc<>+20(SB), Y5
	VMULPS   Y1, Y5, Y5
	EXP_STEP(24)
	EXP_STEP(28)
	EXP_STEP(32)
	EXP_STEP(36)
	VBROADCASTSS expc<>+40(SB), Y6
	VADDPS   Y6, Y5, Y5
	VMULPS   Y4, Y5, Y5             // p * r2
	VADDPS   Y1, Y5, Y5             // + r
	VADDPS   Y9, Y5, Y5             // + 1
	VCVTPS2DQ Y2, Y2                // n as int32 (exact: an integer)
	VPSLLD   $23, Y2, Y2
	VPADDD   Y9, Y2, Y2             // bits of 2^n: (n+127)<<23
	VMULPS   Y2, Y5, Y5
	VMOVUPS  Y5, (DI)
	VADDPS   Y5, Y0, Y0
	ADDQ     $32, DI
	SUBQ     $8, CX
	JMP      expLoop

expDone:
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	MOVSS        X0, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX2(s *float32, n int) float32
// The largest of s[:n], n a positive multiple of 8 (no NaNs).
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ    s+0(FP), DI
	MOVQ    n+8(FP), CX
	VMOVUPS (DI), Y0
	ADDQ    $32, DI
	SUBQ    $8, CX

maxLoop:
	TESTQ   CX, CX
	JEQ     maxDone
	VMAXPS  (DI), Y0, Y0
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     maxLoop

maxDone:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	MOVSS        X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX2(s *float32, n int, f float32)
// s[i] *= f for i < n, n a multiple of 8.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS f+16(FP), Y1

scaleLoop:
	TESTQ   CX, CX
	JEQ     scaleDone
	VMULPS  (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     scaleLoop

scaleDone:
	VZEROUPPER
	RET

// func f32ToF16F16C(dst *uint16, src *float32, n int)
// dst[i] = src[i] in IEEE half, rounded to nearest even (VCVTPS2PH $0: the
// rounding of half.ToFloat16); n a multiple of 8.
TEXT ·f32ToF16F16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

narrowLoop:
	TESTQ     CX, CX
	JEQ       narrowDone
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	SUBQ      $8, CX
	JMP       narrowLoop

narrowDone:
	VZEROUPPER
	RET

// func normScaleAVX2(dst, x, w *float32, n int, inv float32)
// dst[i] = w[i] * (x[i]*inv), the two products rounded as Go rounds them;
// n a multiple of 8.
TEXT ·normScaleAVX2(SB), NOSPLIT, $0-36
	MOVQ         dst+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         w+16(FP), DX
	MOVQ         n+24(FP), CX
	VBROADCASTSS inv+32(FP), Y15

normLoop:
	TESTQ   CX, CX
	JEQ     normDone
	VMULPS  (SI), Y15, Y0
	VMULPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     normLoop

normDone:
	VZEROUPPER
	RET

// func relu2MulAVX2(gate, up *float32, n int)
// gate[i] = max(gate[i], 0)^2 * up[i] (ReLU squared times the up projection), the
// products rounded as Go rounds them; n a multiple of 8.
TEXT ·relu2MulAVX2(SB), NOSPLIT, $0-24
	MOVQ   gate+0(FP), DI
	MOVQ   up+8(FP), SI
	MOVQ   n+16(FP), CX
	VXORPS Y15, Y15, Y15

reluLoop:
	TESTQ   CX, CX
	JEQ     reluDone
	VMOVUPS (DI), Y0
	VMAXPS  Y15, Y0, Y0
	VMULPS  Y0, Y0, Y0
	VMULPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     reluLoop

reluDone:
	VZEROUPPER
	RET

// func dotRowsGroupF16(out, q *float32, k *uint16, n, hd, stride, ostride int)
// out[h*ostride+j] = dot(q[h*hd:][:hd], k[j*stride:][:hd]) for the four
// query heads h < 4 that share one KV head (grouped-query attention) and
// j < n; hd > 0, hd%8 == 0. Each row of k is widened once for the four
// heads (dotRowsF16 widens it once per head); a head's sum runs in the
// same order and reduces as dotRowsF16's four-row blocks do.
TEXT ·dotRowsGroupF16(SB), NOSPLIT, $0-56
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ k+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ hd+32(FP), R11
	MOVQ stride+40(FP), R9
	MOVQ ostride+48(FP), R8
	SHLQ $1, R9             // row stride in bytes
	SHLQ $2, R11            // q head in bytes
	SHLQ $2, R8             // out head stride in bytes
	LEAQ (SI)(R11*1), BX    // q of head 1
	LEAQ (BX)(R11*1), R13   // head 2
	LEAQ (R13)(R11*1), R15  // head 3
	LEAQ (R8)(R8*2), AX     // 3 out heads in bytes

grow:
	TESTQ      CX, CX
	JEQ        gdone
	LEAQ       (DX)(R9*8), R12
	PREFETCH256(R12)        // the row 8 ahead (see dotRowsF16)
	VXORPS     Y0, Y0, Y0
	VXORPS     Y1, Y1, Y1
	VXORPS     Y2, Y2, Y2
	VXORPS     Y3, Y3, Y3
	XORQ       R10, R10     // q offset
	MOVQ       DX, R12      // k at this offset

ginner:
	VCVTPH2PS   (R12), Y4
	VFMADD231PS (SI)(R10*1), Y4, Y0
	VFMADD231PS (BX)(R10*1), Y4, Y1
	VFMADD231PS (R13)(R10*1), Y4, Y2
	VFMADD231PS (R15)(R10*1), Y4, Y3
	ADDQ        $32, R10
	ADDQ        $16, R12
	CMPQ        R10, R11
	JL          ginner

	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0 // the four heads' sums
	VMOVSS       X0, (DI)
	VEXTRACTPS   $1, X0, (DI)(R8*1)
	VEXTRACTPS   $2, X0, (DI)(R8*2)
	VEXTRACTPS   $3, X0, (DI)(AX*1)
	ADDQ         $4, DI
	ADDQ         R9, DX
	DECQ         CX
	JMP          grow

gdone:
	VZEROUPPER
	RET

// func accumRowsGroupF16(out, p *float32, v *uint16, n, hd, stride, pstride int)
// out[h*hd+d] = sum over j < n of p[h*pstride+j] * v[j*stride+d] for the
// four query heads h < 4 that share one KV head and d < hd (hd%16 == 0):
// each row of v is widened once for the four heads; every output sums in
// accumRowsF16's order, so the results are its results.
TEXT ·accumRowsGroupF16(SB), NOSPLIT, $0-56
	MOVQ out+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ hd+32(FP), R8
	MOVQ stride+40(FP), R9
	MOVQ pstride+48(FP), R11
	SHLQ $1, R9             // row stride in bytes
	SHLQ $2, R11            // p head stride in bytes
	MOVQ R8, R13
	SHLQ $2, R13            // out head in bytes
	LEAQ (R11)(R11*2), AX   // 3 p heads in bytes
	LEAQ (R13)(R13*2), BX   // 3 out heads in bytes

ablock:
	CMPQ   R8, $16
	JL     adone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   SI, R10          // p of head 0 at row j
	MOVQ   DX, R12          // this block of row j
	MOVQ   CX, R14          // rows left

arow:
	TESTQ        R14, R14
	JEQ          astore
	PREFETCHT0   (R12)(R9*8)
	VCVTPH2PS    (R12), Y8
	VCVTPH2PS    16(R12), Y9
	VBROADCASTSS (R10), Y10
	VFMADD231PS  Y9, Y10, Y1
	VFMADD231PS  Y8, Y10, Y0
	VBROADCASTSS (R10)(R11*1), Y11
	VFMADD231PS  Y8, Y11, Y2
	VFMADD231PS  Y9, Y11, Y3
	VBROADCASTSS (R10)(R11*2), Y12
	VFMADD231PS  Y8, Y12, Y4
	VFMADD231PS  Y9, Y12, Y5
	VBROADCASTSS (R10)(AX*1), Y13
	VFMADD231PS  Y8, Y13, Y6
	VFMADD231PS  Y9, Y13, Y7
	ADDQ         $4, R10
	ADDQ         R9, R12
	DECQ         R14
	JMP          arow

astore:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, (DI)(R13*1)
	VMOVUPS Y3, 32(DI)(R13*1)
	VMOVUPS Y4, (DI)(R13*2)
	VMOVUPS Y5, 32(DI)(R13*2)
	VMOVUPS Y6, (DI)(BX*1)
	VMOVUPS Y7, 32(DI)(BX*1)
	ADDQ    $64, DI
	ADDQ    $32, DX
	SUBQ    $16, R8
	JMP     ablock

adone:
	VZEROUPPER
	RET
