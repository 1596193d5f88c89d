#include "textflag.h"

// The batched-product tile finishers (see fin_amd64.go): a 4 x 4 int32
// tile d (row-major: d[i*4+j] is row i, token j) becomes floats, then is
// transposed so that each token's four rows are stored at once.

// TRANSPOSE_STORE transposes the float rows X0..X3 (X6, X7 scratch:
// UNPCKLPS/UNPCKHPS pair rows 0, 1 and rows 2, 3 by token, MOVLHPS/MOVHLPS
// join the pairs) and stores token j's four rows at DI + j*CX.
#define TRANSPOSE_STORE \
	MOVAPS   X0, X6 \
	UNPCKLPS X1, X0 \
	UNPCKHPS X1, X6 \
	MOVAPS   X2, X7 \
	UNPCKLPS X3, X2 \
	UNPCKHPS X3, X7 \
	MOVAPS   X0, X1 \
	MOVLHPS  X2, X0 \
	MOVHLPS  X1, X2 \
	MOVAPS   X6, X1 \
	MOVLHPS  X7, X6 \
	MOVHLPS  X1, X7 \
	MOVUPS   X0, (DI) \
	ADDQ     CX, DI \
	MOVUPS   X2, (DI) \
	ADDQ     CX, DI \
	MOVUPS   X6, (DI) \
	ADDQ     CX, DI \
	MOVUPS   X7, (DI)

// func finTern4x4(y *float32, rows int, d *int32, s *int32, f *float32)
// y[j*rows+i] = float32(d[i*4+j]-s[j]) * f[j] for i, j < 4.
TEXT ·finTern4x4(SB), NOSPLIT, $0-40
	MOVQ     y+0(FP), DI
	MOVQ     rows+8(FP), CX
	SHLQ     $2, CX
	MOVQ     d+16(FP), SI
	MOVQ     s+24(FP), DX
	MOVQ     f+32(FP), AX
	MOVOU    (DX), X4
	MOVUPS   (AX), X5
	MOVOU    0(SI), X0
	MOVOU    16(SI), X1
	MOVOU    32(SI), X2
	MOVOU    48(SI), X3
	PSUBL    X4, X0
	PSUBL    X4, X1
	PSUBL    X4, X2
	PSUBL    X4, X3
	CVTPL2PS X0, X0
	CVTPL2PS X1, X1
	CVTPL2PS X2, X2
	CVTPL2PS X3, X3
	MULPS    X5, X0
	MULPS    X5, X1
	MULPS    X5, X2
	MULPS    X5, X3
	TRANSPOSE_STORE
	RET

// SCALED_ROW turns row i (d at off, row scale at soff) into floats in X:
// float32(d - s) * (ws[i] / as).
#define SCALED_ROW(off, soff, X) \
	MOVOU    off(SI), X \
	PSUBL    X4, X \
	CVTPL2PS X, X \
	MOVSS    soff(R8), X6 \
	SHUFPS   $0, X6, X6 \
	DIVPS    X5, X6 \
	MULPS    X6, X

// func finScaled4x4(y *float32, rows int, d *int32, s *int32, ws *float32, as *float32)
// y[j*rows+i] = float32(d[i*4+j]-s[j]) * (ws[i] / as[j]) for i, j < 4.
TEXT ·finScaled4x4(SB), NOSPLIT, $0-48
	MOVQ y+0(FP), DI
	MOVQ rows+8(FP), CX
	SHLQ $2, CX
	MOVQ d+16(FP), SI
	MOVQ s+24(FP), DX
	MOVQ ws+32(FP), R8
	MOVQ as+40(FP), AX
	MOVOU (DX), X4
	MOVUPS (AX), X5
	SCALED_ROW(0, 0, X0)
	SCALED_ROW(16, 4, X1)
	SCALED_ROW(32, 8, X2)
	SCALED_ROW(48, 12, X3)
	TRANSPOSE_STORE
	RET

// func finScaled4x2(y *float32, rows int, d *int32, s *int32, ws *float32, as *float32)
// y[j*rows+i] = float32(d[i*2+j]-s[j]) * (ws[i] / as[j]) for i < 4, j < 2.
TEXT ·finScaled4x2(SB), NOSPLIT, $0-48
	MOVQ       y+0(FP), DI
	MOVQ       rows+8(FP), CX
	SHLQ       $2, CX
	MOVQ       d+16(FP), SI
	MOVQ       s+24(FP), DX
	MOVQ       ws+32(FP), R8
	MOVQ       as+40(FP), AX
	MOVQ       (DX), X4
	PUNPCKLQDQ X4, X4     // s0 s1 s0 s1
	MOVQ       (AX), X5
	MOVLHPS    X5, X5     // as0 as1 as0 as1
	MOVUPS     (R8), X6
	MOVAPS     X6, X7
	UNPCKLPS   X6, X7     // ws0 ws0 ws1 ws1
	UNPCKHPS   X6, X6     // ws2 ws2 ws3 ws3
	DIVPS      X5, X7
	DIVPS      X5, X6
	MOVOU      0(SI), X0  // rows 0, 1: tokens 0, 1
	MOVOU      16(SI), X1 // rows 2, 3
	PSUBL      X4, X0
	PSUBL      X4, X1
	CVTPL2PS   X0, X0
	CVTPL2PS   X1, X1
	MULPS      X7, X0
	MULPS      X6, X1
	MOVAPS     X0, X2
	SHUFPS     $0x88, X1, X2 // token 0: rows 0-3
	SHUFPS     $0xdd, X1, X0 // token 1
	MOVUPS     X2, (DI)
	ADDQ       CX, DI
	MOVUPS     X0, (DI)
	RET

// func finTern4x2(y *float32, rows int, d *int32, s *int32, f *float32)
// y[j*rows+i] = float32(d[i*2+j]-s[j]) * f[j] for i < 4, j < 2.
TEXT ·finTern4x2(SB), NOSPLIT, $0-40
	MOVQ       y+0(FP), DI
	MOVQ       rows+8(FP), CX
	SHLQ       $2, CX
	MOVQ       d+16(FP), SI
	MOVQ       s+24(FP), DX
	MOVQ       f+32(FP), AX
	MOVQ       (DX), X4
	PUNPCKLQDQ X4, X4 // s0 s1 s0 s1
	MOVQ       (AX), X5
	MOVLHPS    X5, X5 // f0 f1 f0 f1
	MOVOU      0(SI), X0
	MOVOU      16(SI), X1
	PSUBL      X4, X0
	PSUBL      X4, X1
	CVTPL2PS   X0, X0
	CVTPL2PS   X1, X1
	MULPS      X5, X0
	MULPS      X5, X1
	MOVAPS     X0, X2
	SHUFPS     $0x88, X1, X2
	SHUFPS     $0xdd, X1, X0
	MOVUPS     X2, (DI)
	ADDQ       CX, DI
	MOVUPS     X0, (DI)
	RET
