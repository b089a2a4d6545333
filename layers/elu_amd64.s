//go:build amd64 && !purego

#include "textflag.h"

// Macros shared by the float32 kernels. Constants (LOADCONST from c, see eluConst32): Y4 −87, Y5 log2 e,
// Y6 c1, Y7 c2, Y8…Y13 the exp32 polynomial p0…p5, Y14 1.0, Y15 the sign mask.
#define LOADCONST \
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

// EXPPOLY reduces Y1 (x, already clamped) to x = n·ln2 + r and leaves e^r in Y3 (the degree-5 polynomial
// of exp32, e^r = (p(r)·r + 1)·r + 1) and n in Y2 as integers; clobbers Y1.
#define EXPPOLY \
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

// EXPCORE computes Y3 = e^{Y1} for Y1 clamped to [−87, 0], where 2ⁿ is a normal float built in the
// exponent bits; clobbers Y1, Y2.
#define EXPCORE \
	EXPPOLY                 \
	VPSLLD       $23, Y2, Y2 \
	VPADDD       Y14, Y2, Y2 \
	VMULPS       Y2, Y3, Y3

// EXPFULL computes Y3 = e^{Y1} for Y1 clamped to [−104, 89], the whole float32 range: 2ⁿ is applied as
// 2^{n₁}·2^{n−n₁} with n₁ = n>>1, both normal floats, so that p·2^{n₁} is exact and the second product rounds
// once, to +Inf above the largest float32 and into the denormals below the smallest normal (as exp32);
// clobbers Y1, Y2.
#define EXPFULL \
	EXPPOLY                 \
	VPSRAD       $1, Y2, Y1  \
	VPSUBD       Y1, Y2, Y2  \
	VPSLLD       $23, Y1, Y1 \
	VPADDD       Y14, Y1, Y1 \
	VPSLLD       $23, Y2, Y2 \
	VPADDD       Y14, Y2, Y2 \
	VMULPS       Y1, Y3, Y3  \
	VMULPS       Y2, Y3, Y3

// EXPNEG computes Y3 = e^{x'} for x' = max(−87, −|Y0|) (a NaN stays NaN); clobbers Y1, Y2.
#define EXPNEG \
	VORPS  Y15, Y0, Y1 \
	VMAXPS Y1, Y4, Y1  \
	EXPCORE

// EXPNEGFULL computes Y3 = e^{−|Y0|} over the whole range, with Y4 = −104 (a NaN stays NaN); clobbers Y1, Y2.
#define EXPNEGFULL \
	VORPS  Y15, Y0, Y1 \
	VMAXPS Y1, Y4, Y1  \
	EXPFULL

// SIGMOID leaves σ(x) in Y2 from x in Y0 and e^{−|x|} in Y3: (x < 0 ? e : 1)/(1 + e); clobbers Y1.
#define SIGMOID \
	VADDPS    Y14, Y3, Y1     \
	VBLENDVPS Y0, Y3, Y14, Y2 \
	VDIVPS    Y1, Y2, Y2

// func eluF32AVX2(x []float32, c *[16]float32)
// ELU in place on the first len(x)&^7 elements: a > 0 ? a : e^a − 1, with e^x for x = −|a| by the same
// range reduction and degree-5 polynomial as exp32. c: clamp, log2e, c1, c2, p0…p5, one, signmask.
TEXT ·eluF32AVX2(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c+24(FP), DX
	SHRQ $3, CX
	JZ   done32
	LOADCONST

loop32:
	VMOVUPS   (SI), Y0      // a
	EXPNEG                  // Y3 = e^{−|a|}
	VSUBPS    Y14, Y3, Y3   // e^{−|a|} − 1
	VBLENDVPS Y0, Y3, Y0, Y0 // a's sign bit set ? e^a − 1 : a
	VMOVUPS   Y0, (SI)
	ADDQ      $32, SI
	DECQ      CX
	JNZ       loop32
	VZEROUPPER

done32:
	RET

// func eluF64AVX2(x []float64, c *eluConsts64)
// ELU in place on the first len(x)&^3 elements: the steps of elu64Scalar (see there) four lanes at a time,
// so that each element gets the same bits: k = round(x·16/ln2) by the shifter, r = x − k·ln2/16, 2^{j/16}
// (hi, lo) gathered from the table, 2ⁿ from the shifter's bits, q ≈ e^r − 1 of degree 7 (elu64Poly), then
// (hi − 1) + (hi·q + lo).
// c rows (32 bytes each): clamp, 16/ln2, shifter, ln2/16 hi, lo, one, sign mask, index mask 15, then the
// coefficients a5, …, a0 (rows 9…14; row 8 unused), 1/16; the tables at 512 (hi) and 640 (lo).
TEXT ·eluF64AVX2(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c+24(FP), DX
	SHRQ $2, CX
	JZ   done64
	VMOVUPD 0(DX), Y8    // clamp −40
	VMOVUPD 32(DX), Y9   // 16/ln2
	VMOVUPD 64(DX), Y10  // shifter
	VMOVUPD 96(DX), Y11  // ln2/16 hi
	VMOVUPD 128(DX), Y12 // ln2/16 lo
	VMOVUPD 160(DX), Y13 // 1.0
	VMOVUPD 192(DX), Y14 // sign mask
	VMOVUPD 224(DX), Y15 // 15

loop64:
	VMOVUPD      (SI), Y0            // a
	VORPD        Y14, Y0, Y1         // x = −|a|
	VMAXPD       Y1, Y8, Y1          // x = max(−40, x); NaN stays NaN
	VMOVAPD      Y10, Y2
	VFMADD231PD  Y9, Y1, Y2          // kd = x·16/ln2 + shifter: k in the low bits
	VSUBPD       Y10, Y2, Y3         // k
	VFNMADD231PD Y11, Y3, Y1         // r = x − k·ln2hi/16 (exact)
	VFNMADD231PD Y12, Y3, Y1         // r −= k·ln2lo/16
	VPAND        Y15, Y2, Y6         // j = k mod 16
	VPCMPEQQ     Y7, Y7, Y7
	VGATHERQPD   Y7, 512(DX)(Y6*8), Y4 // hi
	VPCMPEQQ     Y7, Y7, Y7
	VGATHERQPD   Y7, 640(DX)(Y6*8), Y5 // lo
	VPSRLQ       $4, Y2, Y6
	VPSLLQ       $52, Y6, Y6
	VPADDQ       Y13, Y6, Y6         // 2ⁿ, n = k >> 4
	VMULPD       Y6, Y4, Y4          // hi·2ⁿ
	VMULPD       Y6, Y5, Y5          // lo·2ⁿ
	VMOVUPD      288(DX), Y7         // a5
	VFMADD213PD  320(DX), Y1, Y7
	VFMADD213PD  352(DX), Y1, Y7
	VFMADD213PD  384(DX), Y1, Y7
	VFMADD213PD  416(DX), Y1, Y7
	VFMADD213PD  448(DX), Y1, Y7     // P(r), ending with a0
	VMULPD       Y1, Y1, Y3          // r²
	VFMADD213PD  Y1, Y3, Y7          // q = r²·P + r
	VFMADD213PD  Y5, Y4, Y7          // hi·q + lo
	VSUBPD       Y13, Y4, Y4         // hi − 1
	VADDPD       Y7, Y4, Y4          // e^x − 1
	VBLENDVPD    Y0, Y4, Y0, Y0      // where a's sign bit is set
	VMOVUPD      Y0, (SI)
	ADDQ         $32, SI
	DECQ         CX
	JNZ          loop64
	VZEROUPPER

done64:
	RET

// func eluGradF32AVX2(g, y []float32)
// g *= min(y, 0) + 1 on the first len(g)&^7 elements (ELU'(x) from y = ELU(x)); a NaN y gives NaN.
TEXT ·eluGradF32AVX2(SB), NOSPLIT, $0-48
	MOVQ g_base+0(FP), DI
	MOVQ g_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	SHRQ $3, CX
	JZ   gdone32
	VXORPS       Y2, Y2, Y2
	MOVL         $0x3f800000, AX
	VMOVD        AX, X3
	VBROADCASTSS X3, Y3

gloop32:
	VMOVUPS (SI), Y0
	VMINPS  Y0, Y2, Y0   // min(0, y); NaN y → y
	VADDPS  Y3, Y0, Y0
	VMULPS  (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     gloop32
	VZEROUPPER

gdone32:
	RET

// func eluGradF64AVX2(g, y []float64)
TEXT ·eluGradF64AVX2(SB), NOSPLIT, $0-48
	MOVQ g_base+0(FP), DI
	MOVQ g_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	SHRQ $2, CX
	JZ   gdone64
	VXORPD       Y2, Y2, Y2
	MOVQ         $0x3ff0000000000000, AX
	VMOVQ        AX, X3
	VBROADCASTSD X3, Y3

gloop64:
	VMOVUPD (SI), Y0
	VMINPD  Y0, Y2, Y0
	VADDPD  Y3, Y0, Y0
	VMULPD  (DI), Y0, Y0
	VMOVUPD Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     gloop64
	VZEROUPPER

gdone64:
	RET

// func swishF32AVX2(dst, x []float32, c *[16]float32)
// dst = x·σ(x) on the first len(x)&^7 elements.
TEXT ·swishF32AVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ c+48(FP), DX
	SHRQ $3, CX
	JZ   sdone
	LOADCONST
	VBROADCASTSS 52(DX), Y4 // the lower clamp −104: σ(x) = e^x/(1 + e^x) down to the denormals

sloop:
	VMOVUPS (SI), Y0
	EXPNEGFULL
	SIGMOID
	VMULPS  Y2, Y0, Y3
	VMOVUPS Y3, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     sloop
	VZEROUPPER

sdone:
	RET

// func swishGradF32AVX2(dst, x []float32, c *[16]float32)
// dst = Swish'(x) = σ(x)·(1 + x·(1 − σ(x))) on the first len(x)&^7 elements.
TEXT ·swishGradF32AVX2(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ c+48(FP), DX
	SHRQ $3, CX
	JZ   sgdone
	LOADCONST
	VBROADCASTSS 52(DX), Y4 // the lower clamp −104: σ(x) = e^x/(1 + e^x) down to the denormals

sgloop:
	VMOVUPS (SI), Y0
	EXPNEGFULL
	SIGMOID
	VSUBPS  Y2, Y14, Y1 // 1 − σ
	VMULPS  Y0, Y1, Y1  // x(1 − σ)
	VADDPS  Y14, Y1, Y1 // 1 + x(1 − σ)
	VMULPS  Y2, Y1, Y3
	VMOVUPS Y3, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     sgloop
	VZEROUPPER

sgdone:
	RET

// func expF32AVX2(x []float32, c *[16]float32)
// x = e^x in place on the first len(x)&^7 elements, for x clamped to [−104, 89] (NaN stays NaN), the steps
// of exp32 (EXPFULL). c as in eluF32AVX2, with c[12] = 89 and c[13] = −104.
TEXT ·expF32AVX2(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ c+24(FP), DX
	SHRQ $3, CX
	JZ   edone
	LOADCONST
	VBROADCASTSS 48(DX), Y15 // the upper clamp 89 (the sign mask is not needed here)
	VBROADCASTSS 52(DX), Y4  // the lower clamp −104

eloop:
	VMOVUPS (SI), Y1
	VMAXPS  Y1, Y4, Y1  // max(−104, x); NaN stays NaN
	VMINPS  Y1, Y15, Y1 // min(89, x)
	EXPFULL
	VMOVUPS Y3, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNZ     eloop
	VZEROUPPER

edone:
	RET

// func eluGradToF32AVX2(dst, g, y []float32)
// dst = g·(min(y, 0) + 1) on the first len(dst)&^7 elements (eluGradF32AVX2 into a separate output).
TEXT ·eluGradToF32AVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ g_base+24(FP), DX
	MOVQ y_base+48(FP), SI
	SHRQ $3, CX
	JZ   tdone32
	VXORPS       Y2, Y2, Y2
	MOVL         $0x3f800000, AX
	VMOVD        AX, X3
	VBROADCASTSS X3, Y3

tloop32:
	VMOVUPS (SI), Y0
	VMINPS  Y0, Y2, Y0   // min(0, y); NaN y → y
	VADDPS  Y3, Y0, Y0
	VMULPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     tloop32
	VZEROUPPER

tdone32:
	RET
