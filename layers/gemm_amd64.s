//go:build amd64 && !purego

#include "textflag.h"

// func axpyRowsF32(c, a, b []float32, ldb int)
// c[j] += Σ_l a[l]·b[l·ldb + j] for j < len(c)&^7 (k = len(a) rows of b). 32 columns at a time with four
// independent accumulators, then 8 at a time.
TEXT ·axpyRowsF32(SB), NOSPLIT, $0-80
	MOVQ c_base+0(FP), DI
	MOVQ c_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ a_len+32(FP), R8
	MOVQ b_base+48(FP), DX
	MOVQ ldb+72(FP), R9
	SHLQ $2, R9
	MOVQ CX, BX
	SHRQ $5, BX              // blocks of 32
	ANDQ $31, CX
	SHRQ $3, CX              // then blocks of 8
	TESTQ BX, BX
	JZ   single32

quad32:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      quadstore32

quadl32:
	VBROADCASTSS (R11), Y4
	VFMADD231PS  (R10), Y4, Y0
	VFMADD231PS  32(R10), Y4, Y1
	VFMADD231PS  64(R10), Y4, Y2
	VFMADD231PS  96(R10), Y4, Y3
	ADDQ         $4, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          quadl32

quadstore32:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, DI
	ADDQ    $128, DX
	DECQ    BX
	JNZ     quad32

single32:
	TESTQ CX, CX
	JZ    done32

one32:
	VMOVUPS (DI), Y0
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      onestore32

onel32:
	VBROADCASTSS (R11), Y4
	VFMADD231PS  (R10), Y4, Y0
	ADDQ         $4, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          onel32

onestore32:
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, DX
	DECQ    CX
	JNZ     one32

done32:
	VZEROUPPER
	RET

// func axpyRowsF64(c, a, b []float64, ldb int)
// As axpyRowsF32 for float64: 16 columns at a time, then 4; handles len(c)&^3.
TEXT ·axpyRowsF64(SB), NOSPLIT, $0-80
	MOVQ c_base+0(FP), DI
	MOVQ c_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ a_len+32(FP), R8
	MOVQ b_base+48(FP), DX
	MOVQ ldb+72(FP), R9
	SHLQ $3, R9
	MOVQ CX, BX
	SHRQ $4, BX
	ANDQ $15, CX
	SHRQ $2, CX
	TESTQ BX, BX
	JZ   single64

quad64:
	VMOVUPD (DI), Y0
	VMOVUPD 32(DI), Y1
	VMOVUPD 64(DI), Y2
	VMOVUPD 96(DI), Y3
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      quadstore64

quadl64:
	VBROADCASTSD (R11), Y4
	VFMADD231PD  (R10), Y4, Y0
	VFMADD231PD  32(R10), Y4, Y1
	VFMADD231PD  64(R10), Y4, Y2
	VFMADD231PD  96(R10), Y4, Y3
	ADDQ         $8, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          quadl64

quadstore64:
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, 64(DI)
	VMOVUPD Y3, 96(DI)
	ADDQ    $128, DI
	ADDQ    $128, DX
	DECQ    BX
	JNZ     quad64

single64:
	TESTQ CX, CX
	JZ    done64

one64:
	VMOVUPD (DI), Y0
	MOVQ    DX, R10
	MOVQ    SI, R11
	MOVQ    R8, R12
	TESTQ   R12, R12
	JZ      onestore64

onel64:
	VBROADCASTSD (R11), Y4
	VFMADD231PD  (R10), Y4, Y0
	ADDQ         $8, R11
	ADDQ         R9, R10
	DECQ         R12
	JNZ          onel64

onestore64:
	VMOVUPD Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, DX
	DECQ    CX
	JNZ     one64

done64:
	VZEROUPPER
	RET

// func dotF32(a, b []float32) float32
// Σ a[t]·b[t] over t < len(a)&^7, four accumulators over 32 elements at a time.
TEXT ·dotF32(SB), NOSPLIT, $0-52
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   CX, BX
	SHRQ   $5, BX
	ANDQ   $31, CX
	SHRQ   $3, CX
	TESTQ  BX, BX
	JZ     dsingle32

dquad32:
	VMOVUPS     (SI), Y4
	VFMADD231PS (DX), Y4, Y0
	VMOVUPS     32(SI), Y5
	VFMADD231PS 32(DX), Y5, Y1
	VMOVUPS     64(SI), Y6
	VFMADD231PS 64(DX), Y6, Y2
	VMOVUPS     96(SI), Y7
	VFMADD231PS 96(DX), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DX
	DECQ        BX
	JNZ         dquad32

dsingle32:
	TESTQ CX, CX
	JZ    dsum32

done1_32:
	VMOVUPS     (SI), Y4
	VFMADD231PS (DX), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DX
	DECQ        CX
	JNZ         done1_32

dsum32:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+48(FP)
	RET

// func dotF64(a, b []float64) float64
TEXT ·dotF64(SB), NOSPLIT, $0-56
	MOVQ   a_base+0(FP), SI
	MOVQ   a_len+8(FP), CX
	MOVQ   b_base+24(FP), DX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	MOVQ   CX, BX
	SHRQ   $4, BX
	ANDQ   $15, CX
	SHRQ   $2, CX
	TESTQ  BX, BX
	JZ     dsingle64

dquad64:
	VMOVUPD     (SI), Y4
	VFMADD231PD (DX), Y4, Y0
	VMOVUPD     32(SI), Y5
	VFMADD231PD 32(DX), Y5, Y1
	VMOVUPD     64(SI), Y6
	VFMADD231PD 64(DX), Y6, Y2
	VMOVUPD     96(SI), Y7
	VFMADD231PD 96(DX), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DX
	DECQ        BX
	JNZ         dquad64

dsingle64:
	TESTQ CX, CX
	JZ    dsum64

done1_64:
	VMOVUPD     (SI), Y4
	VFMADD231PD (DX), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DX
	DECQ        CX
	JNZ         done1_64

dsum64:
	VADDPD       Y1, Y0, Y0
	VADDPD       Y3, Y2, Y2
	VADDPD       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD       X1, X0, X0
	VHADDPD      X0, X0, X0
	VZEROUPPER
	MOVSD        X0, ret+48(FP)
	RET
