#include "textflag.h"

// func absMaxBits512(x *float32, n int) uint32
// n > 0 is a multiple of 16. Unsigned max of the sign-cleared bits.
TEXT ·absMaxBits512(SB), NOSPLIT, $0-20
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z3
	VPXORD       Z0, Z0, Z0
	VPXORD       Z1, Z1, Z1

amax32:
	CMPQ    CX, $32
	JL      amax16
	VPANDD  (SI), Z3, Z4
	VPANDD  64(SI), Z3, Z5
	VPMAXUD Z4, Z0, Z0
	VPMAXUD Z5, Z1, Z1
	ADDQ    $128, SI
	SUBQ    $32, CX
	JMP     amax32

amax16:
	CMPQ    CX, $16
	JL      amaxdone
	VPANDD  (SI), Z3, Z4
	VPMAXUD Z4, Z0, Z0

amaxdone:
	VPMAXUD       Z1, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPMAXUD       Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPMAXUD       X1, X0, X0
	VPSHUFD       $0x4e, X0, X1
	VPMAXUD       X1, X0, X0
	VPSHUFD       $0xb1, X0, X1
	VPMAXUD       X1, X0, X0
	VMOVD         X0, AX
	VZEROUPPER
	MOVL          AX, ret+16(FP)
	RET

// func quantize512(q *int8, x *float32, n int, scale float32) int32
// n > 0 is a multiple of 16. q = saturate_int8(round_half_even(x*scale)),
// returns sum(q). The conversion rounds to nearest even explicitly, whatever MXCSR says.
TEXT ·quantize512(SB), NOSPLIT, $0-36
	MOVQ         q+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Z2
	VPXORD       Z0, Z0, Z0
	VPXORD       Z1, Z1, Z1

quant32:
	CMPQ             CX, $32
	JL               quant16
	VMULPS           (SI), Z2, Z4
	VMULPS           64(SI), Z2, Z5
	VCVTPS2DQ.RN_SAE Z4, Z4
	VCVTPS2DQ.RN_SAE Z5, Z5
	VPMOVSDB         Z4, X6
	VPMOVSDB         Z5, X7
	VPMOVSXBD        X6, Z4
	VPMOVSXBD        X7, Z5
	VPADDD           Z4, Z0, Z0
	VPADDD           Z5, Z1, Z1
	VMOVDQU          X6, (DI)
	VMOVDQU          X7, 16(DI)
	ADDQ             $128, SI
	ADDQ             $32, DI
	SUBQ             $32, CX
	JMP              quant32

quant16:
	CMPQ             CX, $16
	JL               quantdone
	VMULPS           (SI), Z2, Z4
	VCVTPS2DQ.RN_SAE Z4, Z4
	VPMOVSDB         Z4, X6
	VPMOVSXBD        X6, Z4
	VPADDD           Z4, Z0, Z0
	VMOVDQU          X6, (DI)

quantdone:
	VPADDD        Z1, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD        Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0x4e, X0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0xb1, X0, X1
	VPADDD        X1, X0, X0
	VMOVD         X0, AX
	VZEROUPPER
	MOVL          AX, ret+32(FP)
	RET
