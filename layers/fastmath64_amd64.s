//go:build amd64 && !purego

#include "textflag.h"

// func expF64AVX2(x []float64, c *[18][4]float64)
// e^x in place on the first len(x)&^3 elements, the steps of exp64 (see there) four lanes at a time:
// clamp to [−746, 710] (a NaN stays NaN), n = round(x·log2 e), r = x − n·ln2 (two parts), e^r = 1 + r +
// r²·P(r) with P the Taylor polynomial from 1/2! to 1/13!, and 2ⁿ applied as 2^{n₁}·2^{n−n₁}.
// Constants (see expConst64): 0 the upper clamp, 1 the lower clamp, 2 log2 e, 3 ln2 hi, 4 ln2 lo, 5 1.0,
// 6…17 1/13!, 1/12!, …, 1/2!.
TEXT ·expF64AVX2(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c+24(FP), DX
	SHRQ $2, CX
	JZ   xdone
	VMOVUPD 0(DX), Y9    // 710
	VMOVUPD 32(DX), Y8   // −746
	VMOVUPD 64(DX), Y10  // log2 e
	VMOVUPD 96(DX), Y11  // ln2 hi
	VMOVUPD 128(DX), Y12 // ln2 lo
	VMOVUPD 160(DX), Y13 // 1.0

xloop:
	VMOVUPD      (SI), Y1
	VMAXPD       Y1, Y8, Y1    // max(−746, x); NaN stays NaN
	VMINPD       Y1, Y9, Y1    // min(710, x)
	VMULPD       Y10, Y1, Y2
	VROUNDPD     $0, Y2, Y2    // n
	VFNMADD231PD Y11, Y2, Y1   // r = x − n·ln2hi (exact)
	VFNMADD231PD Y12, Y2, Y1   // r −= n·ln2lo
	VMOVUPD      192(DX), Y3   // 1/13!
	VFMADD213PD  224(DX), Y1, Y3
	VFMADD213PD  256(DX), Y1, Y3
	VFMADD213PD  288(DX), Y1, Y3
	VFMADD213PD  320(DX), Y1, Y3
	VFMADD213PD  352(DX), Y1, Y3
	VFMADD213PD  384(DX), Y1, Y3
	VFMADD213PD  416(DX), Y1, Y3
	VFMADD213PD  448(DX), Y1, Y3
	VFMADD213PD  480(DX), Y1, Y3
	VFMADD213PD  512(DX), Y1, Y3
	VFMADD213PD  544(DX), Y1, Y3 // P(r), ending with 1/2!
	VMULPD       Y1, Y1, Y4      // r²
	VFMADD213PD  Y1, Y4, Y3      // q = r²·P + r
	VADDPD       Y13, Y3, Y3     // 1 + q
	VCVTPD2DQY   Y2, X2          // n as int32
	VPSRAD       $1, X2, X5      // n₁
	VPSUBD       X5, X2, X6      // n − n₁
	VPMOVSXDQ    X5, Y5
	VPMOVSXDQ    X6, Y6
	VPSLLQ       $52, Y5, Y5
	VPSLLQ       $52, Y6, Y6
	VPADDQ       Y13, Y5, Y5     // 2^{n₁}
	VPADDQ       Y13, Y6, Y6     // 2^{n−n₁}
	VMULPD       Y5, Y3, Y3      // exact
	VMULPD       Y6, Y3, Y3      // rounds once (to +Inf, or into the denormals)
	VMOVUPD      Y3, (SI)
	ADDQ         $32, SI
	DECQ         CX
	JNZ          xloop
	VZEROUPPER

xdone:
	RET
