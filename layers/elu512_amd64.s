//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 forms of eluF32AVX2 and eluF64AVX2 (elu_amd64.s): the same steps and constants, twice the lanes,
// so every element gets the same bits on either kernel (VRNDSCALE $0 rounds to nearest even as VROUND $0
// does; the sign-bit select is a masked move).

// func eluF32AVX512(x []float32, c *[16]float32)
// ELU in place on the first len(x)&^15 elements.
TEXT ·eluF32AVX512(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c+24(FP), DX
	SHRQ $4, CX
	JZ   done32
	VBROADCASTSS 0(DX), Z4   // −87
	VBROADCASTSS 4(DX), Z5   // log2 e
	VBROADCASTSS 8(DX), Z6   // c1
	VBROADCASTSS 12(DX), Z7  // c2
	VBROADCASTSS 16(DX), Z8  // p0 … p5
	VBROADCASTSS 20(DX), Z9
	VBROADCASTSS 24(DX), Z10
	VBROADCASTSS 28(DX), Z11
	VBROADCASTSS 32(DX), Z12
	VBROADCASTSS 36(DX), Z13
	VBROADCASTSS 40(DX), Z14 // 1.0
	VBROADCASTSS 44(DX), Z15 // the sign mask

loop32:
	VMOVUPS      (SI), Z0      // a
	VPORD        Z15, Z0, Z1   // x = −|a|
	VMAXPS       Z1, Z4, Z1    // max(−87, x); NaN stays NaN
	VMULPS       Z5, Z1, Z2
	VRNDSCALEPS  $0, Z2, Z2    // n
	VFNMADD231PS Z6, Z2, Z1
	VFNMADD231PS Z7, Z2, Z1    // r
	VMOVAPS      Z8, Z3
	VFMADD213PS  Z9, Z1, Z3
	VFMADD213PS  Z10, Z1, Z3
	VFMADD213PS  Z11, Z1, Z3
	VFMADD213PS  Z12, Z1, Z3
	VFMADD213PS  Z13, Z1, Z3
	VFMADD213PS  Z14, Z1, Z3
	VFMADD213PS  Z14, Z1, Z3   // e^r
	VCVTPS2DQ    Z2, Z2
	VPSLLD       $23, Z2, Z2
	VPADDD       Z14, Z2, Z2   // 2ⁿ
	VMULPS       Z2, Z3, Z3    // e^{−|a|}
	VSUBPS       Z14, Z3, Z3   // e^{−|a|} − 1
	VPTESTMD     Z15, Z0, K1   // lanes whose a has its sign bit set
	VMOVAPS      Z3, K1, Z0
	VMOVUPS      Z0, (SI)
	ADDQ         $64, SI
	DECQ         CX
	JNZ          loop32
	VZEROUPPER

done32:
	RET

// func eluF64AVX512(x []float64, c *[20][4]float64)
// ELU in place on the first len(x)&^7 elements.
TEXT ·eluF64AVX512(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c+24(FP), DX
	SHRQ $3, CX
	JZ   done64
	VBROADCASTSD 0(DX), Z8    // clamp −40
	VBROADCASTSD 32(DX), Z9   // log2 e
	VBROADCASTSD 64(DX), Z10  // ln2 hi
	VBROADCASTSD 96(DX), Z11  // ln2 lo
	VBROADCASTSD 128(DX), Z14 // 1.0
	VBROADCASTSD 160(DX), Z15 // sign mask
	VBROADCASTSD 192(DX), Z16 // 1/14! … 1/2!
	VBROADCASTSD 224(DX), Z17
	VBROADCASTSD 256(DX), Z18
	VBROADCASTSD 288(DX), Z19
	VBROADCASTSD 320(DX), Z20
	VBROADCASTSD 352(DX), Z21
	VBROADCASTSD 384(DX), Z22
	VBROADCASTSD 416(DX), Z23
	VBROADCASTSD 448(DX), Z24
	VBROADCASTSD 480(DX), Z25
	VBROADCASTSD 512(DX), Z26
	VBROADCASTSD 544(DX), Z27
	VBROADCASTSD 576(DX), Z28

	// Two vectors per pass, their steps interleaved: the 13-term polynomial is one chain of dependent
	// FMAs per vector, and two independent chains keep the FMA units busy while each waits on the last.
	MOVQ  CX, BX
	SHRQ  $1, BX // pairs
	ANDQ  $1, CX // a last single vector
	TESTQ BX, BX
	JZ    tail64

pair64:
	VMOVUPD      0(SI), Z0
	VMOVUPD      64(SI), Z5
	VPORQ        Z15, Z0, Z1
	VPORQ        Z15, Z5, Z6
	VMAXPD       Z1, Z8, Z1
	VMAXPD       Z6, Z8, Z6
	VMULPD       Z9, Z1, Z2
	VMULPD       Z9, Z6, Z7
	VRNDSCALEPD  $0, Z2, Z2
	VRNDSCALEPD  $0, Z7, Z7
	VFNMADD231PD Z10, Z2, Z1
	VFNMADD231PD Z10, Z7, Z6
	VFNMADD231PD Z11, Z2, Z1
	VFNMADD231PD Z11, Z7, Z6
	VMOVAPD      Z16, Z3
	VMOVAPD      Z16, Z12
	VFMADD213PD  Z17, Z1, Z3
	VFMADD213PD  Z17, Z6, Z12
	VFMADD213PD  Z18, Z1, Z3
	VFMADD213PD  Z18, Z6, Z12
	VFMADD213PD  Z19, Z1, Z3
	VFMADD213PD  Z19, Z6, Z12
	VFMADD213PD  Z20, Z1, Z3
	VFMADD213PD  Z20, Z6, Z12
	VFMADD213PD  Z21, Z1, Z3
	VFMADD213PD  Z21, Z6, Z12
	VFMADD213PD  Z22, Z1, Z3
	VFMADD213PD  Z22, Z6, Z12
	VFMADD213PD  Z23, Z1, Z3
	VFMADD213PD  Z23, Z6, Z12
	VFMADD213PD  Z24, Z1, Z3
	VFMADD213PD  Z24, Z6, Z12
	VFMADD213PD  Z25, Z1, Z3
	VFMADD213PD  Z25, Z6, Z12
	VFMADD213PD  Z26, Z1, Z3
	VFMADD213PD  Z26, Z6, Z12
	VFMADD213PD  Z27, Z1, Z3
	VFMADD213PD  Z27, Z6, Z12
	VFMADD213PD  Z28, Z1, Z3
	VFMADD213PD  Z28, Z6, Z12
	VFMADD213PD  Z14, Z1, Z3
	VFMADD213PD  Z14, Z6, Z12
	VMULPD       Z1, Z3, Z3
	VMULPD       Z6, Z12, Z12
	VCVTPD2DQ    Z2, Y2
	VCVTPD2DQ    Z7, Y7
	VPMOVSXDQ    Y2, Z2
	VPMOVSXDQ    Y7, Z7
	VPSLLQ       $52, Z2, Z2
	VPSLLQ       $52, Z7, Z7
	VPADDQ       Z14, Z2, Z2
	VPADDQ       Z14, Z7, Z7
	VSUBPD       Z14, Z2, Z4
	VSUBPD       Z14, Z7, Z13
	VFMADD213PD  Z4, Z2, Z3
	VFMADD213PD  Z13, Z7, Z12
	VPTESTMQ     Z15, Z0, K1
	VPTESTMQ     Z15, Z5, K2
	VMOVAPD      Z3, K1, Z0
	VMOVAPD      Z12, K2, Z5
	VMOVUPD      Z0, 0(SI)
	VMOVUPD      Z5, 64(SI)
	ADDQ         $128, SI
	DECQ         BX
	JNZ          pair64

tail64:
	TESTQ CX, CX
	JZ    end64
	VMOVUPD      0(SI), Z0    // a
	VPORQ        Z15, Z0, Z1    // x = −|a|
	VMAXPD       Z1, Z8, Z1    // x = max(−40, x); NaN stays NaN
	VMULPD       Z9, Z1, Z2
	VRNDSCALEPD  $0, Z2, Z2    // n
	VFNMADD231PD Z10, Z2, Z1    // r = x − n·ln2hi
	VFNMADD231PD Z11, Z2, Z1    // r −= n·ln2lo
	VMOVAPD      Z16, Z3
	VFMADD213PD  Z17, Z1, Z3
	VFMADD213PD  Z18, Z1, Z3
	VFMADD213PD  Z19, Z1, Z3
	VFMADD213PD  Z20, Z1, Z3
	VFMADD213PD  Z21, Z1, Z3
	VFMADD213PD  Z22, Z1, Z3
	VFMADD213PD  Z23, Z1, Z3
	VFMADD213PD  Z24, Z1, Z3
	VFMADD213PD  Z25, Z1, Z3
	VFMADD213PD  Z26, Z1, Z3
	VFMADD213PD  Z27, Z1, Z3
	VFMADD213PD  Z28, Z1, Z3    // P(r), ending with 1/2!
	VFMADD213PD  Z14, Z1, Z3    // 1 + r·P
	VMULPD       Z1, Z3, Z3    // q = e^r − 1
	VCVTPD2DQ    Z2, Y2
	VPMOVSXDQ    Y2, Z2
	VPSLLQ       $52, Z2, Z2
	VPADDQ       Z14, Z2, Z2    // 2ⁿ
	VSUBPD       Z14, Z2, Z4    // 2ⁿ − 1
	VFMADD213PD  Z4, Z2, Z3    // 2ⁿ·q + (2ⁿ − 1)
	VPTESTMQ     Z15, Z0, K1    // lanes whose a has its sign bit set
	VMOVAPD      Z3, K1, Z0
	VMOVUPD      Z0, 0(SI)

end64:
	VZEROUPPER

done64:
	RET
