"""Writes ode_fused_lanes_amd64.s: the 16-point complex FFTs across sample lanes of the fused ODE op
(ode_fused_lanes.go) and the radix-2 butterflies that make 32-point ones of them, AVX-512 and AVX2, float32
and float64. Run: python3 ode_fused_lanes_amd64_gen.py > ode_fused_lanes_amd64.s

Layout (laneN = 32 samples): a point is 32 real parts then 32 imaginary parts, contiguous; the 16 points of
one transform lie `stride` bytes apart; `count` transforms lie `step` bytes apart. Every vector instruction
works on one chunk of lanes; the code is straight-line per chunk (each chunk is an independent transform).

Forward (decimation in time, radix 4×4, in place): for n2 = 0…3, the 4-point DFT of the points n2 + 4n1,
twiddled by W^{n2·k1} (W = e^{−2πi/16}) and written back to n2 + 4k1; then for k1 = 0…3 the 4-point DFT of
the points 4k1 + n2, written back to 4k1 + k2, which then holds X[k1 + 4k2] (digit-reversed order).
Inverse (the transpose, since the DFT matrix is symmetric): digit-reversed input, the second grouping's
inverse 4-point DFTs first, the conjugate twiddles, then the first grouping's; natural-order output,
unnormalised.
"""
import math

LANES = 32


def shape(t, isa):
    """A kernel's element and vector parameters for dtype t ('F32', 'F64') and isa ('AVX512', 'AVX2'):
    f32, the packed suffix P, the broadcast BC, the element bytes es, the vector bytes vb, the register prefix R,
    the vectors per lane vector (chunks), the offset of the imaginary parts (imoff) and the Go element type."""
    f32 = t == 'F32'
    es = 4 if f32 else 8
    vb = 64 if isa == 'AVX512' else 32
    return (f32, 'PS' if f32 else 'PD', 'VBROADCASTSS' if f32 else 'VBROADCASTSD', es, vb,
            'Z' if isa == 'AVX512' else 'Y', LANES * es // vb, LANES * es, 'float32' if f32 else 'float64')


def gen(t, isa, inverse):
    f32, P, BC, es, vb, R, chunks, imoff, ety = shape(t, isa)
    name = f"odeFFT16{'Inv' if inverse else 'Fwd'}{t}{isa}"
    L = []
    a = L.append
    a(f"// func {name}(p *{'float32' if f32 else 'float64'}, stride, count, step int)")
    a(f"TEXT ·{name}(SB), NOSPLIT, $0-32")
    a("\tMOVQ p+0(FP), AX")
    a("\tMOVQ stride+8(FP), SI")
    a("\tMOVQ count+16(FP), CX")
    a("\tMOVQ step+24(FP), DX")
    a("\tLEAQ (SI)(SI*2), DI")  # 3·stride
    a("\tTESTQ CX, CX")
    a(f"\tJZ done{name}")
    a(f"loop{name}:")
    a("\tLEAQ (AX)(SI*4), R8")   # 4·stride
    a("\tLEAQ (AX)(SI*8), R9")   # 8·stride
    a("\tLEAQ (R8)(SI*8), R10")  # 12·stride
    bases = ['AX', 'R8', 'R9', 'R10']
    idx = ['', '(SI*1)', '(SI*2)', '(DI*1)']

    def addr(pos, off):
        # position pos = 4·q + r: base q plus r·stride
        q, r = divmod(pos, 4)
        o = f"{off}" if off else ""
        return f"{o}({bases[q]}){idx[r]}"

    cst = {'c1': math.cos(math.pi / 8), 's1': math.sin(math.pi / 8), 'h': math.sqrt(0.5)}

    def cref(nm):
        return f"odeFFT{nm}{t}<>(SB)"

    def dft4(regs, inv):
        # regs: list of 4 (re, im) register numbers; result in place (out k in regs[k]), temps from free
        (a0r, a0i), (a1r, a1i), (a2r, a2i), (a3r, a3i) = regs
        x = lambda n: f"{R}{n}"
        T0r, T0i, T2r, T2i = 8, 9, 10, 11
        a(f"\tVADD{P} {x(a2r)}, {x(a0r)}, {x(T0r)}")
        a(f"\tVADD{P} {x(a2i)}, {x(a0i)}, {x(T0i)}")
        a(f"\tVSUB{P} {x(a2r)}, {x(a0r)}, {x(a0r)}")  # t1 in a0
        a(f"\tVSUB{P} {x(a2i)}, {x(a0i)}, {x(a0i)}")
        a(f"\tVADD{P} {x(a3r)}, {x(a1r)}, {x(T2r)}")
        a(f"\tVADD{P} {x(a3i)}, {x(a1i)}, {x(T2i)}")
        a(f"\tVSUB{P} {x(a3r)}, {x(a1r)}, {x(a1r)}")  # d in a1
        a(f"\tVSUB{P} {x(a3i)}, {x(a1i)}, {x(a1i)}")
        # out0 = t0 + t2 -> a2 (free now); out2 = t0 − t2 -> T0
        a(f"\tVADD{P} {x(T2r)}, {x(T0r)}, {x(a2r)}")
        a(f"\tVADD{P} {x(T2i)}, {x(T0i)}, {x(a2i)}")
        a(f"\tVSUB{P} {x(T2r)}, {x(T0r)}, {x(T0r)}")
        a(f"\tVSUB{P} {x(T2i)}, {x(T0i)}, {x(T0i)}")
        # forward: out1 = (t1r + di, t1i − dr), out3 = (t1r − di, t1i + dr); inverse swaps out1 and out3
        a(f"\tVADD{P} {x(a1i)}, {x(a0r)}, {x(a3r)}")  # t1r + di
        a(f"\tVSUB{P} {x(a1r)}, {x(a0i)}, {x(a3i)}")  # t1i − dr
        a(f"\tVSUB{P} {x(a1i)}, {x(a0r)}, {x(T2r)}")  # t1r − di
        a(f"\tVADD{P} {x(a1r)}, {x(a0i)}, {x(T2i)}")  # t1i + dr
        p1, p3 = (a3r, a3i), (T2r, T2i)
        if inv:
            p1, p3 = p3, p1
        # return (register pairs of) out0..out3
        return [(a2r, a2i), p1, (T0r, T0i), p3]

    def twiddle(reg, e, inv):
        # multiply (r, i) by W^e, W = e^{∓2πi/16}
        e %= 16
        if e == 0:
            return reg
        r, i = reg
        x = lambda n: f"{R}{n}"
        ang = -2 * math.pi * e / 16
        if inv:
            ang = -ang
        c, s = math.cos(ang), math.sin(ang)
        if abs(c) < 1e-12:  # ±i: (r, i)·(i s) = (−s i, s r)
            if s > 0:  # multiply by +i: (−i, r)
                zero(12)
                a(f"\tVSUB{P} {x(i)}, {x(12)}, {x(12)}")
                return (12, r)
            zero(12)
            a(f"\tVSUB{P} {x(r)}, {x(12)}, {x(12)}")
            return (i, 12)

        def cname(v):
            for nm, val in cst.items():
                if abs(v - val) < 1e-12:
                    return cref(nm), False
                if abs(v + val) < 1e-12:
                    return cref(nm), True
            raise ValueError(v)

        cn, cneg = cname(c)
        sn, sneg = cname(s)
        # re = r c − i s, im = r s + i c, with c = ±cn, s = ±sn
        a(f"\tVMUL{P} {sn}, {x(i)}, {x(12)}")  # 12 = i·|s|
        a(f"\tVMUL{P} {sn}, {x(r)}, {x(13)}")  # 13 = r·|s|
        # re = ±(r·|c|) ∓ 12
        if not cneg and not sneg:
            a(f"\tVFMSUB231{P} {cn}, {x(r)}, {x(12)}")  # 12 = r|c| − i|s|
            a(f"\tVFMADD231{P} {cn}, {x(i)}, {x(13)}")  # 13 = i|c| + r|s|
        elif not cneg and sneg:
            a(f"\tVFMADD231{P} {cn}, {x(r)}, {x(12)}")  # r|c| + i|s|
            a(f"\tVFMSUB231{P} {cn}, {x(i)}, {x(13)}")  # i|c| − r|s|
        elif cneg and not sneg:
            a(f"\tVFNMSUB231{P} {cn}, {x(r)}, {x(12)}")  # −r|c| − i|s|
            a(f"\tVFNMADD231{P} {cn}, {x(i)}, {x(13)}")  # −i|c| + r|s|
        else:
            a(f"\tVFNMADD231{P} {cn}, {x(r)}, {x(12)}")  # −r|c| + i|s|
            a(f"\tVFNMSUB231{P} {cn}, {x(i)}, {x(13)}")  # −i|c| − r|s|
        return (12, 13)

    def zero(n):
        if isa == 'AVX512':
            a(f"\tVPXORD Z{n}, Z{n}, Z{n}")
        else:
            a(f"\tVXORP{P[1]} Y{n}, Y{n}, Y{n}")

    def load(pos, off, reg):
        a(f"\tVMOVUP{P[1]} {addr(pos, off)}, {R}{reg[0]}")
        a(f"\tVMOVUP{P[1]} {addr(pos, off + imoff)}, {R}{reg[1]}")

    def store(pos, off, reg):
        a(f"\tVMOVUP{P[1]} {R}{reg[0]}, {addr(pos, off)}")
        a(f"\tVMOVUP{P[1]} {R}{reg[1]}, {addr(pos, off + imoff)}")

    regs = [(0, 1), (2, 3), (4, 5), (6, 7)]
    for ch in range(chunks):
        off = ch * vb
        if not inverse:
            for n2 in range(4):
                for n1 in range(4):
                    load(n2 + 4 * n1, off, regs[n1])
                outs = dft4(regs, False)
                for k1 in range(4):
                    store(n2 + 4 * k1, off, twiddle(outs[k1], n2 * k1, False))
            for k1 in range(4):
                for n2 in range(4):
                    load(4 * k1 + n2, off, regs[n2])
                outs = dft4(regs, False)
                for k2 in range(4):
                    store(4 * k1 + k2, off, outs[k2])
        else:
            for k1 in range(4):
                for n2 in range(4):
                    load(4 * k1 + n2, off, regs[n2])
                outs = dft4(regs, True)
                for k2 in range(4):
                    store(4 * k1 + k2, off, twiddle(outs[k2], k1 * k2, True))
            for n2 in range(4):
                for n1 in range(4):
                    load(n2 + 4 * n1, off, regs[n1])
                outs = dft4(regs, True)
                for k1 in range(4):
                    store(n2 + 4 * k1, off, outs[k1])
    a("\tADDQ DX, AX")
    a("\tDECQ CX")
    a(f"\tJNZ loop{name}")
    a(f"done{name}:")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)


def harmonic(t, isa):
    """sk = sp·c1 + cp·s1, ck = cp·c1 − sp·s1 over n sites of laneN lanes, and sum[l] = Σ_sites ck[·, l]."""
    f32, P, BC, es, vb, R, chunks, imoff, ety = shape(t, isa)
    name = f"odeHarmonic{t}{isa}"
    L = []
    a = L.append
    a(f"// func {name}(sp, cp, s1, c1, sk, ck *{ety}, n int, sum *{ety})")
    a(f"TEXT ·{name}(SB), NOSPLIT, $0-64")
    for i, (nm, reg) in enumerate((('sp', 'AX'), ('cp', 'BX'), ('s1', 'DX'), ('c1', 'SI'), ('sk', 'DI'), ('ck', 'R8'))):
        a(f"\tMOVQ {nm}+{8*i}(FP), {reg}")
    a("\tMOVQ n+48(FP), CX")
    acc = [8 + c for c in range(chunks)]
    for r in acc:
        a(f"\tVXORP{P[1]} {R}{r}, {R}{r}, {R}{r}" if isa == 'AVX2' else f"\tVPXORQ {R}{r}, {R}{r}, {R}{r}")
    a("\tTESTQ CX, CX")
    a(f"\tJZ done{name}")
    a(f"loop{name}:")
    for ch in range(chunks):
        o = ch * vb
        a(f"\tVMOVUP{P[1]} {o}(AX), {R}0")  # sp
        a(f"\tVMOVUP{P[1]} {o}(BX), {R}1")  # cp
        a(f"\tVMOVUP{P[1]} {o}(DX), {R}2")  # s1
        a(f"\tVMOVUP{P[1]} {o}(SI), {R}3")  # c1
        a(f"\tVMUL{P} {R}3, {R}0, {R}4")  # sp·c1
        a(f"\tVFMADD231{P} {R}2, {R}1, {R}4")  # + cp·s1
        a(f"\tVMUL{P} {R}3, {R}1, {R}5")  # cp·c1
        a(f"\tVFNMADD231{P} {R}2, {R}0, {R}5")  # − sp·s1
        a(f"\tVMOVUP{P[1]} {R}4, {o}(DI)")
        a(f"\tVMOVUP{P[1]} {R}5, {o}(R8)")
        a(f"\tVADD{P} {R}5, {R}{acc[ch]}, {R}{acc[ch]}")
    step = LANES * es
    for reg in ('AX', 'BX', 'DX', 'SI', 'DI', 'R8'):
        a(f"\tADDQ ${step}, {reg}")
    a("\tDECQ CX")
    a(f"\tJNZ loop{name}")
    a(f"done{name}:")
    a("\tMOVQ sum+56(FP), AX")
    for ch in range(chunks):
        a(f"\tVMOVUP{P[1]} {R}{acc[ch]}, {ch*vb}(AX)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)


def cmac(t, isa):
    """dst[site] = Σ_{q<n} coef_q[site] ⊙ src_q[site] (complex; coef a scalar per site, src and dst lane vectors)."""
    f32, P, BC, es, vb, R, chunks, imoff, ety = shape(t, isa)
    group = 4 if isa == 'AVX2' else chunks  # accumulators per pass: 2 per chunk
    name = f"odeCMac{t}{isa}"
    L = []
    a = L.append
    a(f"// func {name}(dst, src, coef *{ety}, n, srcStride, coefStride, sites, siteStride int)")
    a(f"TEXT ·{name}(SB), NOSPLIT, $0-64")
    a("\tMOVQ dst+0(FP), DI")
    a("\tMOVQ src+8(FP), SI")
    a("\tMOVQ coef+16(FP), DX")
    a("\tMOVQ n+24(FP), BX")
    a("\tMOVQ srcStride+32(FP), R8")
    a("\tMOVQ coefStride+40(FP), R9")
    a("\tMOVQ sites+48(FP), CX")
    a("\tMOVQ siteStride+56(FP), R13")
    a("\tTESTQ CX, CX")
    a(f"\tJZ done{name}")
    a(f"site{name}:")
    for g0 in range(0, chunks, group):
        chs = list(range(g0, min(chunks, g0 + group)))
        accR = {ch: 4 + 2 * i for i, ch in enumerate(chs)}
        accI = {ch: 5 + 2 * i for i, ch in enumerate(chs)}
        for ch in chs:
            for r in (accR[ch], accI[ch]):
                a(f"\tVXORP{P[1]} {R}{r}, {R}{r}, {R}{r}" if isa == 'AVX2' else f"\tVPXORQ {R}{r}, {R}{r}, {R}{r}")
        a("\tMOVQ SI, R10")
        a("\tMOVQ DX, R11")
        a("\tMOVQ BX, R12")
        lbl = f"q{g0}{name}"
        a(f"{lbl}:")
        a(f"\t{BC} (R11), {R}0")
        a(f"\t{BC} {es}(R11), {R}1")
        for ch in chs:
            o = ch * vb
            a(f"\tVMOVUP{P[1]} {o}(R10), {R}2")
            a(f"\tVMOVUP{P[1]} {o + imoff}(R10), {R}3")
            a(f"\tVFMADD231{P} {R}0, {R}2, {R}{accR[ch]}")
            a(f"\tVFNMADD231{P} {R}1, {R}3, {R}{accR[ch]}")
            a(f"\tVFMADD231{P} {R}0, {R}3, {R}{accI[ch]}")
            a(f"\tVFMADD231{P} {R}1, {R}2, {R}{accI[ch]}")
        a("\tADDQ R8, R10")
        a("\tADDQ R9, R11")
        a("\tDECQ R12")
        a(f"\tJNZ {lbl}")
        for ch in chs:
            a(f"\tVMOVUP{P[1]} {R}{accR[ch]}, {ch*vb}(DI)")
            a(f"\tVMOVUP{P[1]} {R}{accI[ch]}, {ch*vb + imoff}(DI)")
    a("\tADDQ R13, DI")
    a("\tADDQ R13, SI")
    a(f"\tADDQ ${2*es}, DX")
    a("\tDECQ CX")
    a(f"\tJNZ site{name}")
    a(f"done{name}:")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)


def ybar(t, isa):
    """yc[site] += as·h[site]·u[site] + wd·u2[site] over sites of laneN lanes (h at hstride bytes per site)."""
    f32, P, BC, es, vb, R, chunks, imoff, ety = shape(t, isa)
    name = f"odeYbar{t}{isa}"
    L = []
    a = L.append
    a(f"// func {name}(yc, h, u, u2, wd, as *{ety}, sites, hstride int)")
    a(f"TEXT ·{name}(SB), NOSPLIT, $0-64")
    for i, (nm, reg) in enumerate((('yc', 'DI'), ('h', 'SI'), ('u', 'DX'), ('u2', 'R8'), ('wd', 'R9'), ('as', 'R10'))):
        a(f"\tMOVQ {nm}+{8*i}(FP), {reg}")
    a("\tMOVQ sites+48(FP), CX")
    a("\tMOVQ hstride+56(FP), R11")
    wd = [5 + c for c in range(chunks)]
    for ch in range(chunks):
        a(f"\tVMOVUP{P[1]} {ch*vb}(R9), {R}{wd[ch]}")
    a(f"\t{BC} (R10), {R}4")
    a("\tTESTQ CX, CX")
    a(f"\tJZ done{name}")
    a(f"loop{name}:")
    for ch in range(chunks):
        o = ch * vb
        a(f"\tVMOVUP{P[1]} {o}(SI), {R}0")
        a(f"\tVMULP{P[1]} {o}(DX), {R}0, {R}0")  # h·u
        a(f"\tVMOVUP{P[1]} {o}(DI), {R}1")
        a(f"\tVFMADD231{P} {R}4, {R}0, {R}1")  # y += as·h·u
        a(f"\tVMULP{P[1]} {o}(R8), {R}{wd[ch]}, {R}2")  # wd·u2
        a(f"\tVADD{P} {R}2, {R}1, {R}1")
        a(f"\tVMOVUP{P[1]} {R}1, {o}(DI)")
    step = LANES * es
    for reg in ('DI', 'DX', 'R8'):
        a(f"\tADDQ ${step}, {reg}")
    a("\tADDQ R11, SI")
    a("\tDECQ CX")
    a(f"\tJNZ loop{name}")
    a(f"done{name}:")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)


def cdot(t, isa):
    """dst[2s] += Σ_l gr zr + gi zi, dst[2s+1] += Σ_l gi zr − gr zi at each site s (Σ over the lanes of g conj z)."""
    f32, P, BC, es, vb, R, chunks, imoff, ety = shape(t, isa)
    z512 = isa == 'AVX512'
    name = f"odeCDot{t}{isa}"
    L = []
    a = L.append
    a(f"// func {name}(dst, gp, zp *{ety}, sites, siteStride int)")
    a(f"TEXT ·{name}(SB), NOSPLIT, $0-40")
    a("\tMOVQ dst+0(FP), DI")
    a("\tMOVQ gp+8(FP), SI")
    a("\tMOVQ zp+16(FP), DX")
    a("\tMOVQ sites+24(FP), CX")
    a("\tMOVQ siteStride+32(FP), R8")
    a("\tTESTQ CX, CX")
    a(f"\tJZ done{name}")
    a(f"loop{name}:")
    for ch in range(chunks):
        o = ch * vb
        a(f"\tVMOVUP{P[1]} {o}(SI), {R}2")
        a(f"\tVMOVUP{P[1]} {o + imoff}(SI), {R}3")
        a(f"\tVMOVUP{P[1]} {o}(DX), {R}4")
        a(f"\tVMOVUP{P[1]} {o + imoff}(DX), {R}5")
        if ch == 0:
            a(f"\tVMUL{P} {R}2, {R}4, {R}0")
            a(f"\tVMUL{P} {R}3, {R}4, {R}1")
        else:
            a(f"\tVFMADD231{P} {R}2, {R}4, {R}0")
            a(f"\tVFMADD231{P} {R}3, {R}4, {R}1")
        a(f"\tVFMADD231{P} {R}3, {R}5, {R}0")
        a(f"\tVFNMADD231{P} {R}2, {R}5, {R}1")
    for r in (0, 1):
        if z512:
            a(f"\tVEXTRACTF64X4 $1, Z{r}, Y6")
            a(f"\tVADD{P} Y6, Y{r}, Y{r}")
        a(f"\tVEXTRACTF128 $1, Y{r}, X6")
        a(f"\tVADD{P} X6, X{r}, X{r}")
    a(f"\tVHADD{P} X1, X0, X0")
    if f32:
        a("\tVHADDPS X0, X0, X0")
        a("\tVMOVSD (DI), X5")
        a("\tVADDPS X0, X5, X5")
        a("\tVMOVSD X5, (DI)")
    else:
        a("\tVMOVUPD (DI), X5")
        a("\tVADDPD X0, X5, X5")
        a("\tVMOVUPD X5, (DI)")
    a("\tADDQ R8, SI")
    a("\tADDQ R8, DX")
    a(f"\tADDQ ${2*es}, DI")
    a("\tDECQ CX")
    a(f"\tJNZ loop{name}")
    a(f"done{name}:")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)


def bfly32(t, isa, inverse):
    """The radix-2 pass of the 32-point lane FFT: for count transforms (step bytes apart) and m < 16, with e, o
    the complex lane vectors at positions 2m and 2m + 1 (stride bytes apart) and (wr, wi) = (tw[m], tw[16+m]):
    forward (e, o) <- (e + w·o, e − w·o); inverse (e, o) <- (e + o, w·(e − o)) (the caller passes the
    conjugate twiddles)."""
    f32, P, BC, es, vb, R, chunks, imoff, ety = shape(t, isa)
    name = f"odeBfly32{'Inv' if inverse else 'Fwd'}{t}{isa}"
    L = []
    a = L.append
    a(f"// func {name}(p, tw *{ety}, stride, count, step int)")
    a(f"TEXT ·{name}(SB), NOSPLIT, $0-40")
    a("\tMOVQ p+0(FP), AX")
    a("\tMOVQ tw+8(FP), BX")
    a("\tMOVQ stride+16(FP), SI")
    a("\tMOVQ count+24(FP), CX")
    a("\tMOVQ step+32(FP), DX")
    a("\tLEAQ (SI)(SI*1), DI")  # 2·stride
    a("\tTESTQ CX, CX")
    a(f"\tJZ done{name}")
    a(f"loop{name}:")
    a("\tMOVQ AX, R8")      # e of pair m
    a("\tLEAQ (AX)(SI*1), R9")  # o of pair m
    a("\tMOVQ BX, R10")     # tw + m
    a("\tMOVQ $16, R11")
    a(f"pair{name}:")
    a(f"\t{BC} (R10), {R}14")
    a(f"\t{BC} {16*es}(R10), {R}15")
    x = lambda n: f"{R}{n}"
    for ch in range(chunks):
        o = ch * vb
        b = 6 * (ch % 2)
        er, ei, orr, oi, pr, pi = (b + k for k in range(6))
        a(f"\tVMOVUP{P[1]} {o}(R8), {x(er)}")
        a(f"\tVMOVUP{P[1]} {o + imoff}(R8), {x(ei)}")
        a(f"\tVMOVUP{P[1]} {o}(R9), {x(orr)}")
        a(f"\tVMOVUP{P[1]} {o + imoff}(R9), {x(oi)}")
        if not inverse:
            a(f"\tVMUL{P} {x(14)}, {x(orr)}, {x(pr)}")        # wr·or
            a(f"\tVFNMADD231{P} {x(15)}, {x(oi)}, {x(pr)}")  # − wi·oi
            a(f"\tVMUL{P} {x(14)}, {x(oi)}, {x(pi)}")        # wr·oi
            a(f"\tVFMADD231{P} {x(15)}, {x(orr)}, {x(pi)}")  # + wi·or
            a(f"\tVSUB{P} {x(pr)}, {x(er)}, {x(orr)}")
            a(f"\tVSUB{P} {x(pi)}, {x(ei)}, {x(oi)}")
            a(f"\tVADD{P} {x(pr)}, {x(er)}, {x(er)}")
            a(f"\tVADD{P} {x(pi)}, {x(ei)}, {x(ei)}")
        else:
            a(f"\tVSUB{P} {x(orr)}, {x(er)}, {x(pr)}")       # dr = er − or
            a(f"\tVSUB{P} {x(oi)}, {x(ei)}, {x(pi)}")        # di = ei − oi
            a(f"\tVADD{P} {x(orr)}, {x(er)}, {x(er)}")
            a(f"\tVADD{P} {x(oi)}, {x(ei)}, {x(ei)}")
            a(f"\tVMUL{P} {x(14)}, {x(pr)}, {x(orr)}")       # wr·dr
            a(f"\tVFNMADD231{P} {x(15)}, {x(pi)}, {x(orr)}")  # − wi·di
            a(f"\tVMUL{P} {x(14)}, {x(pi)}, {x(oi)}")        # wr·di
            a(f"\tVFMADD231{P} {x(15)}, {x(pr)}, {x(oi)}")   # + wi·dr
        a(f"\tVMOVUP{P[1]} {x(er)}, {o}(R8)")
        a(f"\tVMOVUP{P[1]} {x(ei)}, {o + imoff}(R8)")
        a(f"\tVMOVUP{P[1]} {x(orr)}, {o}(R9)")
        a(f"\tVMOVUP{P[1]} {x(oi)}, {o + imoff}(R9)")
    a("\tADDQ DI, R8")
    a("\tADDQ DI, R9")
    a(f"\tADDQ ${es}, R10")
    a("\tDECQ R11")
    a(f"\tJNZ pair{name}")
    a("\tADDQ DX, AX")
    a("\tDECQ CX")
    a(f"\tJNZ loop{name}")
    a(f"done{name}:")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)


def data():
    out = []
    for t in ('F32', 'F64'):
        es = 4 if t == 'F32' else 8
        vals = {'c1': math.cos(math.pi / 8), 's1': math.sin(math.pi / 8), 'h': math.sqrt(0.5)}
        for nm, v in vals.items():
            sym = f"odeFFT{nm}{t}<>"
            for k in range(64 // es):
                if t == 'F32':
                    import struct
                    bits = struct.unpack('<I', struct.pack('<f', v))[0]
                    out.append(f"DATA {sym}+{k*es}(SB)/4, ${bits:#x}")
                else:
                    import struct
                    bits = struct.unpack('<Q', struct.pack('<d', v))[0]
                    out.append(f"DATA {sym}+{k*es}(SB)/8, ${bits:#x}")
            out.append(f"GLOBL {sym}(SB), RODATA|NOPTR, $64")
    return "\n".join(out)


if __name__ == '__main__':
    print("// Code generated by ode_fused_lanes_amd64_gen.py; DO NOT EDIT.\n")
    print("//go:build amd64 && !purego\n")
    print('#include "textflag.h"\n')
    print(data())
    print()
    for isa in ('AVX512', 'AVX2'):
        for t in ('F32', 'F64'):
            for inv in (False, True):
                print(gen(t, isa, inv))
                print()
                print(bfly32(t, isa, inv))
                print()
            print(harmonic(t, isa))
            print()
            print(cmac(t, isa))
            print()
            print(ybar(t, isa))
            print()
            print(cdot(t, isa))
            print()
