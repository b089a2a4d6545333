package lattice

import (
	"math"
	"math/bits"
	"sync"
)

// isingFFTMinL is the smallest L for which the relaxed-Ising host forms use the FFT (O(N log N)) instead of
// the direct circulant sum (O(N²)); below it the direct sum is as fast and needs no scratch.
const isingFFTMinL = 8

// isingFFT is a radix-2 two-dimensional complex FFT for an L×L periodic lattice (L a power of two), with
// precomputed twiddles and bit reversal. Scratch buffers come from a pool, so the transforms are safe for
// concurrent use and allocation-free in the steady state.
type isingFFT struct {
	L    int
	tw   []complex128 // e^{−2πik/L}, k < L/2
	rev  []int        // bit-reversal permutation of 0…L−1
	pool sync.Pool    // *isingFFTScratch
}

type isingFFTScratch struct {
	a   []complex128 // L×L, row-major
	col []complex128 // one column
}

func newIsingFFT(L int) *isingFFT {
	f := &isingFFT{L: L, tw: make([]complex128, L/2), rev: make([]int, L)}
	for k := range f.tw {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(L))
		f.tw[k] = complex(c, s)
	}
	nb := bits.TrailingZeros(uint(L))
	for i := range f.rev {
		f.rev[i] = int(bits.Reverse(uint(i)) >> (bits.UintSize - nb))
	}
	f.pool.New = func() any {
		return &isingFFTScratch{a: make([]complex128, L*L), col: make([]complex128, L)}
	}
	return f
}

// fft1 transforms a (length L) in place; inverse uses e^{+2πik/L} and does not normalise.
func (f *isingFFT) fft1(a []complex128, inverse bool) {
	n := f.L
	a = a[:n]
	for i, r := range f.rev {
		if i < r {
			a[i], a[r] = a[r], a[i]
		}
	}
	for size := 2; size <= n; size <<= 1 {
		half, step := size>>1, n/size
		for start := 0; start < n; start += size {
			lo := a[start : start+half]
			hi := a[start+half : start+size]
			for k := range lo {
				w := f.tw[k*step]
				if inverse {
					w = complex(real(w), -imag(w))
				}
				v := hi[k] * w
				u := lo[k]
				lo[k] = u + v
				hi[k] = u - v
			}
		}
	}
}

// transform applies the 2-D FFT (rows, then columns) to s.a in place.
func (f *isingFFT) transform(s *isingFFTScratch, inverse bool) {
	L := f.L
	for i := range L {
		f.fft1(s.a[i*L:(i+1)*L], inverse)
	}
	for j := range L {
		for i := range L {
			s.col[i] = s.a[i*L+j]
		}
		f.fft1(s.col, inverse)
		for i := range L {
			s.a[i*L+j] = s.col[i]
		}
	}
}

// quad returns xᵀK⁻¹x = (1/N) Σ_k |x̃_k|² / κ_k (Parseval), with invKappa[kx·L+ky] = 1/κ_k.
func (f *isingFFT) quad(x, invKappa []float64) float64 {
	s := f.pool.Get().(*isingFFTScratch)
	defer f.pool.Put(s)
	for i, v := range x {
		s.a[i] = complex(v, 0)
	}
	f.transform(s, false)
	var q float64
	for k, z := range s.a {
		q += (real(z)*real(z) + imag(z)*imag(z)) * invKappa[k]
	}
	return q / float64(len(x))
}

// applyInv writes K⁻¹x into dst (dst and x may be the same slice).
func (f *isingFFT) applyInv(dst, x, invKappa []float64) {
	s := f.pool.Get().(*isingFFTScratch)
	defer f.pool.Put(s)
	for i, v := range x {
		s.a[i] = complex(v, 0)
	}
	f.transform(s, false)
	for k := range s.a {
		s.a[k] *= complex(invKappa[k], 0)
	}
	f.transform(s, true)
	inv := 1 / float64(len(x))
	for i, z := range s.a {
		dst[i] = real(z) * inv
	}
}
