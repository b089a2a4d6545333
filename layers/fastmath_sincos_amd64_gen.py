"""Writes fastmath_sincos_amd64.s: sin and cos of a slice (fastmath_sincos.go), AVX-512 and AVX2, float32 and
float64. Run: python3 fastmath_sincos_amd64_gen.py > fastmath_sincos_amd64.s

Per vector: k = x·2/π rounded to the nearest integer by adding 1.5·2^(mantissa bits) (whose low mantissa bits
are then k in two's complement: the quadrant), r = x − k·π/2 with π/2 in three parts (fused multiply-adds),
the Taylor series of sin r and cos r in r² by Horner, the quadrant's swap and signs as bit operations. The
kernel also reports whether any element was outside the range it is accurate for (|x| ≥ limit, NaN): the
caller recomputes those with math.Sincos.
"""
import math
import struct

PIO2 = {  # three-part π/2: the first two with short mantissas, so that k times them is exact
    'F64': (2 * 7.85398125648498535156e-1, 2 * 3.77489470793079817668e-8, 2 * 2.69515142907905952645e-15),
    'F32': (1.5703125, 4.837512969970703125e-4, 7.549789948768648e-8),
}
LIMIT = {'F64': float(1 << 20), 'F32': float(1 << 13)}
SIN = {  # the coefficients of r², r⁴, … in sin r / r
    'F64': [(-1) ** n / math.factorial(2 * n + 1) for n in range(1, 9)],
    'F32': [(-1) ** n / math.factorial(2 * n + 1) for n in range(1, 5)],
}
COS = {  # of r², r⁴, … in cos r
    'F64': [(-1) ** n / math.factorial(2 * n) for n in range(1, 10)],
    'F32': [(-1) ** n / math.factorial(2 * n) for n in range(1, 6)],
}


def consts(t):
    f32 = t == 'F32'
    c = {'twoopi': 2 / math.pi, 'magic': 1.5 * 2 ** (23 if f32 else 52), 'one': 1.0, 'limit': LIMIT[t]}
    for i, v in enumerate(PIO2[t]):
        c[f'p{i}'] = v
    for i, v in enumerate(SIN[t]):
        c[f's{i}'] = v
    for i, v in enumerate(COS[t]):
        c[f'c{i}'] = v
    out = []
    es = 4 if f32 else 8
    for nm, v in c.items():
        sym = f"sincos{nm}{t}<>"
        for k in range(64 // es):
            if f32:
                out.append(f"DATA {sym}+{k*es}(SB)/4, ${struct.unpack('<I', struct.pack('<f', v))[0]:#x}")
            else:
                out.append(f"DATA {sym}+{k*es}(SB)/8, ${struct.unpack('<Q', struct.pack('<d', v))[0]:#x}")
        out.append(f"GLOBL {sym}(SB), RODATA|NOPTR, $64")
    # integer masks: the absolute value, 1, 2, the sign bit
    for nm, v in (('abs', (1 << (es * 8 - 1)) - 1), ('bit1', 1), ('bit2', 2), ('sign', 1 << (es * 8 - 1))):
        sym = f"sincos{nm}{t}<>"
        for k in range(64 // es):
            out.append(f"DATA {sym}+{k*es}(SB)/{es}, ${v:#x}")
        out.append(f"GLOBL {sym}(SB), RODATA|NOPTR, $64")
    return "\n".join(out)


def gen(t, isa):
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    Q = 'D' if f32 else 'Q'  # integer element size
    es = 4 if f32 else 8
    z = isa == 'AVX512'
    R = 'Z' if z else 'Y'
    w = (64 if z else 32) // es
    ety = 'float32' if f32 else 'float64'
    name = f"sincos{t}{isa}"
    pand = f"VPAND{Q}" if z else "VPAND"
    pxor = f"VPXOR{Q}" if z else "VPXOR"
    c = lambda nm: f"sincos{nm}{t}<>(SB)"
    L = []
    a = L.append
    a(f"// func {name}(x, s, c []{ety}) (outside bool)")
    a(f"// s[i], c[i] = sin x[i], cos x[i] for i < len(x) rounded down to a multiple of {w}.")
    a(f"TEXT ·{name}(SB), NOSPLIT, $0-73")
    a("\tMOVQ x_base+0(FP), SI")
    a("\tMOVQ x_len+8(FP), CX")
    a("\tMOVQ s_base+24(FP), DI")
    a("\tMOVQ c_base+48(FP), DX")
    a(f"\tSHRQ ${int(math.log2(w))}, CX")
    if z:
        a("\tKXORW K2, K2, K2")
    else:
        a(f"\tVXORP{P[1]} Y15, Y15, Y15")
    a(f"\t{pxor} {R}14, {R}14, {R}14")  # zero
    a("\tTESTQ CX, CX")
    a(f"\tJZ done{name}")
    a(f"loop{name}:")
    x = lambda n: f"{R}{n}"
    a(f"\tVMOVUP{P[1]} (SI), {x(0)}")
    # range: !(|x| < limit), NaN included
    a(f"\t{pand} {c('abs')}, {x(0)}, {x(1)}")
    if z:
        a(f"\tVCMP{P} $5, {c('limit')}, {x(1)}, K1")
        a("\tKORW K1, K2, K2")
    else:
        a(f"\tVCMP{P} $5, {c('limit')}, {x(1)}, {x(1)}")
        a(f"\tVORP{P[1]} {x(1)}, Y15, Y15")
    # kb = x·2/π + magic; k = kb − magic
    a(f"\tVMUL{P} {c('twoopi')}, {x(0)}, {x(2)}")
    a(f"\tVADD{P} {c('magic')}, {x(2)}, {x(2)}")
    a(f"\tVSUB{P} {c('magic')}, {x(2)}, {x(3)}")
    # r = x − k·p0 − k·p1 − k·p2
    a(f"\tVMOVAP{P[1]} {x(0)}, {x(4)}")
    for i in range(3):
        a(f"\tVFNMADD231{P} {c(f'p{i}')}, {x(3)}, {x(4)}")
    a(f"\tVMUL{P} {x(4)}, {x(4)}, {x(5)}")  # r²
    # sin: q = (((s_n r² + s_{n−1}) r² + …) r² + s_0) r² + 1; sin r = r·q
    ns = len(SIN[t])
    a(f"\tVMOVUP{P[1]} {c(f's{ns-1}')}, {x(6)}")
    for i in range(ns - 2, -1, -1):
        a(f"\tVFMADD213{P} {c(f's{i}')}, {x(5)}, {x(6)}")
    a(f"\tVFMADD213{P} {c('one')}, {x(5)}, {x(6)}")
    a(f"\tVMUL{P} {x(4)}, {x(6)}, {x(6)}")
    nc = len(COS[t])
    a(f"\tVMOVUP{P[1]} {c(f'c{nc-1}')}, {x(7)}")
    for i in range(nc - 2, -1, -1):
        a(f"\tVFMADD213{P} {c(f'c{i}')}, {x(5)}, {x(7)}")
    a(f"\tVFMADD213{P} {c('one')}, {x(5)}, {x(7)}")
    # odd = −(kb & 1), neg = (kb & 2) << (bits − 2)
    a(f"\t{pand} {c('bit1')}, {x(2)}, {x(8)}")
    a(f"\tVPSUB{Q} {x(8)}, {x(14)}, {x(8)}")
    a(f"\t{pand} {c('bit2')}, {x(2)}, {x(9)}")
    a(f"\tVPSLL{Q} ${es*8-2}, {x(9)}, {x(9)}")
    # d = s ^ c; s' = s ^ (d & odd) ^ neg; c' = c ^ ((d ^ sign) & odd) ^ neg
    a(f"\t{pxor} {x(6)}, {x(7)}, {x(10)}")
    a(f"\t{pand} {x(8)}, {x(10)}, {x(11)}")
    a(f"\t{pxor} {x(11)}, {x(6)}, {x(6)}")
    a(f"\t{pxor} {c('sign')}, {x(10)}, {x(10)}")
    a(f"\t{pand} {x(8)}, {x(10)}, {x(10)}")
    a(f"\t{pxor} {x(10)}, {x(7)}, {x(7)}")
    a(f"\t{pxor} {x(9)}, {x(6)}, {x(6)}")
    a(f"\t{pxor} {x(9)}, {x(7)}, {x(7)}")
    a(f"\tVMOVUP{P[1]} {x(6)}, (DI)")
    a(f"\tVMOVUP{P[1]} {x(7)}, (DX)")
    vb = w * es
    a(f"\tADDQ ${vb}, SI")
    a(f"\tADDQ ${vb}, DI")
    a(f"\tADDQ ${vb}, DX")
    a("\tDECQ CX")
    a(f"\tJNZ loop{name}")
    a(f"done{name}:")
    if z:
        a("\tKMOVW K2, AX")
    else:
        a(f"\tVMOVMSKP{P[1]} Y15, AX")
    a("\tTESTQ AX, AX")
    a("\tSETNE outside+72(FP)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)


if __name__ == '__main__':
    print("// Code generated by fastmath_sincos_amd64_gen.py; DO NOT EDIT.\n")
    print("//go:build amd64 && !purego\n")
    print('#include "textflag.h"\n')
    for t in ('F32', 'F64'):
        print(consts(t))
    print()
    for isa in ('AVX512', 'AVX2'):
        for t in ('F32', 'F64'):
            print(gen(t, isa))
            print()
