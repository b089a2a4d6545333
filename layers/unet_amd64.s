//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 Swish kernels of GroupNormAct (unet_fused.go): the steps and constants of swishF32AVX2 and
// swishGradF32AVX2 (elu_amd64.s) on 16 lanes, so every element gets the same bits as there (VRNDSCALE $0
// rounds to nearest even as VROUND $0 does; the sign-bit select is a masked move), optionally after the
// affine map z = a·x + b (one FMA, as the one-row axpyRowsF32AVX512 computes it) and before a product
// with dy (as mulVecF32). Constants: c as eluConst32, with c[13] = −104 the lower clamp.

#define LOADCONST512 \
	VBROADCASTSS 52(DX), Z4  \
	VBROADCASTSS 4(DX), Z5   \
	VBROADCASTSS 8(DX), Z6   \
	VBROADCASTSS 12(DX), Z7  \
	VBROADCASTSS 16(DX), Z8  \
	VBROADCASTSS 20(DX), Z9  \
	VBROADCASTSS 24(DX), Z10 \
	VBROADCASTSS 28(DX), Z11 \
	VBROADCASTSS 32(DX), Z12 \
	VBROADCASTSS 36(DX), Z13 \
	VBROADCASTSS 40(DX), Z14 \
	VBROADCASTSS 44(DX), Z15

// SIGMOID512 leaves σ(z) in Z2 for z in Z0, with e^{−|z|} (EXPFULL on −|z| clamped to −104) in Z3;
// clobbers Z1, K1.
#define SIGMOID512 \
	VPORD        Z15, Z0, Z1  \
	VMAXPS       Z1, Z4, Z1   \
	VMULPS       Z5, Z1, Z2   \
	VRNDSCALEPS  $0, Z2, Z2   \
	VFNMADD231PS Z6, Z2, Z1   \
	VFNMADD231PS Z7, Z2, Z1   \
	VMOVAPS      Z8, Z3       \
	VFMADD213PS  Z9, Z1, Z3   \
	VFMADD213PS  Z10, Z1, Z3  \
	VFMADD213PS  Z11, Z1, Z3  \
	VFMADD213PS  Z12, Z1, Z3  \
	VFMADD213PS  Z13, Z1, Z3  \
	VFMADD213PS  Z14, Z1, Z3  \
	VFMADD213PS  Z14, Z1, Z3  \
	VCVTPS2DQ    Z2, Z2       \
	VPSRAD       $1, Z2, Z1   \
	VPSUBD       Z1, Z2, Z2   \
	VPSLLD       $23, Z1, Z1  \
	VPADDD       Z14, Z1, Z1  \
	VPSLLD       $23, Z2, Z2  \
	VPADDD       Z14, Z2, Z2  \
	VMULPS       Z1, Z3, Z3   \
	VMULPS       Z2, Z3, Z3   \
	VADDPS       Z14, Z3, Z1  \
	VMOVAPS      Z14, Z2      \
	VPTESTMD     Z15, Z0, K1  \
	VMOVAPS      Z3, K1, Z2   \
	VDIVPS       Z1, Z2, Z2

// func swishAffineF32AVX512(dst, x []float32, a, b float32, c *[16]float32)
// dst = swish(a·x + b) on the first len(x)&^15 elements.
TEXT ·swishAffineF32AVX512(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ c+56(FP), DX
	SHRQ $4, CX
	JZ   sadone
	LOADCONST512
	VBROADCASTSS a+48(FP), Z16
	VBROADCASTSS b+52(FP), Z17

saloop:
	VMOVUPS     (SI), Z0
	VFMADD213PS Z17, Z16, Z0 // z = a·x + b
	SIGMOID512
	VMULPS      Z2, Z0, Z3
	VMOVUPS     Z3, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         saloop
	VZEROUPPER

sadone:
	RET

// func swishGradAffineF32AVX512(dst, dy, x []float32, a, b float32, c *[16]float32)
// dst = dy · Swish'(a·x + b), Swish'(z) = σ(z)·(1 + z·(1 − σ(z))), on the first len(x)&^15 elements.
TEXT ·swishGradAffineF32AVX512(SB), NOSPLIT, $0-88
	MOVQ dst_base+0(FP), DI
	MOVQ dy_base+24(FP), BX
	MOVQ x_base+48(FP), SI
	MOVQ x_len+56(FP), CX
	MOVQ c+80(FP), DX
	SHRQ $4, CX
	JZ   sgdone
	LOADCONST512
	VBROADCASTSS a+72(FP), Z16
	VBROADCASTSS b+76(FP), Z17

sgloop:
	VMOVUPS     (SI), Z0
	VFMADD213PS Z17, Z16, Z0 // z = a·x + b
	SIGMOID512
	VSUBPS      Z2, Z14, Z1  // 1 − σ
	VMULPS      Z0, Z1, Z1   // z(1 − σ)
	VADDPS      Z14, Z1, Z1  // 1 + z(1 − σ)
	VMULPS      Z2, Z1, Z3   // Swish'(z)
	VMULPS      (BX), Z3, Z3 // dy · Swish'(z)
	VMOVUPS     Z3, (DI)
	ADDQ        $64, SI
	ADDQ        $64, BX
	ADDQ        $64, DI
	DECQ        CX
	JNZ         sgloop
	VZEROUPPER

sgdone:
	RET
