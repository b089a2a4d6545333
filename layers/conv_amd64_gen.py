"""Writes conv_amd64.s, the AVX-512 kernels of the convolution family (see conv_kernels.go)."""
def fwd(t):
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    BC = 'VBROADCASTSS' if f32 else 'VBROADCASTSD'
    sz = 4 if f32 else 8
    lanes = 16 if f32 else 8
    L = []
    a = L.append
    a(f"// func convFwd{t}(k int, off *int, xa, xb, w *{'float32' if f32 else 'float64'}, outs *[16]uintptr, ma, mb uint64)")
    a(f"// For 8 output channels × 2 vectors of {lanes} positions: acc[j][v] = Σ_r w[r·8+j] · x_v[off[r] + lane]")
    a(f"// (x_v = xa, xb; lanes outside the masks ma, mb read as 0), then *outs[2j+v] += acc[j][v] on the masked lanes.")
    a(f"TEXT ·convFwd{t}(SB), NOSPLIT, $0-64")
    a("\tMOVQ k+0(FP), CX")
    a("\tMOVQ off+8(FP), SI")
    a("\tMOVQ xa+16(FP), AX")
    a("\tMOVQ xb+24(FP), BX")
    a("\tMOVQ w+32(FP), DX")
    a("\tMOVQ ma+48(FP), R9")
    a("\tKMOVW R9, K1")
    a("\tMOVQ mb+56(FP), R9")
    a("\tKMOVW R9, K2")
    for i in range(16):
        a(f"\tVPXORD Z{i}, Z{i}, Z{i}")
    a("\tTESTQ CX, CX")
    a(f"\tJZ fwdstore{t}")
    a(f"fwdloop{t}:")
    a("\tMOVQ (SI), R8")
    a(f"\tVMOVUP{P[1]}.Z (AX)(R8*{sz}), K1, Z16")
    a(f"\tVMOVUP{P[1]}.Z (BX)(R8*{sz}), K2, Z17")
    for j in range(8):
        r = 18 + (j % 4)
        a(f"\t{BC} {j*sz}(DX), Z{r}")
        a(f"\tVFMADD231{P} Z16, Z{r}, Z{2*j}")
        a(f"\tVFMADD231{P} Z17, Z{r}, Z{2*j+1}")
    a("\tADDQ $8, SI")
    a(f"\tADDQ ${8*sz}, DX")
    a("\tDECQ CX")
    a(f"\tJNZ fwdloop{t}")
    a(f"fwdstore{t}:")
    a("\tMOVQ outs+40(FP), DI")
    for j in range(8):
        for v in range(2):
            k = 'K1' if v == 0 else 'K2'
            acc = 2*j+v
            a(f"\tMOVQ {8*(2*j+v)}(DI), R9")
            a(f"\tVMOVUP{P[1]}.Z (R9), {k}, Z{22 + (acc % 4)}")
            a(f"\tVADD{P} Z{22 + (acc % 4)}, Z{acc}, Z{acc}")
            a(f"\tVMOVUP{P[1]} Z{acc}, {k}, (R9)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)


def fwd3(t):
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    BC = 'VBROADCASTSS' if f32 else 'VBROADCASTSD'
    sz = 4 if f32 else 8
    lanes = 16 if f32 else 8
    ty = 'float32' if f32 else 'float64'
    L = []
    a = L.append
    a(f"// func convFwd{t}(k int, off *int, xa, xb, xc, w *{ty}, outs *[24]uintptr, masks *[4]uint64, init *{ty})")
    a(f"// For 8 output channels × 3 vectors of {lanes} positions: acc[j][v] = Σ_r w[r·8+j] · x_v[off[r] + lane]")
    a(f"// (x_v = xa, xb, xc; lanes outside masks[v] read as 0), then *outs[3j+v] += acc[j][v] on the masked lanes")
    a(f"// (on all {lanes} lanes if masks[3] ≠ 0: the caller's promise that every vector is full or writes to scratch).")
    a(f"// With init ≠ nil the sums start at init[j] and are stored, not added: *outs[3j+v] = init[j] + acc[j][v]")
    a(f"// (no pass to fill the output with the bias first, and no load of it here).")
    a(f"TEXT ·convFwd{t}(SB), NOSPLIT, $0-72")
    a("\tMOVQ k+0(FP), CX")
    a("\tMOVQ off+8(FP), SI")
    a("\tMOVQ xa+16(FP), AX")
    a("\tMOVQ xb+24(FP), BX")
    a("\tMOVQ xc+32(FP), DI")
    a("\tMOVQ w+40(FP), DX")
    a("\tMOVQ masks+56(FP), R9")
    a("\tKMOVW (R9), K1")
    a("\tKMOVW 8(R9), K2")
    a("\tKMOVW 16(R9), K3")
    a("\tMOVQ init+64(FP), R10")
    a("\tTESTQ R10, R10")
    a(f"\tJNZ fwdinit{t}")
    for i in range(24):
        a(f"\tVPXORD Z{i}, Z{i}, Z{i}")
    a(f"\tJMP fwdready{t}")
    a(f"fwdinit{t}:")
    for j in range(8):
        a(f"\t{BC} {j*sz}(R10), Z{3*j}")
        a(f"\tVMOVAP{P[1]} Z{3*j}, Z{3*j+1}")
        a(f"\tVMOVAP{P[1]} Z{3*j}, Z{3*j+2}")
    a(f"fwdready{t}:")
    a("\tTESTQ CX, CX")
    a(f"\tJZ fwdstore{t}")
    a(f"fwdloop{t}:")
    a("\tMOVQ (SI), R8")
    a(f"\tVMOVUP{P[1]}.Z (AX)(R8*{sz}), K1, Z24")
    a(f"\tVMOVUP{P[1]}.Z (BX)(R8*{sz}), K2, Z25")
    a(f"\tVMOVUP{P[1]}.Z (DI)(R8*{sz}), K3, Z26")
    for j in range(8):
        r = 27 + (j % 4)
        a(f"\t{BC} {j*sz}(DX), Z{r}")
        for v in range(3):
            a(f"\tVFMADD231{P} Z{24+v}, Z{r}, Z{3*j+v}")
    a("\tADDQ $8, SI")
    a(f"\tADDQ ${8*sz}, DX")
    a("\tDECQ CX")
    a(f"\tJNZ fwdloop{t}")
    a(f"fwdstore{t}:")
    a("\tMOVQ outs+48(FP), SI")
    # Where masks[3] ≠ 0 every unit is either full or a filler whose outputs all go to the scratch, and the
    # sums are stored without masks. Measured on Zen 5: the masked epilogue of the calls with filler vectors
    # (mask 0, 16 stores to one scratch address) cost the whole forward pass ~15%; taking the unmasked path
    # only when all three vectors are full gained nothing.
    a("\tMOVQ masks+56(FP), R9")
    a("\tMOVQ init+64(FP), R10")
    a("\tTESTQ R10, R10")
    a(f"\tJNZ fwdset{t}")
    a("\tCMPQ 24(R9), $0")
    a(f"\tJNE fwdfull{t}")
    for j in range(8):
        for v in range(3):
            k = ['K1', 'K2', 'K3'][v]
            acc = 3*j+v
            a(f"\tMOVQ {8*acc}(SI), R9")
            a(f"\tVMOVUP{P[1]}.Z (R9), {k}, Z31")
            a(f"\tVADD{P} Z31, Z{acc}, Z{acc}")
            a(f"\tVMOVUP{P[1]} Z{acc}, {k}, (R9)")
    a("\tVZEROUPPER")
    a("\tRET")
    a(f"fwdset{t}:")
    a("\tCMPQ 24(R9), $0")
    a(f"\tJNE fwdsetfull{t}")
    for acc in range(24):
        a(f"\tMOVQ {8*acc}(SI), R9")
        a(f"\tVMOVUP{P[1]} Z{acc}, {['K1', 'K2', 'K3'][acc % 3]}, (R9)")
    a("\tVZEROUPPER")
    a("\tRET")
    a(f"fwdsetfull{t}:")
    for acc in range(24):
        a(f"\tMOVQ {8*acc}(SI), R9")
        a(f"\tVMOVUP{P[1]} Z{acc}, (R9)")
    a("\tVZEROUPPER")
    a("\tRET")
    a(f"fwdfull{t}:")
    for acc in range(24):
        a(f"\tMOVQ {8*acc}(SI), R9")
        a(f"\tVMOVUP{P[1]}.Z (R9), {['K1', 'K2', 'K3'][acc % 3]}, Z31")
        a(f"\tVADD{P} Z31, Z{acc}, Z{acc}")
        a(f"\tVMOVUP{P[1]} Z{acc}, (R9)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

def wgt(t):
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    lanes = 16 if f32 else 8
    L = []
    a = L.append
    a(f"// func convWgt{t}(n int, tab *uintptr, ldg int, rows *[6]int, acc *{'float32' if f32 else 'float64'})")
    a(f"// For 8 output-gradient channels × 3 kernel taps, over n units (tab: 3 words each: address of the")
    a(f"// {lanes}-lane vector of channel 0 of the output gradient, address of the unit's input base, lane mask):")
    a(f"// acc[8·tap + ch] += Σ_units Σ_lanes g_ch · x[rows[tap] bytes past the base] (24 sums).")
    a(f"// ldg (the distance between output-gradient channels) and rows are in bytes. Per unit the 3 input")
    a(f"// vectors (unaligned: they usually straddle two cache lines) are loaded once and the 8 output-gradient")
    a(f"// vectors (aligned when the rows are whole vectors) stream past them.")
    a(f"TEXT ·convWgt{t}(SB), NOSPLIT, $0-40")
    a("\tMOVQ n+0(FP), CX")
    a("\tMOVQ tab+8(FP), SI")
    a("\tMOVQ ldg+16(FP), DX")
    a("\tMOVQ rows+24(FP), DI")
    regs = ['R8', 'R9', 'R10']
    for i, r in enumerate(regs):
        a(f"\tMOVQ {8*i}(DI), {r}")
    a("\tLEAQ (DX)(DX*2), R11")
    for i in range(24):
        a(f"\tVPXORD Z{i}, Z{i}, Z{i}")
    a("\tTESTQ CX, CX")
    a(f"\tJZ wgtstore{t}")
    a(f"wgtloop{t}:")
    a("\tMOVQ (SI), AX")
    a("\tMOVQ 8(SI), BX")
    a("\tKMOVW 16(SI), K1")
    a("\tLEAQ (AX)(DX*4), R12")
    for i, r in enumerate(regs):
        a(f"\tVMOVUP{P[1]}.Z (BX)({r}*1), K1, Z{24+i}")
    for c in range(8):
        base = 'AX' if c < 4 else 'R12'
        m = ['({b})', '({b})(DX*1)', '({b})(DX*2)', '({b})(R11*1)'][c % 4].format(b=base)
        g = 27 + (c % 4)
        a(f"\tVMOVUP{P[1]}.Z {m}, K1, Z{g}")
        for tap in range(3):
            a(f"\tVFMADD231{P} Z{g}, Z{24+tap}, Z{8*tap+c}")
    a("\tADDQ $24, SI")
    a("\tDECQ CX")
    a(f"\tJNZ wgtloop{t}")
    a(f"wgtstore{t}:")
    a("\tMOVQ acc+32(FP), DI")
    sz = 4 if f32 else 8
    S = 'SS' if f32 else 'SD'
    for i in range(24):
        a(f"\tVEXTRACTF64X4 $1, Z{i}, Y24")
        a(f"\tVADD{P} Y24, Y{i}, Y{i}")
        a(f"\tVEXTRACTF32X4 $1, Y{i}, X25")
        a(f"\tVADD{P} X25, X{i}, X{i}")
        if f32:
            a(f"\tVMOVHLPS X{i}, X{i}, X26")
            a(f"\tVADDPS X26, X{i}, X{i}")
            a(f"\tVMOVSHDUP X{i}, X27")
            a(f"\tVADDSS X27, X{i}, X{i}")
        else:
            a(f"\tVUNPCKHPD X{i}, X{i}, X26")
            a(f"\tVADDSD X26, X{i}, X{i}")
        a(f"\tVADD{S} {sz*i}(DI), X{i}, X{i}")
        a(f"\tVMOV{S} X{i}, {sz*i}(DI)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

def wgt46(t, name):
    """The 4-channel × 6-tap weight-gradient kernel: float64's, and float32's for Cout ≤ 4."""
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    lanes = 16 if f32 else 8
    L = []
    a = L.append
    a(f"// func {name}{t}(n int, tab *uintptr, ldg int, rows *[6]int, acc *{'float32' if f32 else 'float64'})")
    a(f"// For 4 output-gradient channels × 6 kernel taps, over n units (tab: 3 words each: address of the")
    a(f"// {lanes}-lane vector of channel 0 of the output gradient, address of the unit's input base, lane mask):")
    a(f"// acc[4·tap + ch] += Σ_units Σ_lanes g_ch · x[rows[tap] bytes past the base] (24 sums).")
    a(f"// ldg and rows are in bytes.")
    a(f"TEXT ·{name}{t}(SB), NOSPLIT, $0-40")
    a("\tMOVQ n+0(FP), CX")
    a("\tMOVQ tab+8(FP), SI")
    a("\tMOVQ ldg+16(FP), DX")
    a("\tMOVQ rows+24(FP), DI")
    regs = ['R8', 'R9', 'R10', 'R11', 'R12', 'R13']
    for i, r in enumerate(regs):
        a(f"\tMOVQ {8*i}(DI), {r}")
    for i in range(24):
        a(f"\tVPXORD Z{i}, Z{i}, Z{i}")
    a("\tTESTQ CX, CX")
    a(f"\tJZ {name}store{t}")
    a(f"{name}loop{t}:")
    a("\tMOVQ (SI), AX")
    a("\tMOVQ 8(SI), BX")
    a("\tKMOVW 16(SI), K1")
    a(f"\tVMOVUP{P[1]}.Z (AX), K1, Z24")
    a(f"\tVMOVUP{P[1]}.Z (AX)(DX*1), K1, Z25")
    a(f"\tVMOVUP{P[1]}.Z (AX)(DX*2), K1, Z26")
    a("\tLEAQ (AX)(DX*2), AX")
    a(f"\tVMOVUP{P[1]}.Z (AX)(DX*1), K1, Z27")
    for i, r in enumerate(regs):
        x = 28 + (i % 4)
        a(f"\tVMOVUP{P[1]}.Z (BX)({r}*1), K1, Z{x}")
        for c in range(4):
            a(f"\tVFMADD231{P} Z{24+c}, Z{x}, Z{4*i+c}")
    a("\tADDQ $24, SI")
    a("\tDECQ CX")
    a(f"\tJNZ {name}loop{t}")
    a(f"{name}store{t}:")
    a("\tMOVQ acc+32(FP), DI")
    sz = 4 if f32 else 8
    S = 'SS' if f32 else 'SD'
    for i in range(24):
        a(f"\tVEXTRACTF64X4 $1, Z{i}, Y24")
        a(f"\tVADD{P} Y24, Y{i}, Y{i}")
        a(f"\tVEXTRACTF32X4 $1, Y{i}, X25")
        a(f"\tVADD{P} X25, X{i}, X{i}")
        if f32:
            a(f"\tVMOVHLPS X{i}, X{i}, X26")
            a(f"\tVADDPS X26, X{i}, X{i}")
            a(f"\tVMOVSHDUP X{i}, X27")
            a(f"\tVADDSS X27, X{i}, X{i}")
        else:
            a(f"\tVUNPCKHPD X{i}, X{i}, X26")
            a(f"\tVADDSD X26, X{i}, X{i}")
        a(f"\tVADD{S} {sz*i}(DI), X{i}, X{i}")
        a(f"\tVMOV{S} X{i}, {sz*i}(DI)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

def wgt2(t):
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    lanes = 8 if f32 else 4
    sz = 4 if f32 else 8
    S = 'SS' if f32 else 'SD'
    L = []
    a = L.append
    a(f"// func convWgt2{t}(n int, tab *uintptr, ldg int, rows *[2]int, acc *{'float32' if f32 else 'float64'})")
    a(f"// AVX2 form of convWgt{t} for 4 output-gradient channels × 2 kernel taps and full {lanes}-lane vectors")
    a(f"// (the mask word of tab is not read): acc[4·tap + ch] += Σ_units Σ_lanes g_ch · x[rows[tap] bytes past the base].")
    a(f"TEXT ·convWgt2{t}(SB), NOSPLIT, $0-40")
    a("\tMOVQ n+0(FP), CX")
    a("\tMOVQ tab+8(FP), SI")
    a("\tMOVQ ldg+16(FP), DX")
    a("\tMOVQ rows+24(FP), DI")
    a("\tMOVQ 0(DI), R8")
    a("\tMOVQ 8(DI), R9")
    for i in range(8):
        a(f"\tVXORPS Y{i}, Y{i}, Y{i}")
    a("\tTESTQ CX, CX")
    a(f"\tJZ wgt2store{t}")
    a(f"wgt2loop{t}:")
    a("\tMOVQ (SI), AX")
    a("\tMOVQ 8(SI), BX")
    a(f"\tVMOVUP{P[1]} (AX), Y8")
    a(f"\tVMOVUP{P[1]} (AX)(DX*1), Y9")
    a(f"\tVMOVUP{P[1]} (AX)(DX*2), Y10")
    a("\tLEAQ (AX)(DX*2), AX")
    a(f"\tVMOVUP{P[1]} (AX)(DX*1), Y11")
    for i, r in enumerate(['R8', 'R9']):
        x = 12 + i
        a(f"\tVMOVUP{P[1]} (BX)({r}*1), Y{x}")
        for c in range(4):
            a(f"\tVFMADD231{P} Y{8+c}, Y{x}, Y{4*i+c}")
    a("\tADDQ $24, SI")
    a("\tDECQ CX")
    a(f"\tJNZ wgt2loop{t}")
    a(f"wgt2store{t}:")
    a("\tMOVQ acc+32(FP), DI")
    for i in range(8):
        a(f"\tVEXTRACTF128 $1, Y{i}, X14")
        a(f"\tVADD{P} X14, X{i}, X{i}")
        if f32:
            a(f"\tVMOVHLPS X{i}, X{i}, X15")
            a(f"\tVADDPS X15, X{i}, X{i}")
            a(f"\tVMOVSHDUP X{i}, X15")
            a(f"\tVADDSS X15, X{i}, X{i}")
        else:
            a(f"\tVUNPCKHPD X{i}, X{i}, X15")
            a(f"\tVADDSD X15, X{i}, X{i}")
        a(f"\tVADD{S} {sz*i}(DI), X{i}, X{i}")
        a(f"\tVMOV{S} X{i}, {sz*i}(DI)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

def fwd2(t):
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    BC = 'VBROADCASTSS' if f32 else 'VBROADCASTSD'
    sz = 4 if f32 else 8
    lanes = 8 if f32 else 4
    ty = 'float32' if f32 else 'float64'
    L = []
    a = L.append
    a(f"// func convFwd2{t}(k int, off *int, xa, xb, xc, w *{ty}, outs *[12]uintptr)")
    a(f"// AVX2 form of convFwd{t} for 4 output channels × 3 full vectors of {lanes} positions:")
    a(f"// acc[j][v] = Σ_r w[r·4+j] · x_v[off[r] + lane], then *outs[3j+v] += acc[j][v].")
    a(f"TEXT ·convFwd2{t}(SB), NOSPLIT, $0-56")
    a("\tMOVQ k+0(FP), CX")
    a("\tMOVQ off+8(FP), SI")
    a("\tMOVQ xa+16(FP), AX")
    a("\tMOVQ xb+24(FP), BX")
    a("\tMOVQ xc+32(FP), DI")
    a("\tMOVQ w+40(FP), DX")
    for i in range(12):
        a(f"\tVXORPS Y{i}, Y{i}, Y{i}")
    a("\tTESTQ CX, CX")
    a(f"\tJZ fwd2store{t}")
    a(f"fwd2loop{t}:")
    a("\tMOVQ (SI), R8")
    a(f"\tVMOVUP{P[1]} (AX)(R8*{sz}), Y12")
    a(f"\tVMOVUP{P[1]} (BX)(R8*{sz}), Y13")
    a(f"\tVMOVUP{P[1]} (DI)(R8*{sz}), Y14")
    for j in range(4):
        a(f"\t{BC} {j*sz}(DX), Y15")
        for v in range(3):
            a(f"\tVFMADD231{P} Y{12+v}, Y15, Y{3*j+v}")
    a("\tADDQ $8, SI")
    a(f"\tADDQ ${4*sz}, DX")
    a("\tDECQ CX")
    a(f"\tJNZ fwd2loop{t}")
    a(f"fwd2store{t}:")
    a("\tMOVQ outs+48(FP), SI")
    for acc in range(12):
        a(f"\tMOVQ {8*acc}(SI), R9")
        a(f"\tVADD{P} (R9), Y{acc}, Y{acc}")
        a(f"\tVMOVUP{P[1]} Y{acc}, (R9)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

def peak(t):
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    L = []
    a = L.append
    a(f"// func fmaPeak{t}(n int): n rounds of 12 independent 512-bit FMAs (a peak-throughput probe).")
    a(f"TEXT ·fmaPeak{t}(SB), NOSPLIT, $0-8")
    a("\tMOVQ n+0(FP), CX")
    for i in range(14):
        a(f"\tVPXORD Z{i}, Z{i}, Z{i}")
    a("\tTESTQ CX, CX")
    a(f"\tJZ peakdone{t}")
    a(f"peakloop{t}:")
    for i in range(12):
        a(f"\tVFMADD231{P} Z12, Z13, Z{i}")
    a("\tDECQ CX")
    a(f"\tJNZ peakloop{t}")
    a(f"peakdone{t}:")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

def pad(t):
    """The stride-1 padded copy of one image plane (padInto's rows), one call per plane."""
    f32 = t == 'F32'
    P = 'S' if f32 else 'D'
    sz = 4 if f32 else 8
    lanes = 16 if f32 else 8
    sh = 4 if f32 else 3
    K = 'KMOVW'  # 8-lane ops read the low 8 bits (KMOVB would need AVX512DQ)
    MV = 'MOVL' if f32 else 'MOVQ'
    L = []
    a = L.append
    a(f"// func padRows{t}(j *padJob)")
    a(f"// For every padded row yy < j.nrows: src row j.rows[yy] (or zeros when it is negative) into dst row yy")
    a(f"// (j.rowLen entries apart) at column j.padL, then the j.nl columns left of it and the j.nr right of it")
    a(f"// from the source columns j.lsrc[k], j.rsrc[k] (0 where negative). The row copies are {lanes}-lane")
    a(f"// vectors, the last one under a mask: nothing outside the padded row is written.")
    a(f"TEXT ·padRows{t}(SB), NOSPLIT, $0-8")
    a("\tMOVQ j+0(FP), DI")
    a("\tMOVQ 0(DI), R8")    # dst row
    a("\tMOVQ 8(DI), R9")    # src plane
    a("\tMOVQ 16(DI), R10")  # rows
    a("\tMOVQ 24(DI), R11")  # nrows
    a("\tMOVQ 40(DI), R12")  # w
    a("\tMOVQ R12, CX")
    a(f"\tANDQ ${lanes-1}, CX")
    a("\tMOVL $1, AX")
    a("\tSHLQ CX, AX")
    a("\tDECQ AX")
    a(f"\t{K} AX, K1")          # tail mask of a source row
    a("\tMOVQ 32(DI), CX")
    a(f"\tANDQ ${lanes-1}, CX")
    a("\tMOVL $1, AX")
    a("\tSHLQ CX, AX")
    a("\tDECQ AX")
    a(f"\t{K} AX, K2")          # tail mask of a padded row
    a("\tVPXORD Z1, Z1, Z1")
    a("\tTESTQ R11, R11")
    a(f"\tJZ paddone{t}")
    a(f"padrow{t}:")
    a("\tMOVQ (R10), BX")
    a("\tTESTQ BX, BX")
    a(f"\tJS padzero{t}")
    a("\tIMULQ R12, BX")
    a(f"\tLEAQ (R9)(BX*{sz}), SI")   # source row
    a("\tMOVQ 48(DI), DX")
    a(f"\tLEAQ (R8)(DX*{sz}), DX")   # destination of column 0
    a("\tXORQ AX, AX")
    a("\tMOVQ R12, CX")
    a(f"\tSHRQ ${sh}, CX")
    a("\tTESTQ CX, CX")
    a(f"\tJZ padtail{t}")
    a(f"padvec{t}:")
    a(f"\tVMOVUP{P} (SI)(AX*1), Z0")
    a(f"\tVMOVUP{P} Z0, (DX)(AX*1)")
    a("\tADDQ $64, AX")
    a("\tDECQ CX")
    a(f"\tJNZ padvec{t}")
    a(f"padtail{t}:")
    a(f"\tVMOVUP{P}.Z (SI)(AX*1), K1, Z0")
    a(f"\tVMOVUP{P} Z0, K1, (DX)(AX*1)")
    # left columns: dst row start R8
    for side, ptr, cnt in (('l', 56, 64), ('r', 72, 80)):
        a(f"\tMOVQ {cnt}(DI), CX")
        a("\tTESTQ CX, CX")
        a(f"\tJZ pad{side}done{t}")
        a(f"\tMOVQ {ptr}(DI), AX")
        if side == 'l':
            a("\tMOVQ R8, DX")
        else:
            a("\tMOVQ 48(DI), DX")
            a("\tADDQ R12, DX")
            a(f"\tLEAQ (R8)(DX*{sz}), DX")
        a(f"pad{side}loop{t}:")
        a("\tMOVQ (AX), BX")
        a("\tXORQ R13, R13")
        a("\tTESTQ BX, BX")
        a(f"\tJS pad{side}store{t}")
        a(f"\t{MV} (SI)(BX*{sz}), R13")
        a(f"pad{side}store{t}:")
        a(f"\t{MV} R13, (DX)")
        a("\tADDQ $8, AX")
        a(f"\tADDQ ${sz}, DX")
        a("\tDECQ CX")
        a(f"\tJNZ pad{side}loop{t}")
        a(f"pad{side}done{t}:")
    a(f"\tJMP padnext{t}")
    a(f"padzero{t}:")
    a("\tXORQ AX, AX")
    a("\tMOVQ 32(DI), CX")
    a(f"\tSHRQ ${sh}, CX")
    a("\tTESTQ CX, CX")
    a(f"\tJZ padztail{t}")
    a(f"padzvec{t}:")
    a(f"\tVMOVUP{P} Z1, (R8)(AX*1)")
    a("\tADDQ $64, AX")
    a("\tDECQ CX")
    a(f"\tJNZ padzvec{t}")
    a(f"padztail{t}:")
    a(f"\tVMOVUP{P} Z1, K2, (R8)(AX*1)")
    a(f"padnext{t}:")
    a("\tMOVQ 32(DI), AX")
    a(f"\tLEAQ (R8)(AX*{sz}), R8")
    a("\tADDQ $8, R10")
    a("\tDECQ R11")
    a(f"\tJNZ padrow{t}")
    a(f"paddone{t}:")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

def fwdn(t, mr):
    """Forward kernel for mr ≤ 4 output channels × 24/mr consecutive vectors of positions (virtual rows)."""
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    BC = 'VBROADCASTSS' if f32 else 'VBROADCASTSD'
    sz = 4 if f32 else 8
    lanes = 16 if f32 else 8
    ty = 'float32' if f32 else 'float64'
    nv = 24 // mr
    L = []
    a = L.append
    a(f"// func convFwdN{mr}{t}(k int, off *int, x, w, out *{ty}, ostride int)")
    a(f"// For {mr} output channel(s) × {nv} consecutive vectors of {lanes} positions from x: acc[j][v] =")
    a(f"// Σ_r w[r·{mr}+j] · x[off[r] + {lanes}·v + lane], stored (not added) to out[j·ostride + {lanes}·v + lane]")
    a(f"// (ostride in elements). No masks: the caller gives room for whole vectors on both sides.")
    a(f"TEXT ·convFwdN{mr}{t}(SB), NOSPLIT, $0-48")
    a("\tMOVQ k+0(FP), CX")
    a("\tMOVQ off+8(FP), SI")
    a("\tMOVQ x+16(FP), AX")
    a("\tMOVQ w+24(FP), DX")
    for i in range(24):
        a(f"\tVPXORD Z{i}, Z{i}, Z{i}")
    a("\tTESTQ CX, CX")
    a(f"\tJZ fwdn{mr}store{t}")
    a(f"fwdn{mr}loop{t}:")
    a("\tMOVQ (SI), R8")
    a(f"\tLEAQ (AX)(R8*{sz}), R8")
    for j in range(mr):
        a(f"\t{BC} {j*sz}(DX), Z{24+j}")
    for v in range(nv):
        x = 28 + (v % 4)
        a(f"\tVMOVUP{P[1]} {64*v}(R8), Z{x}")
        for j in range(mr):
            a(f"\tVFMADD231{P} Z{x}, Z{24+j}, Z{j*nv+v}")
    a("\tADDQ $8, SI")
    a(f"\tADDQ ${mr*sz}, DX")
    a("\tDECQ CX")
    a(f"\tJNZ fwdn{mr}loop{t}")
    a(f"fwdn{mr}store{t}:")
    a("\tMOVQ out+32(FP), DI")
    a("\tMOVQ ostride+40(FP), BX")
    a(f"\tSHLQ ${2 if f32 else 3}, BX")
    for j in range(mr):
        for v in range(nv):
            a(f"\tVMOVUP{P[1]} Z{j*nv+v}, {64*v}(DI)")
        if j < mr - 1:
            a("\tADDQ BX, DI")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

def vmul(t):
    """dst[i] = a[i]·b[i] (the elementwise product GroupNormAct's backward pass needs)."""
    f32 = t == 'F32'
    P = 'PS' if f32 else 'PD'
    lanes = 16 if f32 else 8
    sh = 4 if f32 else 3
    L = []
    a = L.append
    a(f"// func mulVec{t}(dst, a, b *{'float32' if f32 else 'float64'}, n int)")
    a(f"// dst[i] = a[i]·b[i] for i < n, {lanes} lanes at a time, the last vector under a mask.")
    a(f"TEXT ·mulVec{t}(SB), NOSPLIT, $0-32")
    a("\tMOVQ dst+0(FP), DI")
    a("\tMOVQ a+8(FP), SI")
    a("\tMOVQ b+16(FP), DX")
    a("\tMOVQ n+24(FP), CX")
    a("\tMOVQ CX, BX")
    a(f"\tANDQ ${lanes-1}, BX")
    a(f"\tSHRQ ${sh}, CX")
    a("\tXORQ AX, AX")
    a("\tTESTQ CX, CX")
    a(f"\tJZ mulvtail{t}")
    a(f"mulvloop{t}:")
    a(f"\tVMOVUP{P[1]} (SI)(AX*1), Z0")
    a(f"\tVMUL{P} (DX)(AX*1), Z0, Z0")
    a(f"\tVMOVUP{P[1]} Z0, (DI)(AX*1)")
    a("\tADDQ $64, AX")
    a("\tDECQ CX")
    a(f"\tJNZ mulvloop{t}")
    a(f"mulvtail{t}:")
    a("\tMOVQ BX, CX")
    a("\tMOVL $1, BX")
    a("\tSHLQ CX, BX")
    a("\tDECQ BX")
    a("\tKMOVW BX, K1")
    a(f"\tVMOVUP{P[1]}.Z (SI)(AX*1), K1, Z0")
    a(f"\tVMOVUP{P[1]}.Z (DX)(AX*1), K1, Z1")
    a(f"\tVMUL{P} Z1, Z0, Z0")
    a(f"\tVMOVUP{P[1]} Z0, K1, (DI)(AX*1)")
    a("\tVZEROUPPER")
    a("\tRET")
    return "\n".join(L)

out = ['//go:build amd64 && !purego', '', '#include "textflag.h"', '',
       '// Generated by conv_amd64_gen.py (python3 layers/conv_amd64_gen.py); edit that script, not this file.', '',
       '// AVX-512 kernels of the convolution family (conv_kernels.go). Go assembler syntax: the last operand is',
       '// the destination; "VFMADD231PS A, B, C" is C += B·A; ".Z" loads zero the lanes outside the K mask (and',
       '// never fault there).', '']
for t in ['F32', 'F64']:
    if t == 'F32':
        out += [fwd3(t), '', fwd2(t), '', wgt(t), '', wgt46(t, 'convWgt4'), '', wgt2(t), '', peak(t), '', pad(t), '', vmul(t), ''] + [x for mr in (1, 2, 3, 4) for x in (fwdn(t, mr), '')]
    else:
        out += [fwd3(t), '', fwd2(t), '', wgt46(t, 'convWgt'), '', wgt2(t), '', peak(t), '', pad(t), '', vmul(t), ''] + [x for mr in (1, 2, 3, 4) for x in (fwdn(t, mr), '')]
open(__import__('os').path.join(__import__('os').path.dirname(__import__('os').path.abspath(__file__)), 'conv_amd64.s'), 'w').write("\n".join(out))
