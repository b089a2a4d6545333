//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 forms of eluF32AVX2 and eluF64AVX2 (elu_amd64.s): the same steps and constants, twice the lanes,
// so every element gets the same bits on either kernel (float32: VRNDSCALE $0 rounds to nearest even as
// VROUND $0 does; float64: the table is read by permutes instead of a gather; the sign-bit select is a
// masked move; e^r·2ⁿ is one VSCALEFPS where the AVX2 form builds 2ⁿ in the exponent field and multiplies:
// n ≥ −126 after the clamp and e^{−87} is normal, so both products are exact and equal).

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
	VSCALEFPS    Z2, Z3, Z3    // e^{−|a|} = e^r·2ⁿ: the bits of the AVX2 form's multiply by 2ⁿ (exact)
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

// func eluF64AVX512(x []float64, c *eluConsts64)
// ELU in place on the first len(x)&^7 elements: the steps and constants of eluF64AVX2 (elu64Scalar) eight
// lanes at a time, the table of 2^{j/16} held in four registers and read by two-table permutes (which
// look at the low four bits of the shifter's sum, j = k mod 16, and ignore the rest).
TEXT ·eluF64AVX512(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c+24(FP), DX
	SHRQ $3, CX
	JZ   done64
	VBROADCASTSD 0(DX), Z8    // clamp −40
	VBROADCASTSD 32(DX), Z9   // 16/ln2
	VBROADCASTSD 64(DX), Z10  // shifter
	VBROADCASTSD 96(DX), Z11  // ln2/16 hi
	VBROADCASTSD 128(DX), Z12 // ln2/16 lo
	VBROADCASTSD 160(DX), Z13 // 1.0
	VBROADCASTSD 192(DX), Z14 // sign mask
	VBROADCASTSD 288(DX), Z16 // a5 … a0 (elu64Poly)
	VBROADCASTSD 320(DX), Z17
	VBROADCASTSD 352(DX), Z18
	VBROADCASTSD 384(DX), Z19
	VBROADCASTSD 416(DX), Z20
	VBROADCASTSD 448(DX), Z21
	VMOVUPD      512(DX), Z22 // 2^{j/16} hi, j = 0…7
	VMOVUPD      576(DX), Z23 // j = 8…15
	VMOVUPD      640(DX), Z24 // lo
	VMOVUPD      704(DX), Z25

	// Two vectors per pass, their steps interleaved (the dependent steps of one vector leave the units
	// idle otherwise), then a last single vector.
	MOVQ  CX, BX
	SHRQ  $1, BX // pairs
	ANDQ  $1, CX // a last single vector
	TESTQ BX, BX
	JZ    tail64

pair64:
	VMOVUPD      0(SI), Z0 // a
	VMOVUPD      64(SI), Z7
	VPORQ        Z14, Z0, Z1 // x = −|a|
	VPORQ        Z14, Z7, Z27
	VMAXPD       Z1, Z8, Z1 // max(−40, x); NaN stays NaN
	VMAXPD       Z27, Z8, Z27
	VMOVAPD      Z10, Z2
	VMOVAPD      Z10, Z26
	VFMADD231PD  Z9, Z1, Z2 // kd = x·16/ln2 + shifter: k in the low bits
	VFMADD231PD  Z9, Z27, Z26
	VSUBPD       Z10, Z2, Z3 // k
	VSUBPD       Z10, Z26, Z28
	VFNMADD231PD Z11, Z3, Z1 // r = x − k·ln2hi/16 (exact)
	VFNMADD231PD Z11, Z28, Z27
	VFNMADD231PD Z12, Z3, Z1 // r −= k·ln2lo/16
	VFNMADD231PD Z12, Z28, Z27
	VMOVDQA64    Z2, Z4
	VMOVDQA64    Z26, Z29
	VPERMI2PD    Z23, Z22, Z4 // hi = 2^{j/16} (index: the low four bits)
	VPERMI2PD    Z23, Z22, Z29
	VPERMI2PD    Z25, Z24, Z2 // lo (in kd's register)
	VPERMI2PD    Z25, Z24, Z26
	VMULPD.BCST  480(DX), Z3, Z3 // k/16 (exact)
	VMULPD.BCST  480(DX), Z28, Z28
	VSCALEFPD    Z3, Z4, Z4 // hi·2ⁿ, n = ⌊k/16⌋ (exact: no overflow, no underflow)
	VSCALEFPD    Z28, Z29, Z29
	VSCALEFPD    Z3, Z2, Z5 // lo·2ⁿ
	VSCALEFPD    Z28, Z26, Z30
	VMOVAPD      Z16, Z6 // a5
	VMOVAPD      Z16, Z31
	VFMADD213PD  Z17, Z1, Z6
	VFMADD213PD  Z17, Z27, Z31
	VFMADD213PD  Z18, Z1, Z6
	VFMADD213PD  Z18, Z27, Z31
	VFMADD213PD  Z19, Z1, Z6
	VFMADD213PD  Z19, Z27, Z31
	VFMADD213PD  Z20, Z1, Z6
	VFMADD213PD  Z20, Z27, Z31
	VFMADD213PD  Z21, Z1, Z6 // P(r), ending with a0
	VFMADD213PD  Z21, Z27, Z31
	VMULPD       Z1, Z1, Z3 // r²
	VMULPD       Z27, Z27, Z28
	VFMADD213PD  Z1, Z3, Z6 // q = r²·P + r
	VFMADD213PD  Z27, Z28, Z31
	VFMADD213PD  Z5, Z4, Z6 // hi·q + lo
	VFMADD213PD  Z30, Z29, Z31
	VSUBPD       Z13, Z4, Z4 // hi − 1
	VSUBPD       Z13, Z29, Z29
	VADDPD       Z6, Z4, Z4 // e^x − 1
	VADDPD       Z31, Z29, Z29
	VPTESTMQ     Z14, Z0, K1 // lanes whose a has its sign bit set
	VPTESTMQ     Z14, Z7, K2
	VMOVAPD      Z4, K1, Z0
	VMOVAPD      Z29, K2, Z7
	VMOVUPD      Z0, 0(SI)
	VMOVUPD      Z7, 64(SI)
	ADDQ         $128, SI
	DECQ         BX
	JNZ          pair64

tail64:
	TESTQ CX, CX
	JZ    end64
	VMOVUPD      0(SI), Z0 // a
	VPORQ        Z14, Z0, Z1 // x = −|a|
	VMAXPD       Z1, Z8, Z1 // max(−40, x); NaN stays NaN
	VMOVAPD      Z10, Z2
	VFMADD231PD  Z9, Z1, Z2 // kd = x·16/ln2 + shifter: k in the low bits
	VSUBPD       Z10, Z2, Z3 // k
	VFNMADD231PD Z11, Z3, Z1 // r = x − k·ln2hi/16 (exact)
	VFNMADD231PD Z12, Z3, Z1 // r −= k·ln2lo/16
	VMOVDQA64    Z2, Z4
	VPERMI2PD    Z23, Z22, Z4 // hi = 2^{j/16} (index: the low four bits)
	VPERMI2PD    Z25, Z24, Z2 // lo (in kd's register)
	VMULPD.BCST  480(DX), Z3, Z3 // k/16 (exact)
	VSCALEFPD    Z3, Z4, Z4 // hi·2ⁿ, n = ⌊k/16⌋ (exact: no overflow, no underflow)
	VSCALEFPD    Z3, Z2, Z5 // lo·2ⁿ
	VMOVAPD      Z16, Z6 // a5
	VFMADD213PD  Z17, Z1, Z6
	VFMADD213PD  Z18, Z1, Z6
	VFMADD213PD  Z19, Z1, Z6
	VFMADD213PD  Z20, Z1, Z6
	VFMADD213PD  Z21, Z1, Z6 // P(r), ending with a0
	VMULPD       Z1, Z1, Z3 // r²
	VFMADD213PD  Z1, Z3, Z6 // q = r²·P + r
	VFMADD213PD  Z5, Z4, Z6 // hi·q + lo
	VSUBPD       Z13, Z4, Z4 // hi − 1
	VADDPD       Z6, Z4, Z4 // e^x − 1
	VPTESTMQ     Z14, Z0, K1 // lanes whose a has its sign bit set
	VMOVAPD      Z4, K1, Z0
	VMOVUPD      Z0, 0(SI)

end64:
	VZEROUPPER

done64:
	RET

// func eluGradF32AVX512(g, y []float32)
// g *= min(y, 0) + 1 on the first len(g)&^15 elements, as eluGradF32AVX2 (the same operations, the same
// bits), sixteen lanes at a time.
TEXT ·eluGradF32AVX512(SB), NOSPLIT, $0-48
	MOVQ g_base+0(FP), DI
	MOVQ g_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	SHRQ $4, CX
	JZ   gdone32
	VPXORD       Z2, Z2, Z2
	MOVL         $0x3f800000, AX
	VMOVD        AX, X3
	VBROADCASTSS X3, Z3

gloop32:
	VMOVUPS (SI), Z0
	VMINPS  Z0, Z2, Z0 // min(0, y); NaN y → y
	VADDPS  Z3, Z0, Z0
	VMULPS  (DI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     gloop32
	VZEROUPPER

gdone32:
	RET

// func eluGradF64AVX512(g, y []float64)
// g *= min(y, 0) + 1 on the first len(g)&^7 elements, as eluGradF64AVX2, eight lanes at a time.
TEXT ·eluGradF64AVX512(SB), NOSPLIT, $0-48
	MOVQ g_base+0(FP), DI
	MOVQ g_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	SHRQ $3, CX
	JZ   gdone64
	VPXORQ       Z2, Z2, Z2
	MOVQ         $0x3ff0000000000000, AX
	VMOVQ        AX, X3
	VBROADCASTSD X3, Z3

gloop64:
	VMOVUPD (SI), Z0
	VMINPD  Z0, Z2, Z0
	VADDPD  Z3, Z0, Z0
	VMULPD  (DI), Z0, Z0
	VMOVUPD Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     gloop64
	VZEROUPPER

gdone64:
	RET

// func tanhPrepF32AVX512(m, x []float32)
// m = −2|x| on the first len(x)&^15 elements (exact).
TEXT ·tanhPrepF32AVX512(SB), NOSPLIT, $0-48
	MOVQ m_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	SHRQ $4, CX
	JZ   tpdone32
	MOVL         $0x80000000, AX
	VPBROADCASTD AX, Z3
	MOVL         $0x40000000, AX // 2.0
	VPBROADCASTD AX, Z4

tploop32:
	VPORD   (SI), Z3, Z0 // −|x|
	VADDPS  Z0, Z0, Z0   // −2|x| (exact)
	VMOVUPS Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     tploop32
	VZEROUPPER

tpdone32:
	RET

// func tanhPrepF64AVX512(m, x []float64)
// m = −2|x| on the first len(x)&^7 elements (exact).
TEXT ·tanhPrepF64AVX512(SB), NOSPLIT, $0-48
	MOVQ m_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	SHRQ $3, CX
	JZ   tpdone64
	MOVQ         $0x8000000000000000, AX
	VPBROADCASTQ AX, Z3

tploop64:
	VPORQ   (SI), Z3, Z0
	VADDPD  Z0, Z0, Z0
	VMOVUPD Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     tploop64
	VZEROUPPER

tpdone64:
	RET

// func tanhDoneF32AVX512(x, m []float32)
// x = sign(x)·|−m/(2 + m)| on the first len(x)&^15 elements (two roundings, as the Go loop).
TEXT ·tanhDoneF32AVX512(SB), NOSPLIT, $0-48
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	MOVQ m_base+24(FP), SI
	SHRQ $4, CX
	JZ   tddone32
	MOVL         $0x80000000, AX
	VPBROADCASTD AX, Z3
	MOVL         $0x40000000, AX // 2.0
	VPBROADCASTD AX, Z4

tdloop32:
	VMOVUPS (SI), Z0
	VADDPS  Z4, Z0, Z1   // 2 + m
	VDIVPS  Z1, Z0, Z1   // m/(2 + m) = −t
	VPANDND Z1, Z3, Z1   // |t|
	VPANDD  (DI), Z3, Z2 // the sign of x
	VPORD   Z2, Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     tdloop32
	VZEROUPPER

tddone32:
	RET

// func tanhDoneF64AVX512(x, m []float64)
// x = sign(x)·|−m/(2 + m)| on the first len(x)&^7 elements.
TEXT ·tanhDoneF64AVX512(SB), NOSPLIT, $0-48
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	MOVQ m_base+24(FP), SI
	SHRQ $3, CX
	JZ   tddone64
	MOVQ         $0x8000000000000000, AX
	VPBROADCASTQ AX, Z3
	MOVQ         $0x4000000000000000, AX // 2.0
	VPBROADCASTQ AX, Z4

tdloop64:
	VMOVUPD (SI), Z0
	VADDPD  Z4, Z0, Z1
	VDIVPD  Z1, Z0, Z1
	VPANDNQ Z1, Z3, Z1
	VPANDQ  (DI), Z3, Z2
	VPORQ   Z2, Z1, Z1
	VMOVUPD Z1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     tdloop64
	VZEROUPPER

tddone64:
	RET
