package lattice

import (
	"fmt"
	"math"
	"math/bits"
	"sync"
)

// FFT2 is the two-dimensional discrete Fourier transform of an L×L periodic lattice, for any L ≥ 1. Powers
// of two use an in-place radix-2 FFT; other sizes a direct O(L²) DFT per row and column from a
// precomputed twiddle table (for the L ≤ 64 used here it is as fast as a mixed-radix or Bluestein
// transform would be: see BenchmarkFFT2). Arrays are L×L, row-major, index i·L + j; the momentum of
// entry kx·L + ky is k = (kx, ky).
//
// The unitary pair (Forward, Inverse) is the convention of the diffusion models:
//
//	φ̃_k = V^{−1/2} Σ_x e^{−2πi k·x/L} φ_x,   φ_x = V^{−1/2} Σ_k e^{+2πi k·x/L} φ̃_k,   V = L².
//
// It preserves norms (Parseval: Σ|φ̃_k|² = Σ|φ_x|²). An FFT2 is safe for concurrent use: scratch comes
// from a pool, and the transforms do not allocate in the steady state.
type FFT2 struct {
	L    int
	pow2 bool
	tw   []complex128 // e^{−2πik/L}, k < L
	rev  []int        // bit reversal of 0…L−1 (powers of two only)
	pool sync.Pool    // *[]complex128 of length 2L: a column and a DFT output
}

// NewFFT2 returns the transform of an L×L lattice; L must be ≥ 1.
func NewFFT2(L int) (*FFT2, error) {
	if L < 1 {
		return nil, fmt.Errorf("lattice: FFT2: L=%d, want L ≥ 1", L)
	}
	f := &FFT2{L: L, pow2: L&(L-1) == 0, tw: make([]complex128, L)}
	for k := range f.tw {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(L))
		f.tw[k] = complex(c, s)
	}
	if f.pow2 {
		f.rev = make([]int, L)
		nb := bits.TrailingZeros(uint(L))
		for i := range f.rev {
			if nb > 0 {
				f.rev[i] = int(bits.Reverse(uint(i)) >> (bits.UintSize - nb))
			}
		}
	}
	f.pool.New = func() any {
		b := make([]complex128, 2*L)
		return &b
	}
	return f, nil
}

// Forward applies the unitary forward transform to a (length L·L) in place.
func (f *FFT2) Forward(a []complex128) { f.unitary(a, false) }

// Inverse applies the unitary inverse transform to a (length L·L) in place; Inverse(Forward(a)) = a.
func (f *FFT2) Inverse(a []complex128) { f.unitary(a, true) }

func (f *FFT2) unitary(a []complex128, inverse bool) {
	f.transform(a, inverse)
	s := complex(1/float64(f.L), 0) // V^{−1/2} = 1/L
	for i := range a {
		a[i] *= s
	}
}

// transform applies the unnormalised 2-D transform (sign −1 forward, +1 inverse) to a in place.
func (f *FFT2) transform(a []complex128, inverse bool) {
	L := f.L
	a = a[:L*L]
	bp := f.pool.Get().(*[]complex128)
	defer f.pool.Put(bp)
	col, tmp := (*bp)[:L], (*bp)[L:]
	for i := range L {
		f.fft1(a[i*L:(i+1)*L], tmp, inverse)
	}
	for j := range L {
		for i := range L {
			col[i] = a[i*L+j]
		}
		f.fft1(col, tmp, inverse)
		for i := range L {
			a[i*L+j] = col[i]
		}
	}
}

// fft1 transforms a (length L) in place; tmp is length-L scratch for the direct DFT.
func (f *FFT2) fft1(a, tmp []complex128, inverse bool) {
	n := f.L
	if !f.pow2 {
		conj := 1.0 // the inverse uses the conjugate twiddles e^{+2πi kx/n}
		if inverse {
			conj = -1
		}
		for k := range n {
			var sr, si float64
			p := 0 // k·x mod n, kept in range without a division
			for _, v := range a {
				w := f.tw[p]
				wr, wi := real(w), conj*imag(w)
				vr, vi := real(v), imag(v)
				sr += vr*wr - vi*wi
				si += vr*wi + vi*wr
				if p += k; p >= n {
					p -= n
				}
			}
			tmp[k] = complex(sr, si)
		}
		copy(a, tmp)
		return
	}
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
