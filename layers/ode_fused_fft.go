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

// rows transforms every column of the row-major (n, m) array a at once: the butterflies combine whole
// rows (contiguous in memory), so the columns are transformed side by side.
func (f *pow2FFT) rows(a []complex128, m int, inverse bool) {
	n := f.n
	a = a[:n*m]
	for i, r := range f.rev {
		if i < r {
			ri, rr := a[i*m:(i+1)*m], a[r*m:(r+1)*m]
			for c := range ri {
				ri[c], rr[c] = rr[c], ri[c]
			}
		}
	}
	for size := 2; size <= n; size <<= 1 {
		half, step := size/2, n/size
		for start := 0; start < n; start += size {
			for j := 0; j < half; j++ {
				lo := a[(start+j)*m : (start+j+1)*m]
				hi := a[(start+j+half)*m : (start+j+half+1)*m]
				hi = hi[:len(lo)]
				if j == 0 {
					for c, u := range lo {
						v := hi[c]
						lo[c], hi[c] = u+v, u-v
					}
					continue
				}
				w := f.tw[j*step]
				if inverse {
					w = complex(real(w), -imag(w))
				}
				wr, wi := real(w), imag(w)
				for c, u := range lo {
					v := hi[c]
					t := complex(real(v)*wr-imag(v)*wi, real(v)*wi+imag(v)*wr)
					lo[c], hi[c] = u+t, u-t
				}
			}
		}
	}
}

// realFFT2 is the 2-D DFT of real h×w planes (powers of two, both ≥ 2) as half spectra: the rows
// k₁ = 0 … h−1 and columns k₂ = 0 … w/2 of X̂[k₁, k₂] = Σ_x e^{−2πi (k₁x₁/h + k₂x₂/w)} X[x] (row-major,
// wh = w/2+1 per row); the other columns follow from X̂[−k] = conj X̂[k]. Rows are transformed two at a
// time as the real and imaginary parts of one complex sequence, columns side by side (pow2FFT.rows).
type realFFT2 struct {
	h, w, wh int
	row, col *pow2FFT
	z        []complex128 // one row, scratch
}

func newRealFFT2(h, w int) *realFFT2 {
	return &realFFT2{h: h, w: w, wh: w/2 + 1, row: newPow2FFT(w), col: newPow2FFT(h), z: make([]complex128, w)}
}

// supportedFFT reports whether realFFT2 handles an h×w lattice.
func supportedFFT(h, w int) bool {
	return h >= 2 && w >= 2 && h&(h-1) == 0 && w&(w-1) == 0
}

// forward writes the half spectrum of x (h·w) to out (h·wh).
func (f *realFFT2) forward(x []float64, out []complex128) {
	w, wh, z := f.w, f.wh, f.z
	for r := 0; r < f.h; r += 2 {
		a, b := x[r*w:(r+1)*w], x[(r+1)*w:(r+2)*w]
		for i := range z {
			z[i] = complex(a[i], b[i])
		}
		f.row.transform(z, false)
		// Z = A + iB with A, B the spectra of the real rows: A[k] = (Z[k] + conj Z[−k])/2,
		// B[k] = (Z[k] − conj Z[−k])/(2i).
		oa, ob := out[r*wh:(r+1)*wh], out[(r+1)*wh:(r+2)*wh]
		for k := range oa {
			p, q := real(z[k]), imag(z[k])
			zm := z[(w-k)&(w-1)]
			rr, s := real(zm), imag(zm)
			oa[k] = complex(0.5*(p+rr), 0.5*(q-s))
			ob[k] = complex(0.5*(q+s), 0.5*(rr-p))
		}
	}
	f.col.rows(out, wh, false)
}

// inverse writes the unnormalised inverse transform of the half spectrum spec (h·wh, overwritten) to x
// (h·w): h·w times the real plane whose half spectrum spec is.
func (f *realFFT2) inverse(spec []complex128, x []float64) {
	w, wh, z := f.w, f.wh, f.z
	f.col.rows(spec, wh, true)
	for r := 0; r < f.h; r += 2 {
		A, B := spec[r*wh:(r+1)*wh], spec[(r+1)*wh:(r+2)*wh]
		for k := range A {
			a, b := A[k], B[k]
			z[k] = complex(real(a)-imag(b), imag(a)+real(b)) // A + iB
		}
		for k := wh; k < w; k++ {
			a, b := A[w-k], B[w-k]
			z[k] = complex(real(a)+imag(b), real(b)-imag(a)) // conj A[−k] + i conj B[−k]
		}
		f.row.transform(z, true)
		xa, xb := x[r*w:(r+1)*w], x[(r+1)*w:(r+2)*w]
		for i, v := range z {
			xa[i], xb[i] = real(v), imag(v)
		}
	}
}
