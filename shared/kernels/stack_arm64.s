#include "textflag.h"

// func stack16(p *[16]int32) *[16]int32
TEXT ·stack16(SB), NOSPLIT, $0-16
	MOVD p+0(FP), R0
	MOVD R0, ret+8(FP)
	RET

// func stackGEMV(p *[4 * gemvBlocks]int32) *[4 * gemvBlocks]int32
TEXT ·stackGEMV(SB), NOSPLIT, $0-16
	MOVD p+0(FP), R0
	MOVD R0, ret+8(FP)
	RET
