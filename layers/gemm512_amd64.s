//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 forms of the products of gemm_amd64.s: twice the vector width, and the last columns under a mask
// instead of a scalar loop.

// func axpyRowsF32AVX512(c, a, b []float32, ldb int, init *float32)
// c[j] += Σ_l a[l]·b[l·ldb + j], or c[j] = *init + Σ_l a[l]·b[l·ldb + j] when init is not nil, for every j < len(c) (k = len(a) rows of b): 64 columns at a time in four
// accumulators, then 16, then the last len(c) mod 16 under a mask (masked loads never touch memory past
// the end).
TEXT ·axpyRowsF32AVX512(SB), NOSPLIT, $0-88
	MOVQ init+80(FP), R14
	MOVQ c_base+0(FP), DI
	MOVQ c_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ a_len+32(FP), R8
	MOVQ b_base+48(FP), DX
	MOVQ ldb+72(FP), R9
	SHLQ $2, R9
	MOVQ CX, BX
	SHRQ $6, BX
	MOVQ CX, R13
	ANDQ $63, R13
	SHRQ $4, R13
	ANDQ $15, CX
	TESTQ BX, BX
	JZ   single_f32

quad_f32:
	TESTQ R14, R14
	JNZ   quadinit_f32
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	JMP   quadgo_f32

quadinit_f32:
	VBROADCASTSS (R14), Z0
	VMOVUPS Z0, Z1
	VMOVUPS Z0, Z2
	VMOVUPS Z0, Z3

quadgo_f32:
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      quadstore_f32

quadl_f32:
	VBROADCASTSS (R11), Z4
	VFMADD231PS  (R10), Z4, Z0
	VFMADD231PS  64(R10), Z4, Z1
	VFMADD231PS  128(R10), Z4, Z2
	VFMADD231PS  192(R10), Z4, Z3
	ADDQ         $4, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          quadl_f32

quadstore_f32:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $256, DI
	ADDQ    $256, DX
	DECQ    BX
	JNZ     quad_f32

single_f32:
	TESTQ R13, R13
	JZ    tail_f32

one_f32:
	TESTQ R14, R14
	JNZ   oneinit_f32
	VMOVUPS (DI), Z0
	JMP   onego_f32

oneinit_f32:
	VBROADCASTSS (R14), Z0

onego_f32:
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      onestore_f32

onel_f32:
	VBROADCASTSS (R11), Z4
	VFMADD231PS  (R10), Z4, Z0
	ADDQ         $4, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          onel_f32

onestore_f32:
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, DX
	DECQ    R13
	JNZ     one_f32

tail_f32:
	TESTQ CX, CX
	JZ    done_f32
	MOVQ  $1, AX
	SHLQ  CX, AX
	DECQ  AX
	KMOVW AX, K1
	TESTQ R14, R14
	JNZ   tailinit_f32
	VMOVUPS.Z (DI), K1, Z0
	JMP   tailgo_f32

tailinit_f32:
	VBROADCASTSS (R14), Z0

tailgo_f32:
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      tailstore_f32

taill_f32:
	VBROADCASTSS (R11), Z4
	VMOVUPS.Z (R10), K1, Z5
	VFMADD231PS  Z5, Z4, Z0
	ADDQ         $4, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          taill_f32

tailstore_f32:
	VMOVUPS Z0, K1, (DI)

done_f32:
	VZEROUPPER
	RET

// func dotF32AVX512(a, b []float32) float32
// Σ a[t]·b[t] over all of a: four accumulators over 64 elements at a time, then 16, then a masked tail.
TEXT ·dotF32AVX512(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	MOVQ   CX, BX
	SHRQ   $6, BX
	MOVQ   CX, R13
	ANDQ   $63, R13
	SHRQ   $4, R13
	ANDQ   $15, CX
	TESTQ  BX, BX
	JZ     dsingle_f32

dquad_f32:
	VMOVUPS     (SI), Z4
	VFMADD231PS (DX), Z4, Z0
	VMOVUPS     64(SI), Z5
	VFMADD231PS 64(DX), Z5, Z1
	VMOVUPS     128(SI), Z6
	VFMADD231PS 128(DX), Z6, Z2
	VMOVUPS     192(SI), Z7
	VFMADD231PS 192(DX), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $256, DX
	DECQ        BX
	JNZ         dquad_f32

dsingle_f32:
	TESTQ R13, R13
	JZ    dtail_f32

done1_f32:
	VMOVUPS     (SI), Z4
	VFMADD231PS (DX), Z4, Z0
	ADDQ        $64, SI
	ADDQ        $64, DX
	DECQ        R13
	JNZ         done1_f32

dtail_f32:
	TESTQ CX, CX
	JZ    dsum_f32
	MOVQ  $1, AX
	SHLQ  CX, AX
	DECQ  AX
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Z4
	VMOVUPS.Z (DX), K1, Z5
	VFMADD231PS Z5, Z4, Z1

dsum_f32:
	VADDPS       Z1, Z0, Z0
	VADDPS       Z3, Z2, Z2
	VADDPS       Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+48(FP)
	RET

// func axpyRowsF64AVX512(c, a, b []float64, ldb int, init *float64)
// c[j] += Σ_l a[l]·b[l·ldb + j], or c[j] = *init + Σ_l a[l]·b[l·ldb + j] when init is not nil, for every j < len(c) (k = len(a) rows of b): 32 columns at a time in four
// accumulators, then 8, then the last len(c) mod 8 under a mask (masked loads never touch memory past
// the end).
TEXT ·axpyRowsF64AVX512(SB), NOSPLIT, $0-88
	MOVQ init+80(FP), R14
	MOVQ c_base+0(FP), DI
	MOVQ c_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ a_len+32(FP), R8
	MOVQ b_base+48(FP), DX
	MOVQ ldb+72(FP), R9
	SHLQ $3, R9
	MOVQ CX, BX
	SHRQ $5, BX
	MOVQ CX, R13
	ANDQ $31, R13
	SHRQ $3, R13
	ANDQ $7, CX
	TESTQ BX, BX
	JZ   single_f64

quad_f64:
	TESTQ R14, R14
	JNZ   quadinit_f64
	VMOVUPD (DI), Z0
	VMOVUPD 64(DI), Z1
	VMOVUPD 128(DI), Z2
	VMOVUPD 192(DI), Z3
	JMP   quadgo_f64

quadinit_f64:
	VBROADCASTSD (R14), Z0
	VMOVUPD Z0, Z1
	VMOVUPD Z0, Z2
	VMOVUPD Z0, Z3

quadgo_f64:
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      quadstore_f64

quadl_f64:
	VBROADCASTSD (R11), Z4
	VFMADD231PD  (R10), Z4, Z0
	VFMADD231PD  64(R10), Z4, Z1
	VFMADD231PD  128(R10), Z4, Z2
	VFMADD231PD  192(R10), Z4, Z3
	ADDQ         $8, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          quadl_f64

quadstore_f64:
	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	VMOVUPD Z2, 128(DI)
	VMOVUPD Z3, 192(DI)
	ADDQ    $256, DI
	ADDQ    $256, DX
	DECQ    BX
	JNZ     quad_f64

single_f64:
	TESTQ R13, R13
	JZ    tail_f64

one_f64:
	TESTQ R14, R14
	JNZ   oneinit_f64
	VMOVUPD (DI), Z0
	JMP   onego_f64

oneinit_f64:
	VBROADCASTSD (R14), Z0

onego_f64:
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      onestore_f64

onel_f64:
	VBROADCASTSD (R11), Z4
	VFMADD231PD  (R10), Z4, Z0
	ADDQ         $8, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          onel_f64

onestore_f64:
	VMOVUPD Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, DX
	DECQ    R13
	JNZ     one_f64

tail_f64:
	TESTQ CX, CX
	JZ    done_f64
	MOVQ  $1, AX
	SHLQ  CX, AX
	DECQ  AX
	KMOVW AX, K1
	TESTQ R14, R14
	JNZ   tailinit_f64
	VMOVUPD.Z (DI), K1, Z0
	JMP   tailgo_f64

tailinit_f64:
	VBROADCASTSD (R14), Z0

tailgo_f64:
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      tailstore_f64

taill_f64:
	VBROADCASTSD (R11), Z4
	VMOVUPD.Z (R10), K1, Z5
	VFMADD231PD  Z5, Z4, Z0
	ADDQ         $8, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          taill_f64

tailstore_f64:
	VMOVUPD Z0, K1, (DI)

done_f64:
	VZEROUPPER
	RET

// func dotF64AVX512(a, b []float64) float64
// Σ a[t]·b[t] over all of a: four accumulators over 32 elements at a time, then 8, then a masked tail.
TEXT ·dotF64AVX512(SB), NOSPLIT, $0-56
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	MOVQ   CX, BX
	SHRQ   $5, BX
	MOVQ   CX, R13
	ANDQ   $31, R13
	SHRQ   $3, R13
	ANDQ   $7, CX
	TESTQ  BX, BX
	JZ     dsingle_f64

dquad_f64:
	VMOVUPD     (SI), Z4
	VFMADD231PD (DX), Z4, Z0
	VMOVUPD     64(SI), Z5
	VFMADD231PD 64(DX), Z5, Z1
	VMOVUPD     128(SI), Z6
	VFMADD231PD 128(DX), Z6, Z2
	VMOVUPD     192(SI), Z7
	VFMADD231PD 192(DX), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $256, DX
	DECQ        BX
	JNZ         dquad_f64

dsingle_f64:
	TESTQ R13, R13
	JZ    dtail_f64

done1_f64:
	VMOVUPD     (SI), Z4
	VFMADD231PD (DX), Z4, Z0
	ADDQ        $64, SI
	ADDQ        $64, DX
	DECQ        R13
	JNZ         done1_f64

dtail_f64:
	TESTQ CX, CX
	JZ    dsum_f64
	MOVQ  $1, AX
	SHLQ  CX, AX
	DECQ  AX
	KMOVW AX, K1
	VMOVUPD.Z (SI), K1, Z4
	VMOVUPD.Z (DX), K1, Z5
	VFMADD231PD Z5, Z4, Z1

dsum_f64:
	VADDPD       Z1, Z0, Z0
	VADDPD       Z3, Z2, Z2
	VADDPD       Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPD       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VHADDPD      X0, X0, X0
	VZEROUPPER
	MOVSD        X0, ret+48(FP)
	RET

// func dot4F32AVX512(a, b []float32, ldb int, out *[4]float32)
// out[j] = Σ_t a[t]·b[j·ldb + t] over t < len(a), for the four rows j = 0…3 of b (stride ldb): one load of a
// serves four products. 32 elements at a time in eight accumulators, then 16, then a masked tail.
TEXT ·dot4F32AVX512(SB), NOSPLIT, $0-64
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DX
	MOVQ   ldb+48(FP), R9
	MOVQ   out+56(FP), DI
	SHLQ   $2, R9
	LEAQ   (DX)(R9*1), R10
	LEAQ   (R10)(R9*1), R11
	LEAQ   (R11)(R9*1), R12
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	MOVQ   CX, BX
	SHRQ   $5, BX
	MOVQ   CX, R13
	ANDQ   $31, R13
	SHRQ   $4, R13
	ANDQ   $15, CX
	TESTQ  BX, BX
	JZ     d4single_f32

d4pair_f32:
	VMOVUPS     (SI), Z8
	VMOVUPS     64(SI), Z9
	VFMADD231PS (DX), Z8, Z0
	VFMADD231PS (R10), Z8, Z1
	VFMADD231PS (R11), Z8, Z2
	VFMADD231PS (R12), Z8, Z3
	VFMADD231PS 64(DX), Z9, Z4
	VFMADD231PS 64(R10), Z9, Z5
	VFMADD231PS 64(R11), Z9, Z6
	VFMADD231PS 64(R12), Z9, Z7
	ADDQ        $128, SI
	ADDQ        $128, DX
	ADDQ        $128, R10
	ADDQ        $128, R11
	ADDQ        $128, R12
	DECQ        BX
	JNZ         d4pair_f32

d4single_f32:
	TESTQ R13, R13
	JZ    d4tail_f32
	VMOVUPS     (SI), Z8
	VFMADD231PS (DX), Z8, Z0
	VFMADD231PS (R10), Z8, Z1
	VFMADD231PS (R11), Z8, Z2
	VFMADD231PS (R12), Z8, Z3
	ADDQ        $64, SI
	ADDQ        $64, DX
	ADDQ        $64, R10
	ADDQ        $64, R11
	ADDQ        $64, R12

d4tail_f32:
	TESTQ CX, CX
	JZ    d4sum_f32
	MOVQ  $1, AX
	SHLQ  CX, AX
	DECQ  AX
	KMOVW AX, K1
	VMOVUPS.Z (SI), K1, Z8
	VMOVUPS.Z (DX), K1, Z9
	VFMADD231PS Z9, Z8, Z4
	VMOVUPS.Z (R10), K1, Z9
	VFMADD231PS Z9, Z8, Z5
	VMOVUPS.Z (R11), K1, Z9
	VFMADD231PS Z9, Z8, Z6
	VMOVUPS.Z (R12), K1, Z9
	VFMADD231PS Z9, Z8, Z7

d4sum_f32:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	VEXTRACTF64X4 $1, Z0, Y8
	VADDPS       Y8, Y0, Y0
	VEXTRACTF128  $1, Y0, X8
	VADDPS       X8, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS       X0, X0, X0
	MOVSS         X0, 0(DI)
	VEXTRACTF64X4 $1, Z1, Y8
	VADDPS       Y8, Y1, Y1
	VEXTRACTF128  $1, Y1, X8
	VADDPS       X8, X1, X1
	VHADDPS      X1, X1, X1
	VHADDPS       X1, X1, X1
	MOVSS         X1, 4(DI)
	VEXTRACTF64X4 $1, Z2, Y8
	VADDPS       Y8, Y2, Y2
	VEXTRACTF128  $1, Y2, X8
	VADDPS       X8, X2, X2
	VHADDPS      X2, X2, X2
	VHADDPS       X2, X2, X2
	MOVSS         X2, 8(DI)
	VEXTRACTF64X4 $1, Z3, Y8
	VADDPS       Y8, Y3, Y3
	VEXTRACTF128  $1, Y3, X8
	VADDPS       X8, X3, X3
	VHADDPS      X3, X3, X3
	VHADDPS       X3, X3, X3
	MOVSS         X3, 12(DI)
	VZEROUPPER
	RET

// func dot4F64AVX512(a, b []float64, ldb int, out *[4]float64)
// out[j] = Σ_t a[t]·b[j·ldb + t] over t < len(a), for the four rows j = 0…3 of b (stride ldb): one load of a
// serves four products. 16 elements at a time in eight accumulators, then 8, then a masked tail.
TEXT ·dot4F64AVX512(SB), NOSPLIT, $0-64
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DX
	MOVQ   ldb+48(FP), R9
	MOVQ   out+56(FP), DI
	SHLQ   $3, R9
	LEAQ   (DX)(R9*1), R10
	LEAQ   (R10)(R9*1), R11
	LEAQ   (R11)(R9*1), R12
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	MOVQ   CX, BX
	SHRQ   $4, BX
	MOVQ   CX, R13
	ANDQ   $15, R13
	SHRQ   $3, R13
	ANDQ   $7, CX
	TESTQ  BX, BX
	JZ     d4single_f64

d4pair_f64:
	VMOVUPD     (SI), Z8
	VMOVUPD     64(SI), Z9
	VFMADD231PD (DX), Z8, Z0
	VFMADD231PD (R10), Z8, Z1
	VFMADD231PD (R11), Z8, Z2
	VFMADD231PD (R12), Z8, Z3
	VFMADD231PD 64(DX), Z9, Z4
	VFMADD231PD 64(R10), Z9, Z5
	VFMADD231PD 64(R11), Z9, Z6
	VFMADD231PD 64(R12), Z9, Z7
	ADDQ        $128, SI
	ADDQ        $128, DX
	ADDQ        $128, R10
	ADDQ        $128, R11
	ADDQ        $128, R12
	DECQ        BX
	JNZ         d4pair_f64

d4single_f64:
	TESTQ R13, R13
	JZ    d4tail_f64
	VMOVUPD     (SI), Z8
	VFMADD231PD (DX), Z8, Z0
	VFMADD231PD (R10), Z8, Z1
	VFMADD231PD (R11), Z8, Z2
	VFMADD231PD (R12), Z8, Z3
	ADDQ        $64, SI
	ADDQ        $64, DX
	ADDQ        $64, R10
	ADDQ        $64, R11
	ADDQ        $64, R12

d4tail_f64:
	TESTQ CX, CX
	JZ    d4sum_f64
	MOVQ  $1, AX
	SHLQ  CX, AX
	DECQ  AX
	KMOVW AX, K1
	VMOVUPD.Z (SI), K1, Z8
	VMOVUPD.Z (DX), K1, Z9
	VFMADD231PD Z9, Z8, Z4
	VMOVUPD.Z (R10), K1, Z9
	VFMADD231PD Z9, Z8, Z5
	VMOVUPD.Z (R11), K1, Z9
	VFMADD231PD Z9, Z8, Z6
	VMOVUPD.Z (R12), K1, Z9
	VFMADD231PD Z9, Z8, Z7

d4sum_f64:
	VADDPD Z4, Z0, Z0
	VADDPD Z5, Z1, Z1
	VADDPD Z6, Z2, Z2
	VADDPD Z7, Z3, Z3
	VEXTRACTF64X4 $1, Z0, Y8
	VADDPD       Y8, Y0, Y0
	VEXTRACTF128  $1, Y0, X8
	VADDPD       X8, X0, X0
	VHADDPD      X0, X0, X0
	MOVSD         X0, 0(DI)
	VEXTRACTF64X4 $1, Z1, Y8
	VADDPD       Y8, Y1, Y1
	VEXTRACTF128  $1, Y1, X8
	VADDPD       X8, X1, X1
	VHADDPD      X1, X1, X1
	MOVSD         X1, 8(DI)
	VEXTRACTF64X4 $1, Z2, Y8
	VADDPD       Y8, Y2, Y2
	VEXTRACTF128  $1, Y2, X8
	VADDPD       X8, X2, X2
	VHADDPD      X2, X2, X2
	MOVSD         X2, 16(DI)
	VEXTRACTF64X4 $1, Z3, Y8
	VADDPD       Y8, Y3, Y3
	VEXTRACTF128  $1, Y3, X8
	VADDPD       X8, X3, X3
	VHADDPD      X3, X3, X3
	MOVSD         X3, 24(DI)
	VZEROUPPER
	RET

// func axpy4F32AVX512(c []float32, ldc int, a []float32, sr, sl, k int, b []float32, ldb int, init *[4]float32)
// Four output rows at once: c[r·ldc + j] (+)= Σ_{l<k} a[r·sr + l·sl]·b[l·ldb + j] for r = 0…3 and j < len(c)
// (the rows r > 0 lie past len(c), within its capacity; the caller checks the bounds). Each load of b serves
// four rows. With init, row r starts from init[r] instead of from c. 32 columns at a time (eight
// accumulators), then 16, then the last len(c) mod 16 under a mask.
TEXT ·axpy4F32AVX512(SB), NOSPLIT, $0-120
	MOVQ c_base+0(FP), DI
	MOVQ ldc+24(FP), R13
	SHLQ $2, R13
	MOVQ a_base+32(FP), SI
	MOVQ sr+56(FP), R8
	SHLQ $2, R8
	MOVQ sl+64(FP), R9
	SHLQ $2, R9
	MOVQ b_base+80(FP), DX
	MOVQ ldb+104(FP), R10
	SHLQ $2, R10
	MOVQ init+112(FP), R14
	MOVQ c_len+8(FP), BX
	SHRQ $5, BX
	JZ   one_xf32

pair_xf32:
	LEAQ (DI)(R13*2), AX
	TESTQ R14, R14
	JNZ  pairinit_xf32
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS (DI)(R13*1), Z2
	VMOVUPS 64(DI)(R13*1), Z3
	VMOVUPS (DI)(R13*2), Z4
	VMOVUPS 64(DI)(R13*2), Z5
	VMOVUPS (AX)(R13*1), Z6
	VMOVUPS 64(AX)(R13*1), Z7
	JMP  pairgo_xf32

pairinit_xf32:
	VBROADCASTSS 0(R14), Z0
	VMOVAPS Z0, Z1
	VBROADCASTSS 4(R14), Z2
	VMOVAPS Z2, Z3
	VBROADCASTSS 8(R14), Z4
	VMOVAPS Z4, Z5
	VBROADCASTSS 12(R14), Z6
	VMOVAPS Z6, Z7

pairgo_xf32:
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ k+72(FP), CX
	TESTQ CX, CX
	JZ   pairstore_xf32

pairl_xf32:
	VMOVUPS (R12), Z8
	VMOVUPS 64(R12), Z9
	VBROADCASTSS (R11), Z10
	VBROADCASTSS (R11)(R8*1), Z11
	VBROADCASTSS (R11)(R8*2), Z12
	LEAQ (R11)(R8*2), AX
	VBROADCASTSS (AX)(R8*1), Z13
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z9, Z10, Z1
	VFMADD231PS Z8, Z11, Z2
	VFMADD231PS Z9, Z11, Z3
	VFMADD231PS Z8, Z12, Z4
	VFMADD231PS Z9, Z12, Z5
	VFMADD231PS Z8, Z13, Z6
	VFMADD231PS Z9, Z13, Z7
	ADDQ R9, R11
	ADDQ R10, R12
	DECQ CX
	JNZ  pairl_xf32

pairstore_xf32:
	LEAQ (DI)(R13*2), AX
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, (DI)(R13*1)
	VMOVUPS Z3, 64(DI)(R13*1)
	VMOVUPS Z4, (DI)(R13*2)
	VMOVUPS Z5, 64(DI)(R13*2)
	VMOVUPS Z6, (AX)(R13*1)
	VMOVUPS Z7, 64(AX)(R13*1)
	ADDQ $128, DI
	ADDQ $128, DX
	DECQ BX
	JNZ  pair_xf32

one_xf32:
	MOVQ c_len+8(FP), BX
	ANDQ $31, BX
	SHRQ $4, BX
	TESTQ BX, BX
	JZ   tail_xf32
	LEAQ (DI)(R13*2), AX
	TESTQ R14, R14
	JNZ  oneinit_xf32
	VMOVUPS (DI), Z0
	VMOVUPS (DI)(R13*1), Z2
	VMOVUPS (DI)(R13*2), Z4
	VMOVUPS (AX)(R13*1), Z6
	JMP  onego_xf32

oneinit_xf32:
	VBROADCASTSS 0(R14), Z0
	VBROADCASTSS 4(R14), Z2
	VBROADCASTSS 8(R14), Z4
	VBROADCASTSS 12(R14), Z6

onego_xf32:
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ k+72(FP), CX
	TESTQ CX, CX
	JZ   onestore_xf32

onel_xf32:
	VMOVUPS (R12), Z8
	VBROADCASTSS (R11), Z10
	VBROADCASTSS (R11)(R8*1), Z11
	VBROADCASTSS (R11)(R8*2), Z12
	LEAQ (R11)(R8*2), AX
	VBROADCASTSS (AX)(R8*1), Z13
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z8, Z11, Z2
	VFMADD231PS Z8, Z12, Z4
	VFMADD231PS Z8, Z13, Z6
	ADDQ R9, R11
	ADDQ R10, R12
	DECQ CX
	JNZ  onel_xf32

onestore_xf32:
	LEAQ (DI)(R13*2), AX
	VMOVUPS Z0, (DI)
	VMOVUPS Z2, (DI)(R13*1)
	VMOVUPS Z4, (DI)(R13*2)
	VMOVUPS Z6, (AX)(R13*1)
	ADDQ $64, DI
	ADDQ $64, DX

tail_xf32:
	MOVQ c_len+8(FP), CX
	ANDQ $15, CX
	JZ   done_xf32
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1
	LEAQ (DI)(R13*2), AX
	TESTQ R14, R14
	JNZ  tailinit_xf32
	VMOVUPS.Z (DI), K1, Z0
	VMOVUPS.Z (DI)(R13*1), K1, Z2
	VMOVUPS.Z (DI)(R13*2), K1, Z4
	VMOVUPS.Z (AX)(R13*1), K1, Z6
	JMP  tailgo_xf32

tailinit_xf32:
	VBROADCASTSS 0(R14), Z0
	VBROADCASTSS 4(R14), Z2
	VBROADCASTSS 8(R14), Z4
	VBROADCASTSS 12(R14), Z6

tailgo_xf32:
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ k+72(FP), CX
	TESTQ CX, CX
	JZ   tailstore_xf32

taill_xf32:
	VMOVUPS.Z (R12), K1, Z8
	VBROADCASTSS (R11), Z10
	VBROADCASTSS (R11)(R8*1), Z11
	VBROADCASTSS (R11)(R8*2), Z12
	LEAQ (R11)(R8*2), AX
	VBROADCASTSS (AX)(R8*1), Z13
	VFMADD231PS Z8, Z10, Z0
	VFMADD231PS Z8, Z11, Z2
	VFMADD231PS Z8, Z12, Z4
	VFMADD231PS Z8, Z13, Z6
	ADDQ R9, R11
	ADDQ R10, R12
	DECQ CX
	JNZ  taill_xf32

tailstore_xf32:
	LEAQ (DI)(R13*2), AX
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z2, K1, (DI)(R13*1)
	VMOVUPS Z4, K1, (DI)(R13*2)
	VMOVUPS Z6, K1, (AX)(R13*1)

done_xf32:
	VZEROUPPER
	RET

// func axpy4F64AVX512(c []float64, ldc int, a []float64, sr, sl, k int, b []float64, ldb int, init *[4]float64)
// Four output rows at once: c[r·ldc + j] (+)= Σ_{l<k} a[r·sr + l·sl]·b[l·ldb + j] for r = 0…3 and j < len(c)
// (the rows r > 0 lie past len(c), within its capacity; the caller checks the bounds). Each load of b serves
// four rows. With init, row r starts from init[r] instead of from c. 16 columns at a time (eight
// accumulators), then 8, then the last len(c) mod 8 under a mask.
TEXT ·axpy4F64AVX512(SB), NOSPLIT, $0-120
	MOVQ c_base+0(FP), DI
	MOVQ ldc+24(FP), R13
	SHLQ $3, R13
	MOVQ a_base+32(FP), SI
	MOVQ sr+56(FP), R8
	SHLQ $3, R8
	MOVQ sl+64(FP), R9
	SHLQ $3, R9
	MOVQ b_base+80(FP), DX
	MOVQ ldb+104(FP), R10
	SHLQ $3, R10
	MOVQ init+112(FP), R14
	MOVQ c_len+8(FP), BX
	SHRQ $4, BX
	JZ   one_xf64

pair_xf64:
	LEAQ (DI)(R13*2), AX
	TESTQ R14, R14
	JNZ  pairinit_xf64
	VMOVUPD (DI), Z0
	VMOVUPD 64(DI), Z1
	VMOVUPD (DI)(R13*1), Z2
	VMOVUPD 64(DI)(R13*1), Z3
	VMOVUPD (DI)(R13*2), Z4
	VMOVUPD 64(DI)(R13*2), Z5
	VMOVUPD (AX)(R13*1), Z6
	VMOVUPD 64(AX)(R13*1), Z7
	JMP  pairgo_xf64

pairinit_xf64:
	VBROADCASTSD 0(R14), Z0
	VMOVAPD Z0, Z1
	VBROADCASTSD 8(R14), Z2
	VMOVAPD Z2, Z3
	VBROADCASTSD 16(R14), Z4
	VMOVAPD Z4, Z5
	VBROADCASTSD 24(R14), Z6
	VMOVAPD Z6, Z7

pairgo_xf64:
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ k+72(FP), CX
	TESTQ CX, CX
	JZ   pairstore_xf64

pairl_xf64:
	VMOVUPD (R12), Z8
	VMOVUPD 64(R12), Z9
	VBROADCASTSD (R11), Z10
	VBROADCASTSD (R11)(R8*1), Z11
	VBROADCASTSD (R11)(R8*2), Z12
	LEAQ (R11)(R8*2), AX
	VBROADCASTSD (AX)(R8*1), Z13
	VFMADD231PD Z8, Z10, Z0
	VFMADD231PD Z9, Z10, Z1
	VFMADD231PD Z8, Z11, Z2
	VFMADD231PD Z9, Z11, Z3
	VFMADD231PD Z8, Z12, Z4
	VFMADD231PD Z9, Z12, Z5
	VFMADD231PD Z8, Z13, Z6
	VFMADD231PD Z9, Z13, Z7
	ADDQ R9, R11
	ADDQ R10, R12
	DECQ CX
	JNZ  pairl_xf64

pairstore_xf64:
	LEAQ (DI)(R13*2), AX
	VMOVUPD Z0, (DI)
	VMOVUPD Z1, 64(DI)
	VMOVUPD Z2, (DI)(R13*1)
	VMOVUPD Z3, 64(DI)(R13*1)
	VMOVUPD Z4, (DI)(R13*2)
	VMOVUPD Z5, 64(DI)(R13*2)
	VMOVUPD Z6, (AX)(R13*1)
	VMOVUPD Z7, 64(AX)(R13*1)
	ADDQ $128, DI
	ADDQ $128, DX
	DECQ BX
	JNZ  pair_xf64

one_xf64:
	MOVQ c_len+8(FP), BX
	ANDQ $15, BX
	SHRQ $3, BX
	TESTQ BX, BX
	JZ   tail_xf64
	LEAQ (DI)(R13*2), AX
	TESTQ R14, R14
	JNZ  oneinit_xf64
	VMOVUPD (DI), Z0
	VMOVUPD (DI)(R13*1), Z2
	VMOVUPD (DI)(R13*2), Z4
	VMOVUPD (AX)(R13*1), Z6
	JMP  onego_xf64

oneinit_xf64:
	VBROADCASTSD 0(R14), Z0
	VBROADCASTSD 8(R14), Z2
	VBROADCASTSD 16(R14), Z4
	VBROADCASTSD 24(R14), Z6

onego_xf64:
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ k+72(FP), CX
	TESTQ CX, CX
	JZ   onestore_xf64

onel_xf64:
	VMOVUPD (R12), Z8
	VBROADCASTSD (R11), Z10
	VBROADCASTSD (R11)(R8*1), Z11
	VBROADCASTSD (R11)(R8*2), Z12
	LEAQ (R11)(R8*2), AX
	VBROADCASTSD (AX)(R8*1), Z13
	VFMADD231PD Z8, Z10, Z0
	VFMADD231PD Z8, Z11, Z2
	VFMADD231PD Z8, Z12, Z4
	VFMADD231PD Z8, Z13, Z6
	ADDQ R9, R11
	ADDQ R10, R12
	DECQ CX
	JNZ  onel_xf64

onestore_xf64:
	LEAQ (DI)(R13*2), AX
	VMOVUPD Z0, (DI)
	VMOVUPD Z2, (DI)(R13*1)
	VMOVUPD Z4, (DI)(R13*2)
	VMOVUPD Z6, (AX)(R13*1)
	ADDQ $64, DI
	ADDQ $64, DX

tail_xf64:
	MOVQ c_len+8(FP), CX
	ANDQ $7, CX
	JZ   done_xf64
	MOVQ $1, AX
	SHLQ CX, AX
	DECQ AX
	KMOVW AX, K1
	LEAQ (DI)(R13*2), AX
	TESTQ R14, R14
	JNZ  tailinit_xf64
	VMOVUPD.Z (DI), K1, Z0
	VMOVUPD.Z (DI)(R13*1), K1, Z2
	VMOVUPD.Z (DI)(R13*2), K1, Z4
	VMOVUPD.Z (AX)(R13*1), K1, Z6
	JMP  tailgo_xf64

tailinit_xf64:
	VBROADCASTSD 0(R14), Z0
	VBROADCASTSD 8(R14), Z2
	VBROADCASTSD 16(R14), Z4
	VBROADCASTSD 24(R14), Z6

tailgo_xf64:
	MOVQ SI, R11
	MOVQ DX, R12
	MOVQ k+72(FP), CX
	TESTQ CX, CX
	JZ   tailstore_xf64

taill_xf64:
	VMOVUPD.Z (R12), K1, Z8
	VBROADCASTSD (R11), Z10
	VBROADCASTSD (R11)(R8*1), Z11
	VBROADCASTSD (R11)(R8*2), Z12
	LEAQ (R11)(R8*2), AX
	VBROADCASTSD (AX)(R8*1), Z13
	VFMADD231PD Z8, Z10, Z0
	VFMADD231PD Z8, Z11, Z2
	VFMADD231PD Z8, Z12, Z4
	VFMADD231PD Z8, Z13, Z6
	ADDQ R9, R11
	ADDQ R10, R12
	DECQ CX
	JNZ  taill_xf64

tailstore_xf64:
	LEAQ (DI)(R13*2), AX
	VMOVUPD Z0, K1, (DI)
	VMOVUPD Z2, K1, (DI)(R13*1)
	VMOVUPD Z4, K1, (DI)(R13*2)
	VMOVUPD Z6, K1, (AX)(R13*1)

done_xf64:
	VZEROUPPER
	RET
