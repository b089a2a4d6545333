//go:build amd64 && !purego

#include "textflag.h"

// Elementwise kernels of the fused residual-MLP coupling (resmlpfused.go), AVX2. Each works on the first
// len&^7 (float32) or len&^3 (float64) elements; the Go wrappers do the rest.

// The float32 exp and sigmoid steps of elu_amd64.s (the same instructions in the same order, so that
// swishBothF32AVX2 gives the bits of swishF32AVX2 and swishGradF32AVX2). Constants from c (eluConst32):
// Y4 the clamp, Y5 log2 e, Y6 c1, Y7 c2, Y8…Y13 the exp32 polynomial, Y14 1.0, Y15 the sign mask.
#define RLOADCONST \
	VBROADCASTSS 0(DX), Y4   \
	VBROADCASTSS 4(DX), Y5   \
	VBROADCASTSS 8(DX), Y6   \
	VBROADCASTSS 12(DX), Y7  \
	VBROADCASTSS 16(DX), Y8  \
	VBROADCASTSS 20(DX), Y9  \
	VBROADCASTSS 24(DX), Y10 \
	VBROADCASTSS 28(DX), Y11 \
	VBROADCASTSS 32(DX), Y12 \
	VBROADCASTSS 36(DX), Y13 \
	VBROADCASTSS 40(DX), Y14 \
	VBROADCASTSS 44(DX), Y15

#define REXPPOLY \
	VMULPS       Y5, Y1, Y2  \
	VROUNDPS     $0, Y2, Y2  \
	VFNMADD231PS Y6, Y2, Y1  \
	VFNMADD231PS Y7, Y2, Y1  \
	VMOVAPS      Y8, Y3      \
	VFMADD213PS  Y9, Y1, Y3  \
	VFMADD213PS  Y10, Y1, Y3 \
	VFMADD213PS  Y11, Y1, Y3 \
	VFMADD213PS  Y12, Y1, Y3 \
	VFMADD213PS  Y13, Y1, Y3 \
	VFMADD213PS  Y14, Y1, Y3 \
	VFMADD213PS  Y14, Y1, Y3 \
	VCVTPS2DQ    Y2, Y2

#define REXPFULL \
	REXPPOLY                \
	VPSRAD       $1, Y2, Y1  \
	VPSUBD       Y1, Y2, Y2  \
	VPSLLD       $23, Y1, Y1 \
	VPADDD       Y14, Y1, Y1 \
	VPSLLD       $23, Y2, Y2 \
	VPADDD       Y14, Y2, Y2 \
	VMULPS       Y1, Y3, Y3  \
	VMULPS       Y2, Y3, Y3

#define REXPNEGFULL \
	VORPS  Y15, Y0, Y1 \
	VMAXPS Y1, Y4, Y1  \
	REXPFULL

#define RSIGMOID \
	VADDPS    Y14, Y3, Y1     \
	VBLENDVPS Y0, Y3, Y14, Y2 \
	VDIVPS    Y1, Y2, Y2

// func swishBothF32AVX2(a, d, x []float32, c *[16]float32)
// a = x·σ(x) and d = σ(x)·(1 + x·(1 − σ(x))) with one exp per element.
TEXT ·swishBothF32AVX2(SB), NOSPLIT, $0-80
	MOVQ a_base+0(FP), DI
	MOVQ d_base+24(FP), R8
	MOVQ x_base+48(FP), SI
	MOVQ x_len+56(FP), CX
	MOVQ c+72(FP), DX
	SHRQ $3, CX
	JZ   bdone
	RLOADCONST
	VBROADCASTSS 52(DX), Y4 // the lower clamp −104

bloop:
	VMOVUPS (SI), Y0
	REXPNEGFULL
	RSIGMOID
	VMULPS  Y2, Y0, Y3
	VMOVUPS Y3, (DI)
	VSUBPS  Y2, Y14, Y1 // 1 − σ
	VMULPS  Y0, Y1, Y1  // x(1 − σ)
	VADDPS  Y14, Y1, Y1 // 1 + x(1 − σ)
	VMULPS  Y2, Y1, Y3
	VMOVUPS Y3, (R8)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	DECQ    CX
	JNZ     bloop
	VZEROUPPER

bdone:
	RET

// func mulF32AVX2(x, y []float32)
// x *= y.
TEXT ·mulF32AVX2(SB), NOSPLIT, $0-48
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	SHRQ $3, CX
	JZ   mdone32

mloop32:
	VMOVUPS (SI), Y0
	VMULPS  (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     mloop32
	VZEROUPPER

mdone32:
	RET

// func mulF64AVX2(x, y []float64)
TEXT ·mulF64AVX2(SB), NOSPLIT, $0-48
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	SHRQ $2, CX
	JZ   mdone64

mloop64:
	VMOVUPD (SI), Y0
	VMULPD  (DI), Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     mloop64
	VZEROUPPER

mdone64:
	RET

// func addScaleF32AVX2(x, y []float32, s float32)
// x = (x + y)·s.
TEXT ·addScaleF32AVX2(SB), NOSPLIT, $0-52
	MOVQ         x_base+0(FP), DI
	MOVQ         x_len+8(FP), CX
	MOVQ         y_base+24(FP), SI
	VBROADCASTSS s+48(FP), Y2
	SHRQ         $3, CX
	JZ           adone32

aloop32:
	VMOVUPS (SI), Y0
	VADDPS  (DI), Y0, Y0
	VMULPS  Y2, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     aloop32

adone32:
	VZEROUPPER
	RET

// func addScaleF64AVX2(x, y []float64, s float64)
TEXT ·addScaleF64AVX2(SB), NOSPLIT, $0-56
	MOVQ         x_base+0(FP), DI
	MOVQ         x_len+8(FP), CX
	MOVQ         y_base+24(FP), SI
	VBROADCASTSD s+48(FP), Y2
	SHRQ         $2, CX
	JZ           adone64

aloop64:
	VMOVUPD (SI), Y0
	VADDPD  (DI), Y0, Y0
	VMULPD  Y2, Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     aloop64

adone64:
	VZEROUPPER
	RET

// func scaleAddMulF32AVX2(x, y, z []float32, s float32)
// x = x·s + y·z (two roundings each, no fused multiply-add: the Go loop of the remainder rounds alike).
TEXT ·scaleAddMulF32AVX2(SB), NOSPLIT, $0-76
	MOVQ         x_base+0(FP), DI
	MOVQ         x_len+8(FP), CX
	MOVQ         y_base+24(FP), SI
	MOVQ         z_base+48(FP), R8
	VBROADCASTSS s+72(FP), Y2
	SHRQ         $3, CX
	JZ           sdone32

sloop32:
	VMOVUPS (SI), Y0
	VMULPS  (R8), Y0, Y0
	VMULPS  (DI), Y2, Y1
	VADDPS  Y1, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	DECQ    CX
	JNZ     sloop32

sdone32:
	VZEROUPPER
	RET

// func scaleAddMulF64AVX2(x, y, z []float64, s float64)
TEXT ·scaleAddMulF64AVX2(SB), NOSPLIT, $0-80
	MOVQ         x_base+0(FP), DI
	MOVQ         x_len+8(FP), CX
	MOVQ         y_base+24(FP), SI
	MOVQ         z_base+48(FP), R8
	VBROADCASTSD s+72(FP), Y2
	SHRQ         $2, CX
	JZ           sdone64

sloop64:
	VMOVUPD (SI), Y0
	VMULPD  (R8), Y0, Y0
	VMULPD  (DI), Y2, Y1
	VADDPD  Y1, Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	DECQ    CX
	JNZ     sloop64

sdone64:
	VZEROUPPER
	RET

// func swishBothF32AVX512(a, d, x []float32, c *[16]float32)
// swishBothF32AVX2 with twice the lanes: the same steps and constants, so every element gets the same bits
// (VRNDSCALE $0 rounds to nearest even as VROUND $0 does; the sign-bit selects are masked moves). On the
// first len(x)&^15 elements.
TEXT ·swishBothF32AVX512(SB), NOSPLIT, $0-80
	MOVQ a_base+0(FP), DI
	MOVQ d_base+24(FP), R8
	MOVQ x_base+48(FP), SI
	MOVQ x_len+56(FP), CX
	MOVQ c+72(FP), DX
	SHRQ $4, CX
	JZ   zdone
	VBROADCASTSS 52(DX), Z4  // the lower clamp −104
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

zloop:
	VMOVUPS      (SI), Z0      // x
	VPORD        Z15, Z0, Z1   // −|x|
	VMAXPS       Z1, Z4, Z1    // clamped; NaN stays NaN
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
	VPSRAD       $1, Z2, Z1    // n₁ = n>>1
	VPSUBD       Z1, Z2, Z2    // n − n₁
	VPSLLD       $23, Z1, Z1
	VPADDD       Z14, Z1, Z1
	VPSLLD       $23, Z2, Z2
	VPADDD       Z14, Z2, Z2
	VMULPS       Z1, Z3, Z3
	VMULPS       Z2, Z3, Z3    // e = e^{−|x|}
	VADDPS       Z14, Z3, Z1   // 1 + e
	VMOVAPS      Z14, Z2
	VPTESTMD     Z15, Z0, K1   // lanes whose x has its sign bit set
	VMOVAPS      Z3, K1, Z2    // x < 0 ? e : 1
	VDIVPS       Z1, Z2, Z2    // σ(x)
	VMULPS       Z2, Z0, Z3
	VMOVUPS      Z3, (DI)
	VSUBPS       Z2, Z14, Z1   // 1 − σ
	VMULPS       Z0, Z1, Z1    // x(1 − σ)
	VADDPS       Z14, Z1, Z1   // 1 + x(1 − σ)
	VMULPS       Z2, Z1, Z3
	VMOVUPS      Z3, (R8)
	ADDQ         $64, SI
	ADDQ         $64, DI
	ADDQ         $64, R8
	DECQ         CX
	JNZ          zloop
	VZEROUPPER

zdone:
	RET
