//go:build amd64 && !purego

#include "textflag.h"

// func addTo64AVX(dst, src *float64, n int)
// dst[i] += src[i] for n elements (a multiple of 8), 8 per pass.
TEXT ·addTo64AVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

addloop:
	CMPQ    CX, $8
	JL      adddone
	VMOVUPD (DI), Y0
	VMOVUPD 32(DI), Y1
	VADDPD  (SI), Y0, Y0
	VADDPD  32(SI), Y1, Y1
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	SUBQ    $8, CX
	JMP     addloop

adddone:
	VZEROUPPER
	RET

// func cvt64to32AVX(dst *float32, src *float64, n int)
// dst[i] = float32(src[i]) (round to nearest even) for n elements (a multiple of 8), 8 per pass.
TEXT ·cvt64to32AVX(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

cvtloop:
	CMPQ       CX, $8
	JL         cvtdone
	VCVTPD2PSY (SI), X0
	VCVTPD2PSY 32(SI), X1
	VMOVUPS    X0, (DI)
	VMOVUPS    X1, 16(DI)
	ADDQ       $32, DI
	ADDQ       $64, SI
	SUBQ       $8, CX
	JMP        cvtloop

cvtdone:
	VZEROUPPER
	RET

// func scale32to64AVX(dst *float64, src *float32, w float64, n int)
// dst[i] = float64(src[i])·w for n elements (a multiple of 8), 8 per pass.
TEXT ·scale32to64AVX(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	VBROADCASTSD w+16(FP), Y2
	MOVQ         n+24(FP), CX

scaleloop:
	CMPQ       CX, $8
	JL         scaledone
	VCVTPS2PD  (SI), Y0
	VCVTPS2PD  16(SI), Y1
	VMULPD     Y2, Y0, Y0
	VMULPD     Y2, Y1, Y1
	VMOVUPD    Y0, (DI)
	VMOVUPD    Y1, 32(DI)
	ADDQ       $64, DI
	ADDQ       $32, SI
	SUBQ       $8, CX
	JMP        scaleloop

scaledone:
	VZEROUPPER
	RET

// func scale64AVX(dst, src *float64, w float64, n int)
// dst[i] = src[i]·w for n elements (a multiple of 8), 8 per pass.
TEXT ·scale64AVX(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	VBROADCASTSD w+16(FP), Y2
	MOVQ         n+24(FP), CX

scale64loop:
	CMPQ    CX, $8
	JL      scale64done
	VMULPD  (SI), Y2, Y0
	VMULPD  32(SI), Y2, Y1
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	SUBQ    $8, CX
	JMP     scale64loop

scale64done:
	VZEROUPPER
	RET
