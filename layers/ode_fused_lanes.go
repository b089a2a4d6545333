package layers

import (
	"fmt"
	"math"
)

// The lane engine of the fused ODE op on 16×16 and 32×32 lattices: the integration of laneN samples at a
// time, every per-site quantity stored as laneN consecutive numbers (one per sample of the block), so that
// the 2-D FFTs, the spectral products and the feature loops run across samples, with vector instructions.
//
// A real lane plane is V·laneN numbers, site-major ([site][lane]); a complex lane plane is V·laneCS
// numbers, [site][re, im, pad][lane]. The spectra are full complex spectra in a fixed permuted order on
// both axes, the order the in-place transforms leave them in: on a 16-point axis digit-reversed (position
// 4a + b holds frequency a + 4b, laneFreq16); on a 32-point axis, one decimation-in-time radix-2 step over
// two 16-point transforms, position 2n + e holds frequency digitRev16(n) + 16e (laneFreq32). The spectra of
// the kernels are computed by the same transform, so every spectral product pairs matching frequencies,
// and the inverse transform takes that order back to the sites.

// laneN is the number of samples a lane block integrates together.
const laneN = 32

// laneSides reports whether the lane engine handles an h×w lattice: square, side 16 or 32.
func laneSides(h, w int) bool { return h == w && (h == 16 || h == 32) }

// laneCS is the stride of the sites of a complex lane plane of side × side sites: laneN real parts, laneN
// imaginary parts and a pad, so that the points of one column transform do not fall into one set of the
// L1 cache (which happens when they are a multiple of 4 KiB apart: they evict each other within the
// transform). Side 16: a pad of one 64-byte line (float64) or 16 numbers (float32); the 16 points of a
// column are 16 site strides apart. Side 32: the two 16-point transforms of a column run at 64 site
// strides, a multiple of 4 KiB for every line-aligned site stride, so the pad breaks the line alignment
// (see laneCS32Pad).
func laneCS[T float](side int) int {
	var z T
	_, f32 := any(z).(float32)
	switch {
	case side == 32 && f32:
		return 2*laneN + laneCS32PadF32
	case side == 32:
		return 2*laneN + laneCS32PadF64
	case f32:
		return 2*laneN + 16
	}
	return 2*laneN + 8
}

// fft16Lanes does, in place, count 16-point complex DFTs across the laneN lanes of z: transform t's point n
// (the complex lane vector of laneN real parts then laneN imaginary parts) starts at t·step + n·stride
// (elements). Forward: X[k] = Σ_n e^{−2πi kn/16} x[n], written in digit-reversed order (point 4a + b holds
// X[a + 4b]); inverse: the unnormalised inverse of that, digit-reversed in, natural order out.
func fft16Lanes[T float](z []T, stride, count, step int, inverse bool) {
	if count <= 0 {
		return
	}
	if need := (count-1)*step + 15*stride + 2*laneN; stride < 2*laneN || step < 0 || need > len(z) {
		panic(fmt.Sprintf("layers: fft16Lanes: %d transforms of stride %d and step %d need %d elements, have %d",
			count, stride, step, need, len(z)))
	}
	if fft16LanesVec(z, stride, count, step, inverse) {
		return
	}
	var a [16]complex128
	for t := 0; t < count; t++ {
		base := t * step
		for l := 0; l < laneN; l++ {
			for n := range a {
				o := base + n*stride + l
				q := n
				if inverse {
					q = digitRev16(n)
				}
				a[q] = complex(float64(z[o]), float64(z[o+laneN]))
			}
			if inverse {
				ifft16(&a)
			} else {
				fft16(&a)
			}
			for n := range a {
				v := a[n]
				if !inverse {
					v = a[digitRev16(n)]
				}
				o := base + n*stride + l
				z[o], z[o+laneN] = T(real(v)), T(imag(v))
			}
		}
	}
}

// digitRev16 is the base-4 digit reversal of n < 16: 4a + b ↦ a + 4b.
func digitRev16(n int) int { return n>>2 | (n&3)<<2 }

// laneFreq16 is the frequency a forward fft16Lanes leaves at position n < 16 (digit-reversed).
func laneFreq16(n int) int { return digitRev16(n) }

// laneFreq32 is the frequency a forward fft32Lanes leaves at position n < 32: 2m + e holds
// digitRev16(m) + 16e.
func laneFreq32(n int) int { return digitRev16(n>>1) + 16*(n&1) }

// laneCS32PadF64 and laneCS32PadF32 are the pads of a site of a 32×32 complex lane plane (elements): the
// two 16-point transforms of a column run at 64 site strides, (64·(2·laneN + pad)·size) mod 4096 bytes
// apart. A line-aligned site (pad 8 float64, 16 float32) puts all 16 points of such a transform 0 mod 4 KiB
// apart, in one L1 set: the 2-D transform took twice as long (measured, 32 samples: float64 70 µs against
// 28–33 µs, float32 29 µs against 15–19 µs). float64 pad 4 keeps the sites 32-byte aligned and spreads the
// points over two groups of sets (2 KiB apart); float32 pad 2 over eight (512 bytes apart).
const (
	laneCS32PadF64 = 4
	laneCS32PadF32 = 2
)

// fft32Lanes does, in place, count 32-point complex DFTs across the laneN lanes of z (the layout of
// fft16Lanes): forward, the 16-point transforms of the even and of the odd points (at twice the stride)
// and then the butterflies X[k] = E[k] + w^k O[k], X[k+16] = E[k] − w^k O[k] (w = e^{−2πi/32}) on the pairs
// of positions 2m, 2m + 1 (k = digitRev16(m)), leaving frequency laneFreq32(n) at position n; inverse, the
// butterflies with conjugate twiddles first, then the 16-point inverses: the unnormalised inverse (32·x).
func fft32Lanes[T float](z []T, stride, count, step int, inverse bool) {
	if count <= 0 {
		return
	}
	if need := (count-1)*step + 31*stride + 2*laneN; stride < 2*laneN || step < 0 || need > len(z) {
		panic(fmt.Sprintf("layers: fft32Lanes: %d transforms of stride %d and step %d need %d elements, have %d",
			count, stride, step, need, len(z)))
	}
	// a few transforms at a time: their three passes over the points then run in the L1 cache (passes over
	// whole planes stream from L2, or from L3 when several float64 planes are transformed together: the
	// ode-gerdes forward pass measured 5–10% slower that way)
	tw := laneTwiddles32[T](inverse)
	for t := 0; t < count; t += fft32Group {
		zt, n := z[t*step:], min(fft32Group, count-t)
		if !inverse {
			fft16Lanes(zt, 2*stride, n, step, false)
			fft16Lanes(zt[stride:], 2*stride, n, step, false)
		}
		butterfly32Lanes(zt, stride, n, step, inverse, &tw)
		if inverse {
			fft16Lanes(zt, 2*stride, n, step, true)
			fft16Lanes(zt[stride:], 2*stride, n, step, true)
		}
	}
}

// fft32Group is the number of transforms fft32Lanes takes through its three passes together (2: 35 KB of
// float64 points, within a 48 KB L1).
const fft32Group = 2

// laneTwiddles32 returns w^{digitRev16(m)} for m < 16, w = e^{∓2πi/32} (forward, inverse), as the real
// parts then the imaginary parts.
func laneTwiddles32[T float](inverse bool) (tw [32]T) {
	for m := 0; m < 16; m++ {
		s, c := math.Sincos(-2 * math.Pi * float64(digitRev16(m)) / 32)
		if inverse {
			s = -s
		}
		tw[m], tw[16+m] = T(c), T(s)
	}
	return tw
}

// butterfly32Lanes does the radix-2 pass of fft32Lanes: for each transform and m < 16, with e, o the
// complex lane vectors at positions 2m and 2m + 1 and t the twiddle w^{digitRev16(m)}: forward
// (e, o) ← (e + t·o, e − t·o); inverse (e, o) ← (e + o, conj(t)·(e − o)). tw is laneTwiddles32(inverse).
func butterfly32Lanes[T float](z []T, stride, count, step int, inverse bool, tw *[32]T) {
	if butterfly32LanesVec(z, stride, count, step, inverse, tw) {
		return
	}
	for t := 0; t < count; t++ {
		for m := 0; m < 16; m++ {
			eo := t*step + 2*m*stride
			oo := eo + stride
			er, ei, or, oi := lv(z, eo), lv(z, eo+laneN), lv(z, oo), lv(z, oo+laneN)
			wr, wi := tw[m], tw[16+m]
			if inverse {
				for l := range er {
					dr, di := er[l]-or[l], ei[l]-oi[l]
					er[l], ei[l] = er[l]+or[l], ei[l]+oi[l]
					or[l], oi[l] = wr*dr-wi*di, wr*di+wi*dr
				}
				continue
			}
			for l := range er {
				pr, pi := wr*or[l]-wi*oi[l], wr*oi[l]+wi*or[l]
				or[l], oi[l] = er[l]-pr, ei[l]-pi
				er[l], ei[l] = er[l]+pr, ei[l]+pi
			}
		}
	}
}

// fft2Lanes transforms np consecutive complex lane planes (side × side sites, side 16 or 32) of z in
// place: rows, then columns.
func fft2Lanes[T float](z []T, np, side int, inverse bool) {
	s := laneCS[T](side)
	w := side
	if side == 16 {
		fft16Lanes(z, s, w*np, w*s, inverse) // along each row
		for q := 0; q < np; q++ {
			fft16Lanes(z[q*w*w*s:(q+1)*w*w*s], w*s, w, s, inverse) // along each column
		}
		return
	}
	if side != 32 {
		panic(fmt.Sprintf("layers: fft2Lanes: side %d, want 16 or 32", side))
	}
	fft32Lanes(z, s, w*np, w*s, inverse)
	for q := 0; q < np; q++ {
		fft32Lanes(z[q*w*w*s:(q+1)*w*w*s], w*s, w, s, inverse)
	}
}

// Offsets in the activation vector of the lane engine (odePlan.lanes): after [x(t₁) | log-det | kinetic],
// per block and stage the stage inputs Y_i as real lane planes (C, V, laneN), then (kinetic only) the
// velocities k_i. Lanes past the batch hold the integration of a zero field and are never read out. The
// backward pass recomputes the features from Y_i (the vector sincos costs less than storing and reloading
// sin Y_i and cos Y_i).
func (p *odePlan) blocks() int                  { return (p.b + laneN - 1) / laneN }
func (p *odePlan) cvL() int                     { return p.c * p.v() * laneN }
func (p *odePlan) laneStateOff(blk, si int) int { return p.outSize() + (blk*p.stages()+si)*p.cvL() }
func (p *odePlan) laneVelOff(blk, si int) int {
	return p.outSize() + (p.blocks()*p.stages()+blk*p.stages()+si)*p.cvL()
}
func (p *odePlan) laneActsSize() int {
	per := 1
	if p.kinetic {
		per = 2
	}
	return p.outSize() + per*p.blocks()*p.stages()*p.cvL()
}

// laneWork holds one run's kernel spectra and a block's scratch, in the tensors' precision T.
type laneWork[T float] struct {
	p         *odePlan
	np        int  // feature pairs ⌈F·C/2⌉: features 2q and 2q+1 share complex plane q
	coef      []T  // (stages, C, np, V, 2): Ŵ_{o,2q}(t_i) − i·Ŵ_{o,2q+1}(t_i) at each spectral position
	coefConj  []T  // its complex conjugate
	centre    []T  // (stages, C, F): W_{o,(f,o)}(0, t_i)
	harmonic  bool // freqs are 1, 2, …
	sink      []T  // (C, |freqs|, V, L) sin ω_k y
	cosk      []T  // (C, |freqs|, V, L) cos ω_k y
	z         []T  // (np, V, 2, L) the feature pairs, then their spectra
	vz        []T  // (V, 2, L) one channel's spectrum
	dsum      []T  // (F·C, L) Σ_x h_j′
	arg       []T  // (V·L) sincos scratch
	ones      []T  // (V) ones, for the sums over sites
	onesPlane []T  // (V·L) ones
}

func newLaneWork[T float](p *odePlan, wp []T) *laneWork[T] {
	v, fc, L, nfr := p.v(), p.fc(), laneN, len(p.freqs)
	lw := &laneWork[T]{p: p, np: (fc + 1) / 2, harmonic: p.harmonic(),
		sink: make([]T, p.c*nfr*v*L), cosk: make([]T, p.c*nfr*v*L), dsum: make([]T, fc*L), arg: make([]T, v*L), ones: make([]T, v)}
	lw.onesPlane = make([]T, v*L)
	for i := range lw.ones {
		lw.ones[i] = 1
	}
	for i := range lw.onesPlane {
		lw.onesPlane[i] = 1
	}
	cs := laneCS[T](p.h)
	lw.z = make([]T, lw.np*v*cs)
	lw.vz = make([]T, v*cs)
	// the spectra of the K·C·F·C basis kernels, one per lane, in float64
	cs = laneCS[float64](p.h)
	oj := p.c * fc
	nk := p.k * oj
	nb := (nk + L - 1) / L
	base := make([]float64, nb*v*cs)
	for r := 0; r < nk; r++ {
		src := wp[r*p.np : (r+1)*p.np]
		blk, l := r/L, r%L
		for d, pi := range p.param {
			base[blk*v*cs+d*cs+l] = float64(src[pi])
		}
	}
	fft2Lanes(base, nb, p.h, false)
	bw := func(r, q int) (float64, float64) { // Ŵ_r at spectral position q
		o := (r/L)*v*cs + q*cs + r%L
		return base[o], base[o+L]
	}
	ns := p.stages()
	lw.coef = make([]T, ns*p.c*lw.np*v*2)
	lw.centre = make([]T, ns*p.c*p.nf)
	S := len(p.tab.c)
	for si := 0; si < ns; si++ {
		bt := TimeBasis(p.k, p.stageTime(si/S, si%S))
		for o := 0; o < p.c; o++ {
			for q := 0; q < lw.np; q++ {
				dst := lw.coef[((si*p.c+o)*lw.np+q)*v*2:][:v*2]
				for pos := 0; pos < v; pos++ {
					var ar, ai, br, bi float64
					for k, c := range bt {
						r := (k*p.c + o) * fc
						x, y := bw(r+2*q, pos)
						ar, ai = ar+c*x, ai+c*y
						if 2*q+1 < fc {
							x, y = bw(r+2*q+1, pos)
							br, bi = br+c*x, bi+c*y
						}
					}
					dst[2*pos], dst[2*pos+1] = T(ar+bi), T(ai-br) // Ŵ_a − iŴ_b
				}
			}
			for f := 0; f < p.nf; f++ {
				j := f*p.c + o
				var s float64
				for k, c := range bt {
					s += c * float64(wp[((k*p.c+o)*fc+j)*p.np+p.param[0]])
				}
				lw.centre[(si*p.c+o)*p.nf+f] = T(s)
			}
		}
	}
	lw.coefConj = make([]T, len(lw.coef))
	for i := 0; i < len(lw.coef); i += 2 {
		lw.coefConj[i], lw.coefConj[i+1] = lw.coef[i], -lw.coef[i+1]
	}
	return lw
}

// plane returns lane plane i (V·L numbers) of a (…, V, L) buffer.
func lanePlaneOf[T float](buf []T, i, v int) []T { return buf[i*v*laneN : (i+1)*v*laneN] }

// putSlot copies the real lane plane src into the real or imaginary part of the complex lane plane of
// feature j in z (features 2q, 2q+1 are the real and imaginary parts of plane q).
func (lw *laneWork[T]) putSlot(j int, src []T) {
	cs := laneCS[T](lw.p.h)
	v, L := lw.p.v(), laneN
	dst := lw.z[(j/2)*v*cs+(j%2)*L:]
	for s := 0; s < v; s++ {
		copy(dst[s*cs:s*cs+L], src[s*L:(s+1)*L])
	}
}

// sincos sets s, c to sin(w·x), cos(w·x) elementwise (sincosInPlace, vectorised).
func (lw *laneWork[T]) sincos(x []T, w float64, s, c []T) {
	if w == 1 {
		sincosInPlace(x, s, c)
		return
	}
	arg := lw.arg[:len(x)]
	for i, v := range x {
		arg[i] = T(w) * v
	}
	sincosInPlace(arg, s, c)
}

// features evaluates, for the state y (C, V, L) of a block, sin ω_k y and cos ω_k y into sink, cosk (or,
// with trig, sin y and cos y from the forward pass), the sums Σ_x h_j′ into dsum and the feature planes
// into z (untransformed).
func (lw *laneWork[T]) features(y, trig []T) {
	cs := laneCS[T](lw.p.h)
	p := lw.p
	v, L, n := p.v(), laneN, len(p.freqs)
	if p.fc()%2 == 1 { // the last plane's imaginary part: no feature
		last := lw.z[(lw.np-1)*v*cs:]
		for s := 0; s < v; s++ {
			clear(last[s*cs+L : (s+1)*cs])
		}
	}
	for c := 0; c < p.c; c++ {
		ys := lanePlaneOf(y, c, v)
		ds := lw.dsum[c*L : (c+1)*L]
		for l := range ds {
			ds[l] = T(v)
		}
		lw.putSlot(c, ys)
		var csum [laneN]T // Σ_x cos ω_k y
		for k, w := range p.freqs {
			sk, ck := lanePlaneOf(lw.sink, c*n+k, v), lanePlaneOf(lw.cosk, c*n+k, v)
			switch {
			case !lw.harmonic:
				lw.sincos(ys, w, sk, ck)
			case k == 0 && trig != nil:
				copy(sk, lanePlaneOf(trig, c, v))
				copy(ck, lanePlaneOf(trig, p.c+c, v))
			case k == 0:
				lw.sincos(ys, 1, sk, ck)
			default: // sin(k+1)x = sin kx cos x + cos kx sin x; cos(k+1)x = cos kx cos x − sin kx sin x
				sp, cp := lanePlaneOf(lw.sink, c*n+k-1, v), lanePlaneOf(lw.cosk, c*n+k-1, v)
				s1, c1 := lanePlaneOf(lw.sink, c*n, v), lanePlaneOf(lw.cosk, c*n, v)
				harmonicLanes(sp, cp, s1, c1, sk, ck, &csum)
			}
			// Σ_x h′: ω Σ cos ωy for the sine feature, −ω Σ sin ωy for the cosine one
			dsS := lw.dsum[((1+k)*p.c+c)*L:][:L]
			if k == 0 || !lw.harmonic {
				laneSum(ck, csum[:], 1, lw.ones)
			}
			for l := range dsS {
				dsS[l] = T(w) * csum[l]
			}
			lw.putSlot((1+k)*p.c+c, sk)
			if !p.odd {
				laneSum(sk, lw.dsum[((1+n+k)*p.c+c)*L:][:L], T(-w), lw.ones)
				lw.putSlot((1+n+k)*p.c+c, ck)
			}
		}
	}
}

// harmonicLanes sets sk = sp·c1 + cp·s1 and ck = cp·c1 − sp·s1 (the angle addition from sin, cos kx and
// sin, cos x to sin, cos (k+1)x) over lane planes of equal length, and sum[l] = Σ_sites ck of lane l.
func harmonicLanes[T float](sp, cp, s1, c1, sk, ck []T, sum *[laneN]T) {
	n := len(sp)
	if len(cp) != n || len(s1) != n || len(c1) != n || len(sk) != n || len(ck) != n || n%laneN != 0 {
		panic(fmt.Sprintf("layers: harmonicLanes: lengths %d, %d, %d, %d, %d, %d, want equal multiples of %d",
			len(sp), len(cp), len(s1), len(c1), len(sk), len(ck), laneN))
	}
	if harmonicLanesVec(sp, cp, s1, c1, sk, ck, sum) {
		return
	}
	*sum = [laneN]T{}
	for s := 0; s < n; s += laneN {
		a, b, c, d, e, f := lv(sp, s), lv(cp, s), lv(s1, s), lv(c1, s), lv(sk, s), lv(ck, s)
		for l := range sum {
			e[l], f[l] = a[l]*d[l]+b[l]*c[l], b[l]*d[l]-a[l]*c[l]
			sum[l] += f[l]
		}
	}
}

// adjointSites does yc[s] += as·h[s]·u[s] + wd ⊙ u2[s] over the first sites lane vectors of yc, u, u2
// (laneN apart) and of h (hstride apart).
func adjointSites[T float](yc, h, u, u2 []T, wd *[laneN]T, as T, sites, hstride int) {
	n := sites * laneN
	if len(yc) < n || len(u) < n || len(u2) < n || sites > 0 && len(h) < (sites-1)*hstride+laneN {
		panic(fmt.Sprintf("layers: adjointSites: %d sites: yc %d, u %d, u2 %d, h %d (stride %d) too short",
			sites, len(yc), len(u), len(u2), len(h), hstride))
	}
	if adjointSitesVec(yc, h, u, u2, wd, as, sites, hstride) {
		return
	}
	for s := 0; s < sites; s++ {
		ycs, hs, us, u2s := lv(yc, s*laneN), lv(h, s*hstride), lv(u, s*laneN), lv(u2, s*laneN)
		for l := range ycs {
			ycs[l] += as*hs[l]*us[l] + wd[l]*u2s[l]
		}
	}
}

// laneCDot does dst[2s] + i·dst[2s+1] += Σ_lanes g[s] conj z[s] at each of the first sites sites of the
// complex lane planes g and z (sites cs elements apart).
func laneCDot[T float](dst, g, z []T, sites, cs int) {
	if n := (sites-1)*cs + 2*laneN; sites > 0 && (len(dst) < 2*sites || len(g) < n || len(z) < n) {
		panic(fmt.Sprintf("layers: laneCDot: %d sites: dst %d, g %d, z %d too short", sites, len(dst), len(g), len(z)))
	}
	if laneCDotVec(dst, g, z, sites, cs) {
		return
	}
	for pos := 0; pos < sites; pos++ {
		gr, gi := lv(g, pos*cs), lv(g, pos*cs+laneN)
		zr, zi := lv(z, pos*cs), lv(z, pos*cs+laneN)
		var sr, sim, sr2, sim2 T
		for l := 0; l < laneN; l += 2 {
			sr += gr[l]*zr[l] + gi[l]*zi[l]
			sim += gi[l]*zr[l] - gr[l]*zi[l]
			sr2 += gr[l+1]*zr[l+1] + gi[l+1]*zi[l+1]
			sim2 += gi[l+1]*zr[l+1] - gr[l+1]*zi[l+1]
		}
		dst[2*pos] += sr + sr2
		dst[2*pos+1] += sim + sim2
	}
}

// lv is the lane vector of buf at off.
func lv[T float](buf []T, off int) *[laneN]T { return (*[laneN]T)(buf[off : off+laneN]) }

// laneSum sets dst[l] = a·Σ_s x[s·L + l], as the product onesᵀ·X of the sites × lanes matrix X (the
// vector product kernels; ones holds at least len(x)/laneN ones).
func laneSum[T float](x, dst []T, a T, ones []T) {
	n := len(x) / laneN
	axpyRowsSet(dst[:laneN], ones[:n], x, laneN, 0)
	for l := range dst[:laneN] {
		dst[l] *= a
	}
}

// spectral sets, at each of the v sites, dst = Σ_{q<n} c_q ⊙ z_q (complex) with c_q the scalar
// coef[q·coefStride + 2·site] + i·coef[q·coefStride + 2·site + 1] and z_q the lane vector of complex lane
// plane q of src (sites cs elements apart, planes v·cs); dst is one complex lane plane.
func spectral[T float](dst, src, coef []T, n, v, cs, coefStride int) {
	if n < 1 || len(dst) < v*cs || len(src) < n*v*cs || len(coef) < (n-1)*coefStride+2*v {
		panic(fmt.Sprintf("layers: spectral: %d terms over %d sites: dst %d, src %d, coef %d (stride %d) too short",
			n, v, len(dst), len(src), len(coef), coefStride))
	}
	if spectralVec(dst, src, coef, n, v*cs, coefStride, v, cs) {
		return
	}
	const L = laneN
	for pos := 0; pos < v; pos++ {
		dr, di := lv(dst, pos*cs), lv(dst, pos*cs+L)
		*dr, *di = [laneN]T{}, [laneN]T{}
		for q := 0; q < n; q++ {
			cr, ci := coef[q*coefStride+2*pos], coef[q*coefStride+2*pos+1]
			zr, zi := lv(src, (q*v+pos)*cs), lv(src, (q*v+pos)*cs+L)
			for l := range dr {
				dr[l] += cr*zr[l] - ci*zi[l]
				di[l] += cr*zi[l] + ci*zr[l]
			}
		}
	}
}

// field evaluates v (C, V, L) and div v (per lane, into div) at the state y of a block, stage si.
func (lw *laneWork[T]) field(y []T, si int, k []T, div *[laneN]float64) {
	cs := laneCS[T](lw.p.h)
	p := lw.p
	v, L := p.v(), laneN
	lw.features(y, nil)
	fft2Lanes(lw.z, lw.np, p.h, false)
	scale := 1 / T(v)
	for o := 0; o < p.c; o++ {
		spectral(lw.vz, lw.z, lw.coef[(si*p.c+o)*lw.np*v*2:], lw.np, v, cs, v*2)
		fft2Lanes(lw.vz, 1, p.h, true)
		ko := lanePlaneOf(k, o, v)
		for s := 0; s < v; s++ {
			src, dst := lv(lw.vz, s*cs), lv(ko, s*L)
			for l := range dst {
				dst[l] = scale * src[l]
			}
		}
	}
	*div = [laneN]float64{}
	for o := 0; o < p.c; o++ {
		for f := 0; f < p.nf; f++ {
			c := float64(lw.centre[(si*p.c+o)*p.nf+f])
			for l, e := range lw.dsum[(f*p.c+o)*L:][:L] {
				div[l] += c * float64(e)
			}
		}
	}
}

// axpyT does y += a·x (axpyRows: vectorised where the CPU allows).
func axpyT[T float](y, x []T, a T) {
	c := [1]T{a}
	axpyRows(y, c[:], x[:len(y)], len(y))
}

// odeForwardLanes integrates every sample (laneN at a time) and fills the activations (lane layout).
func odeForwardLanes[T float](p *odePlan, x, wp, acts []T) {
	lw := newLaneWork(p, wp)
	cv, cvL, S, L := p.c*p.v(), p.cvL(), len(p.tab.c), laneN
	h := p.hstep()
	xe, ld, kin := acts[:p.xSize()], acts[p.xSize():p.xSize()+p.b], acts[p.xSize()+p.b:p.outSize()]
	cur, y, dx := make([]T, cvL), make([]T, cvL), make([]T, cvL)
	ks := make([]T, S*cvL)
	var div [laneN]float64
	for blk := 0; blk < p.blocks(); blk++ {
		nb := min(L, p.b-blk*L)
		clear(cur)
		for l := 0; l < nb; l++ {
			for e, val := range x[(blk*L+l)*cv : (blk*L+l+1)*cv] {
				cur[e*L+l] = val
			}
		}
		var lsum, ksum [laneN]float64
		for n := 0; n < p.steps; n++ {
			clear(dx)
			for i := 0; i < S; i++ {
				copy(y, cur)
				for j, a := range p.tab.a[i] {
					if a != 0 {
						axpyT(y, ks[j*cvL:(j+1)*cvL], T(h*a))
					}
				}
				si := n*S + i
				copy(acts[p.laneStateOff(blk, si):][:cvL], y)
				k := ks[i*cvL : (i+1)*cvL]
				lw.field(y, si, k, &div)
				if p.kinetic {
					copy(acts[p.laneVelOff(blk, si):][:cvL], k)
				}
				if bi := p.tab.b[i]; bi != 0 {
					axpyT(dx, k, T(h*bi))
					var e2 [laneN]float64
					for s := 0; s+L <= len(k); s += L {
						ke := lv(k, s)
						for l := range e2 {
							e2[l] += float64(ke[l]) * float64(ke[l])
						}
					}
					for l := range lsum {
						lsum[l] += h * bi * div[l]
						ksum[l] += math.Abs(h) * bi * e2[l]
					}
				}
			}
			for e, d := range dx {
				cur[e] += d
			}
		}
		for l := 0; l < nb; l++ {
			b := blk*L + l
			for e := 0; e < cv; e++ {
				xe[b*cv+e] = cur[e*L+l]
			}
			ld[b], kin[b] = T(lsum[l]), T(ksum[l])
		}
	}
}

// odeBackwardLanes computes [∂x | ∂w] from the activations (lane layout) and the output gradient gout:
// odeBackward's adjoint recursion with the adjoints X̄, Ȳ_i, k̄_i kept on the sites, and the field's
// vector-Jacobian product by pairs of features (see the lane engine's doc).
func odeBackwardLanes[T float](p *odePlan, wp, acts, gout []T, out []T) error {
	cs := laneCS[T](p.h)
	gx, gld, gkin := gout[:p.xSize()], gout[p.xSize():p.xSize()+p.b], gout[p.xSize()+p.b:]
	if !p.kinetic {
		for b, g := range gkin {
			if g != 0 {
				return fmt.Errorf("sample %d: the kinetic energy has a gradient but was not kept differentiable", b)
			}
		}
	}
	lw := newLaneWork(p, wp)
	v, cv, cvL, fc, ns, S, L := p.v(), p.c*p.v(), p.cvL(), p.fc(), p.stages(), len(p.tab.c), laneN
	nfr := len(p.freqs)
	h := p.hstep()
	scale := 1 / T(v)
	acc := make([]T, ns*p.c*lw.np*v*2)   // per stage: Σ_lanes ĝ_o conj Z_q, (C, np, V, 2)
	dacc := make([]float64, ns*p.c*p.nf) // per stage: Σ_lanes d̄ Σ_x h_f′(Y_o)
	xbar, gbar := make([]T, cvL), make([]T, cvL)
	ybar := make([]T, S*cvL)
	gz := make([]T, p.c*v*cs) // the spectra ĝ_o
	var lbar, kbar, dbar [laneN]T
	for blk := 0; blk < p.blocks(); blk++ {
		nb := min(L, p.b-blk*L)
		clear(xbar)
		lbar, kbar = [laneN]T{}, [laneN]T{}
		for l := 0; l < nb; l++ {
			b := blk*L + l
			for e, val := range gx[b*cv : (b+1)*cv] {
				xbar[e*L+l] = val
			}
			lbar[l], kbar[l] = gld[b], gkin[b]
		}
		for n := p.steps - 1; n >= 0; n-- {
			for i := S - 1; i >= 0; i-- {
				si := n*S + i
				// k̄_i = h b_i X̄' + 2|h| b_i κ̄ k_i + h Σ_{j>i} a_ji Ȳ_j
				bi := p.tab.b[i]
				clear(gbar)
				if bi != 0 {
					axpyT(gbar, xbar, T(h*bi))
					if p.kinetic {
						kv := acts[p.laneVelOff(blk, si):][:cvL]
						a := T(2 * math.Abs(h) * bi)
						for s := 0; s < cvL; s += L {
							g, k := gbar[s:s+L], kv[s:s+L]
							for l := range g {
								g[l] += a * kbar[l] * k[l]
							}
						}
					}
				}
				for j := i + 1; j < S; j++ {
					if a := p.tab.a[j][i]; a != 0 {
						axpyT(gbar, ybar[j*cvL:(j+1)*cvL], T(h*a))
					}
				}
				for l := range dbar {
					dbar[l] = T(h*bi) * lbar[l]
				}
				// ĝ_o: one complex transform per channel
				clear(gz)
				for o := 0; o < p.c; o++ {
					src, dst := lanePlaneOf(gbar, o, v), gz[o*v*cs:]
					for s := 0; s < v; s++ {
						copy(dst[s*cs:s*cs+L], src[s*L:(s+1)*L])
					}
				}
				fft2Lanes(gz, p.c, p.h, false)
				// the features at Y_i and their spectra
				lw.features(acts[p.laneStateOff(blk, si):][:cvL], nil)
				fft2Lanes(lw.z, lw.np, p.h, false)
				// the kernels' gradient: Σ_lanes ĝ_o conj Z_q
				for o := 0; o < p.c; o++ {
					gs := gz[o*v*cs:]
					for q := 0; q < lw.np; q++ {
						dst := acc[((si*p.c+o)*lw.np+q)*v*2:][:v*2]
						zs := lw.z[q*v*cs:]
						laneCDot(dst, gs, zs, v, cs)
					}
				}
				// Ȳ_c = Σ_f h̄_{(f,c)} h_f′(Y_c) + d̄ Σ_f W_{c,(f,c)}(0) h_f″(Y_c), h̄ by pairs
				yb := ybar[i*cvL : (i+1)*cvL]
				clear(yb)
				for q := 0; q < lw.np; q++ {
					lw.pairAdjoint(si, q, gz)
					fft2Lanes(lw.vz, 1, p.h, true)
					for part := 0; part < 2 && 2*q+part < fc; part++ {
						// h̄ of feature 2q + part: the real or imaginary parts of vz, times scale
						j := 2*q + part
						f, c := j/p.c, j%p.c
						yc := lanePlaneOf(yb, c, v)
						cen := lw.centre[(si*p.c+c)*p.nf+f]
						if f == 0 { // h′ = 1, h″ = 0
							var zero [laneN]T
							adjointSites(yc, lw.vz[part*L:], lw.onesPlane, lw.onesPlane, &zero, scale, v, cs)
							for l := range dbar {
								dacc[(si*p.c+c)*p.nf] += float64(dbar[l]) * float64(v)
							}
							continue
						}
						// h′ = a·u, h″ = −ω²·u′: (u, u′, a) = (cos, sin, ω) for sin ωy, (sin, cos, −ω) for cos ωy
						k, isCos := f-1, false
						if k >= nfr {
							k, isCos = k-nfr, true
						}
						w := p.freqs[k]
						u, u2, a := lanePlaneOf(lw.cosk, c*nfr+k, v), lanePlaneOf(lw.sink, c*nfr+k, v), T(w)
						if isCos {
							u, u2, a = u2, u, T(-w)
						}
						wc := -cen * T(w*w)
						var wd [laneN]T
						for l := range wd {
							wd[l] = wc * dbar[l]
						}
						adjointSites(yc, lw.vz[part*L:], u, u2, &wd, a*scale, v, cs)
						dsum := lw.dsum[j*L : (j+1)*L]
						var t float64
						for l, d := range dsum {
							t += float64(dbar[l]) * float64(d)
						}
						dacc[(si*p.c+c)*p.nf+f] += t
					}
				}
			}
			for i := 0; i < S; i++ {
				axpyT(xbar, ybar[i*cvL:(i+1)*cvL], 1)
			}
		}
		for l := 0; l < nb; l++ {
			b := blk*L + l
			for e := 0; e < cv; e++ {
				out[b*cv+e] = xbar[e*L+l]
			}
		}
	}
	// ∂w[k] = Σ_stages b_k(t_i) (pair q's features 2q, 2q+1: the real part and minus the imaginary part of
	// the inverse transform of acc / V, summed over each parameter's offsets), plus the centre taps'
	// divergence terms. One lane per (k, o, q).
	dw := out[p.xSize():]
	nl := p.k * p.c * lw.np
	nbk := (nl + L - 1) / L
	spec := make([]T, nbk*v*cs)
	bts := make([][]float64, ns)
	for si := range bts {
		bts[si] = TimeBasis(p.k, p.stageTime(si/S, si%S))
	}
	for k := 0; k < p.k; k++ {
		for o := 0; o < p.c; o++ {
			for q := 0; q < lw.np; q++ {
				r := (k*p.c+o)*lw.np + q
				dst := spec[(r/L)*v*cs+r%L:]
				for si := 0; si < ns; si++ {
					bk := T(bts[si][k])
					if bk == 0 {
						continue
					}
					src := acc[((si*p.c+o)*lw.np+q)*v*2:][:v*2]
					for pos := 0; pos < v; pos++ {
						dst[pos*cs] += bk * src[2*pos]
						dst[pos*cs+L] += bk * src[2*pos+1]
					}
				}
			}
		}
	}
	fft2Lanes(spec, nbk, p.h, true)
	sums := make([]float64, p.np)
	for k := 0; k < p.k; k++ {
		for o := 0; o < p.c; o++ {
			for j := 0; j < fc; j++ {
				q, part := j/2, j%2
				r := (k*p.c+o)*lw.np + q
				src := spec[(r/L)*v*cs+part*L+r%L:]
				sign := float64(scale)
				if part == 1 {
					sign = -sign
				}
				clear(sums)
				for d, pi := range p.param {
					sums[pi] += sign * float64(src[d*cs])
				}
				if c := j % p.c; c == o {
					f := j / p.c
					for si := 0; si < ns; si++ {
						sums[p.param[0]] += bts[si][k] * dacc[(si*p.c+o)*p.nf+f]
					}
				}
				dst := dw[((k*p.c+o)*fc+j)*p.np:][:p.np]
				for pi, s := range sums {
					dst[pi] = T(s)
				}
			}
		}
	}
	return nil
}

// pairAdjoint sets lw.vz = Σ_o conj(coef_{o,q}) ĝ_o: the spectrum of h̄_{2q} + i·h̄_{2q+1}.
func (lw *laneWork[T]) pairAdjoint(si, q int, gz []T) {
	p := lw.p
	v := p.v()
	spectral(lw.vz, gz, lw.coefConj[((si*p.c)*lw.np+q)*v*2:], p.c, v, laneCS[T](p.h), lw.np*v*2)
}
