package layers

import (
	"math"
	"math/bits"
)

// Real 2-D FFTs for the fused ODE op (ode_fused.go): power-of-two H×W lattices, H, W ≥ 2, float64 in
// and complex128 half spectra out. They allocate nothing per call.

// pow2FFT is an in-place unnormalised complex DFT of a power-of-two length n ≥ 2, iterative radix-2
// (decimation in time): a[k] ← Σ_x e^{∓2πi k·x/n} a[x], minus sign forward, plus sign inverse.
type pow2FFT struct {
	n   int
	rev []int        // the bit-reversal permutation
	tw  []complex128 // e^{−2πi k/n}, k < n/2
}

func newPow2FFT(n int) *pow2FFT {
	f := &pow2FFT{n: n, rev: make([]int, n), tw: make([]complex128, n/2)}
	shift := 64 - uint(bits.Len(uint(n-1)))
	for i := range f.rev {
		f.rev[i] = int(bits.Reverse64(uint64(i)) >> shift)
	}
	for k := range f.tw {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		f.tw[k] = complex(c, s)
	}
	return f
}

// transform transforms one sequence a of length n.
func (f *pow2FFT) transform(a []complex128, inverse bool) {
	n := f.n
	if n == 16 {
		if inverse {
			ifft16((*[16]complex128)(a))
		} else {
			fft16((*[16]complex128)(a))
		}
		return
	}
	a = a[:n]
	for i, r := range f.rev {
		if i < r {
			a[i], a[r] = a[r], a[i]
		}
	}
	// the first two stages need no multiplications: twiddles 1 and ∓i
	for s := 0; s+1 < n; s += 2 {
		u, v := a[s], a[s+1]
		a[s], a[s+1] = u+v, u-v
	}
	if n >= 4 {
		for s := 0; s < n; s += 4 {
			u0, u1, v0, v1 := a[s], a[s+1], a[s+2], a[s+3]
			// v1 · (∓i): forward −i, inverse +i
			var w1 complex128
			if inverse {
				w1 = complex(-imag(v1), real(v1))
			} else {
				w1 = complex(imag(v1), -real(v1))
			}
			a[s], a[s+2] = u0+v0, u0-v0
			a[s+1], a[s+3] = u1+w1, u1-w1
		}
	}
	for size := 8; size <= n; size <<= 1 {
		half, step := size/2, n/size
		for start := 0; start < n; start += size {
			lo, hi := a[start:start+half], a[start+half:start+size]
			for j := range lo {
				w := f.tw[j*step]
				if inverse {
					w = complex(real(w), -imag(w))
				}
				u, v := lo[j], hi[j]
				t := complex(real(v)*real(w)-imag(v)*imag(w), real(v)*imag(w)+imag(v)*real(w))
				lo[j], hi[j] = u+t, u-t
			}
		}
	}
}

// realFFT2 is the 2-D DFT of real h×w planes (powers of two, both ≥ 2) as half spectra: the columns
// k₂ = 0 … w/2 of X̂[k₁, k₂] = Σ_x e^{−2πi (k₁x₁/h + k₂x₂/w)} X[x], stored column-major (index k₂·h + k₁, so
// that the second pass transforms contiguous runs); the other columns follow from X̂[−k] = conj X̂[k].
// Rows are transformed two at a time as the real and imaginary parts of one complex sequence.
type realFFT2 struct {
	h, w, wh int
	row, col *pow2FFT
	z        []complex128 // one row, scratch
	z2       []complex128 // one column, scratch
}

func newRealFFT2(h, w int) *realFFT2 {
	return &realFFT2{h: h, w: w, wh: w/2 + 1, row: newPow2FFT(w), col: newPow2FFT(h), z: make([]complex128, w), z2: make([]complex128, h)}
}

// supportedFFT reports whether realFFT2 handles an h×w lattice.
func supportedFFT(h, w int) bool {
	return h >= 2 && w >= 2 && h&(h-1) == 0 && w&(w-1) == 0
}

// forward writes the half spectrum of x (h·w) to out (wh·h).
func (f *realFFT2) forward(x []float64, out []complex128) {
	h, w, z := f.h, f.w, f.z
	out = out[:f.wh*h]
	for r := 0; r < h; r += 2 {
		a, b := x[r*w:(r+1)*w], x[(r+1)*w:(r+2)*w]
		if w == 16 {
			fft16Pair((*[16]float64)(a), (*[16]float64)(b), (*[16]complex128)(z))
		} else {
			b = b[:len(a)]
			for i := range z {
				z[i] = complex(a[i], b[i])
			}
			f.row.transform(z, false)
		}
		// Z = A + iB with A, B the spectra of the real rows: A[k] = (Z[k] + conj Z[−k])/2,
		// B[k] = (Z[k] − conj Z[−k])/(2i).
		for k := 0; k < f.wh; k++ {
			p, q := real(z[k]), imag(z[k])
			zm := z[(w-k)&(w-1)]
			rr, s := real(zm), imag(zm)
			out[k*h+r] = complex(0.5*(p+rr), 0.5*(q-s))
			out[k*h+r+1] = complex(0.5*(q+s), 0.5*(rr-p))
		}
	}
	// Columns 0 and w/2 are real (the rows' spectra at k₂ = 0 and w/2): one complex transform of
	// col₀ + i·col_{w/2}, split like the rows.
	c0, cn, z2 := out[:h], out[(f.wh-1)*h:f.wh*h], f.z2
	for r := range z2 {
		z2[r] = complex(real(c0[r]), real(cn[r]))
	}
	f.col.transform(z2, false)
	for k := range z2 {
		p, q := real(z2[k]), imag(z2[k])
		zm := z2[(h-k)&(h-1)]
		rr, s := real(zm), imag(zm)
		c0[k] = complex(0.5*(p+rr), 0.5*(q-s))
		cn[k] = complex(0.5*(q+s), 0.5*(rr-p))
	}
	for k := 1; k < f.wh-1; k++ {
		f.col.transform(out[k*h:(k+1)*h], false)
	}
}

// inverse writes the unnormalised inverse transform of the half spectrum spec (wh·h, overwritten) to x
// (h·w): h·w times the real plane whose half spectrum spec is.
func (f *realFFT2) inverse(spec []complex128, x []float64) {
	h, w, wh, z := f.h, f.w, f.wh, f.z
	spec = spec[:wh*h]
	// Columns 0 and w/2 transform back to real sequences: one complex transform of col₀ + i·col_{w/2}.
	c0, cn, z2 := spec[:h], spec[(wh-1)*h:wh*h], f.z2
	for k, a := range c0 {
		b := cn[k]
		z2[k] = complex(real(a)-imag(b), imag(a)+real(b))
	}
	f.col.transform(z2, true)
	for r, v := range z2 {
		c0[r], cn[r] = complex(real(v), 0), complex(imag(v), 0)
	}
	for k := 1; k < wh-1; k++ {
		f.col.transform(spec[k*h:(k+1)*h], true)
	}
	for r := 0; r < h; r += 2 {
		for k := 0; k < wh; k++ {
			a, b := spec[k*h+r], spec[k*h+r+1]
			z[k] = complex(real(a)-imag(b), imag(a)+real(b)) // A + iB
		}
		for k := wh; k < w; k++ {
			a, b := spec[(w-k)*h+r], spec[(w-k)*h+r+1]
			z[k] = complex(real(a)+imag(b), real(b)-imag(a)) // conj A[−k] + i conj B[−k]
		}
		xa, xb := x[r*w:(r+1)*w], x[(r+1)*w:(r+2)*w]
		if w == 16 {
			ifft16Pair((*[16]complex128)(z), (*[16]float64)(xa), (*[16]float64)(xb))
			continue
		}
		f.row.transform(z, true)
		xb = xb[:len(xa)]
		for i, v := range z[:len(xa)] {
			xa[i], xb[i] = real(v), imag(v)
		}
	}
}

// The 16-point DFT, the lattice side of the benchmark flows, unrolled as 4×4 (radix 4): with n = 4n₁ + n₂
// and k = k₁ + 4k₂, X[k] = Σ_{n₂} W₄^{n₂k₂} W₁₆^{n₂k₁} Σ_{n₁} W₄^{n₁k₁} x[4n₁ + n₂] (W_N = e^{∓2πi/N}): four
// 4-point DFTs, nine twiddles, four 4-point DFTs, the output in natural order (no bit reversal).

// dft4 is the forward 4-point DFT (W₄ = −i), idft4 the inverse (+i).
func dft4(a0, a1, a2, a3 complex128) (complex128, complex128, complex128, complex128) {
	t0, t1, t2, d := a0+a2, a0-a2, a1+a3, a1-a3
	t3 := complex(imag(d), -real(d))
	return t0 + t2, t1 + t3, t0 - t2, t1 - t3
}

func idft4(a0, a1, a2, a3 complex128) (complex128, complex128, complex128, complex128) {
	t0, t1, t2, d := a0+a2, a0-a2, a1+a3, a1-a3
	t3 := complex(-imag(d), real(d))
	return t0 + t2, t1 + t3, t0 - t2, t1 - t3
}

// cmul is a·b.
func cmul(a, b complex128) complex128 {
	return complex(real(a)*real(b)-imag(a)*imag(b), real(a)*imag(b)+imag(a)*real(b))
}

// W₁₆^k = e^{−2πik/16} for k = 1, 2, 3, 6, 9 (the inverse uses their conjugates).
const (
	c16, s16 = 0.92387953251128675613, 0.38268343236508977173 // cos, sin π/8
	h16      = 0.70710678118654752440                         // √2/2
)

// fft16 is the forward 16-point DFT in place.
func fft16(a *[16]complex128) {
	const (
		w1 = complex(c16, -s16)
		w2 = complex(h16, -h16)
		w3 = complex(s16, -c16)
		w6 = complex(-h16, -h16)
		w9 = complex(-c16, s16)
	)
	y00, y01, y02, y03 := dft4(a[0], a[4], a[8], a[12])
	y10, y11, y12, y13 := dft4(a[1], a[5], a[9], a[13])
	y20, y21, y22, y23 := dft4(a[2], a[6], a[10], a[14])
	y30, y31, y32, y33 := dft4(a[3], a[7], a[11], a[15])
	y11, y12, y13 = cmul(y11, w1), cmul(y12, w2), cmul(y13, w3)
	y21, y22, y23 = cmul(y21, w2), complex(imag(y22), -real(y22)), cmul(y23, w6)
	y31, y32, y33 = cmul(y31, w3), cmul(y32, w6), cmul(y33, w9)
	a[0], a[4], a[8], a[12] = dft4(y00, y10, y20, y30)
	a[1], a[5], a[9], a[13] = dft4(y01, y11, y21, y31)
	a[2], a[6], a[10], a[14] = dft4(y02, y12, y22, y32)
	a[3], a[7], a[11], a[15] = dft4(y03, y13, y23, y33)
}

// ifft16 is the inverse (unnormalised) 16-point DFT in place.
func ifft16(a *[16]complex128) {
	const (
		w1 = complex(c16, s16)
		w2 = complex(h16, h16)
		w3 = complex(s16, c16)
		w6 = complex(-h16, h16)
		w9 = complex(-c16, -s16)
	)
	y00, y01, y02, y03 := idft4(a[0], a[4], a[8], a[12])
	y10, y11, y12, y13 := idft4(a[1], a[5], a[9], a[13])
	y20, y21, y22, y23 := idft4(a[2], a[6], a[10], a[14])
	y30, y31, y32, y33 := idft4(a[3], a[7], a[11], a[15])
	y11, y12, y13 = cmul(y11, w1), cmul(y12, w2), cmul(y13, w3)
	y21, y22, y23 = cmul(y21, w2), complex(-imag(y22), real(y22)), cmul(y23, w6)
	y31, y32, y33 = cmul(y31, w3), cmul(y32, w6), cmul(y33, w9)
	a[0], a[4], a[8], a[12] = idft4(y00, y10, y20, y30)
	a[1], a[5], a[9], a[13] = idft4(y01, y11, y21, y31)
	a[2], a[6], a[10], a[14] = idft4(y02, y12, y22, y32)
	a[3], a[7], a[11], a[15] = idft4(y03, y13, y23, y33)
}

// fft16Pair is fft16 of the sequence a + i·b (two real rows), written to z.
func fft16Pair(a, b *[16]float64, z *[16]complex128) {
	const (
		w1 = complex(c16, -s16)
		w2 = complex(h16, -h16)
		w3 = complex(s16, -c16)
		w6 = complex(-h16, -h16)
		w9 = complex(-c16, s16)
	)
	y00, y01, y02, y03 := dft4(complex(a[0], b[0]), complex(a[4], b[4]), complex(a[8], b[8]), complex(a[12], b[12]))
	y10, y11, y12, y13 := dft4(complex(a[1], b[1]), complex(a[5], b[5]), complex(a[9], b[9]), complex(a[13], b[13]))
	y20, y21, y22, y23 := dft4(complex(a[2], b[2]), complex(a[6], b[6]), complex(a[10], b[10]), complex(a[14], b[14]))
	y30, y31, y32, y33 := dft4(complex(a[3], b[3]), complex(a[7], b[7]), complex(a[11], b[11]), complex(a[15], b[15]))
	y11, y12, y13 = cmul(y11, w1), cmul(y12, w2), cmul(y13, w3)
	y21, y22, y23 = cmul(y21, w2), complex(imag(y22), -real(y22)), cmul(y23, w6)
	y31, y32, y33 = cmul(y31, w3), cmul(y32, w6), cmul(y33, w9)
	z[0], z[4], z[8], z[12] = dft4(y00, y10, y20, y30)
	z[1], z[5], z[9], z[13] = dft4(y01, y11, y21, y31)
	z[2], z[6], z[10], z[14] = dft4(y02, y12, y22, y32)
	z[3], z[7], z[11], z[15] = dft4(y03, y13, y23, y33)
}

// ifft16Pair is ifft16 of z written as its real parts to a and imaginary parts to b.
func ifft16Pair(z *[16]complex128, a, b *[16]float64) {
	const (
		w1 = complex(c16, s16)
		w2 = complex(h16, h16)
		w3 = complex(s16, c16)
		w6 = complex(-h16, h16)
		w9 = complex(-c16, -s16)
	)
	y00, y01, y02, y03 := idft4(z[0], z[4], z[8], z[12])
	y10, y11, y12, y13 := idft4(z[1], z[5], z[9], z[13])
	y20, y21, y22, y23 := idft4(z[2], z[6], z[10], z[14])
	y30, y31, y32, y33 := idft4(z[3], z[7], z[11], z[15])
	y11, y12, y13 = cmul(y11, w1), cmul(y12, w2), cmul(y13, w3)
	y21, y22, y23 = cmul(y21, w2), complex(-imag(y22), real(y22)), cmul(y23, w6)
	y31, y32, y33 = cmul(y31, w3), cmul(y32, w6), cmul(y33, w9)
	var x0, x1, x2, x3 complex128
	x0, x1, x2, x3 = idft4(y00, y10, y20, y30)
	a[0], b[0], a[4], b[4], a[8], b[8], a[12], b[12] = real(x0), imag(x0), real(x1), imag(x1), real(x2), imag(x2), real(x3), imag(x3)
	x0, x1, x2, x3 = idft4(y01, y11, y21, y31)
	a[1], b[1], a[5], b[5], a[9], b[9], a[13], b[13] = real(x0), imag(x0), real(x1), imag(x1), real(x2), imag(x2), real(x3), imag(x3)
	x0, x1, x2, x3 = idft4(y02, y12, y22, y32)
	a[2], b[2], a[6], b[6], a[10], b[10], a[14], b[14] = real(x0), imag(x0), real(x1), imag(x1), real(x2), imag(x2), real(x3), imag(x3)
	x0, x1, x2, x3 = idft4(y03, y13, y23, y33)
	a[3], b[3], a[7], b[7], a[11], b[11], a[15], b[15] = real(x0), imag(x0), real(x1), imag(x1), real(x2), imag(x2), real(x3), imag(x3)
}
