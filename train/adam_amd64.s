//go:build amd64 && !purego

#include "textflag.h"

// func adamAVX32(p, gr, m, v *float32, n int, c *[8]float32)
// One Adam step over n elements (n a multiple of 8), 8 per pass, with the operations of adamUpdate in
// its order (no fused multiply-adds): c = scale, decay, 1−β1, β2, 1−β2, √(1−β2ᵗ), ε, step size.
TEXT ·adamAVX32(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ gr+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VBROADCASTSS 12(AX), Y11
	VBROADCASTSS 16(AX), Y12
	VBROADCASTSS 20(AX), Y13
	VBROADCASTSS 24(AX), Y14
	VBROADCASTSS 28(AX), Y15

loop32:
	CMPQ CX, $8
	JL   done32
	VMOVUPS (SI), Y0
	VMULPS  Y8, Y0, Y0  // gi = g·scale
	VMOVUPS (DI), Y1
	VMULPS  Y9, Y1, Y1  // pi = p·decay
	VMOVUPS (R8), Y2
	VSUBPS  Y2, Y0, Y3  // gi − m
	VMULPS  Y10, Y3, Y3 // (1−β1)·(gi − m)
	VADDPS  Y3, Y2, Y2  // mi = m + …
	VMOVUPS (R9), Y4
	VMULPS  Y11, Y4, Y4 // β2·v
	VMULPS  Y12, Y0, Y5 // (1−β2)·gi
	VMULPS  Y0, Y5, Y5  // ·gi
	VADDPS  Y5, Y4, Y4  // vi
	VMOVUPS Y2, (R8)
	VMOVUPS Y4, (R9)
	VSQRTPS Y4, Y6
	VDIVPS  Y13, Y6, Y6 // √vi / √(1−β2ᵗ)
	VADDPS  Y14, Y6, Y6 // + ε
	VDIVPS  Y6, Y2, Y7  // mi / denom
	VMULPS  Y15, Y7, Y7 // step size · …
	VSUBPS  Y7, Y1, Y1  // pi − …
	VMOVUPS Y1, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, R8
	ADDQ    $32, R9
	SUBQ    $8, CX
	JMP     loop32

done32:
	VZEROUPPER
	RET

// func adamAVX64(p, gr, m, v *float64, n int, c *[8]float64)
// adamAVX32 in float64, 4 elements per pass (n a multiple of 4).
TEXT ·adamAVX64(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), DI
	MOVQ gr+8(FP), SI
	MOVQ m+16(FP), R8
	MOVQ v+24(FP), R9
	MOVQ n+32(FP), CX
	MOVQ c+40(FP), AX
	VBROADCASTSD 0(AX), Y8
	VBROADCASTSD 8(AX), Y9
	VBROADCASTSD 16(AX), Y10
	VBROADCASTSD 24(AX), Y11
	VBROADCASTSD 32(AX), Y12
	VBROADCASTSD 40(AX), Y13
	VBROADCASTSD 48(AX), Y14
	VBROADCASTSD 56(AX), Y15

loop64:
	CMPQ CX, $4
	JL   done64
	VMOVUPD (SI), Y0
	VMULPD  Y8, Y0, Y0
	VMOVUPD (DI), Y1
	VMULPD  Y9, Y1, Y1
	VMOVUPD (R8), Y2
	VSUBPD  Y2, Y0, Y3
	VMULPD  Y10, Y3, Y3
	VADDPD  Y3, Y2, Y2
	VMOVUPD (R9), Y4
	VMULPD  Y11, Y4, Y4
	VMULPD  Y12, Y0, Y5
	VMULPD  Y0, Y5, Y5
	VADDPD  Y5, Y4, Y4
	VMOVUPD Y2, (R8)
	VMOVUPD Y4, (R9)
	VSQRTPD Y4, Y6
	VDIVPD  Y13, Y6, Y6
	VADDPD  Y14, Y6, Y6
	VDIVPD  Y6, Y2, Y7
	VMULPD  Y15, Y7, Y7
	VSUBPD  Y7, Y1, Y1
	VMOVUPD Y1, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, R8
	ADDQ    $32, R9
	SUBQ    $4, CX
	JMP     loop64

done64:
	VZEROUPPER
	RET
