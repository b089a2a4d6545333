package lattice

import (
	"fmt"
	"math"
	"math/bits"
	"sync"
)

// FFT2 is the two-dimensional discrete Fourier transform of an L×L periodic lattice, for any L ≥ 1. Powers
// of two use an in-place radix-2 FFT; other sizes a recursive mixed-radix transform over the prime
// factors of L (direct DFTs for the prime leaves), from one precomputed twiddle table. Arrays are L×L, row-major, index i·L + j; the momentum of
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
	fac  []int        // prime factors of L, smallest first (other sizes)
	pool sync.Pool    // *[]complex128 of length 3L: a column, a transform output and a combine buffer
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
	for n, p := L, 2; n > 1; {
		if n%p == 0 {
			f.fac = append(f.fac, p)
			n /= p
			continue
		}
		p++
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
		b := make([]complex128, 3*L)
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

// fft1 transforms a (length L) in place; tmp is length-2L scratch for the mixed-radix transform.
func (f *FFT2) fft1(a, tmp []complex128, inverse bool) {
	n := f.L
	if !f.pow2 {
		out, buf := tmp[:n], tmp[n:2*n]
		f.mixed(a, 1, out, buf, n, f.fac, inverse)
		copy(a, out)
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

// mixed writes the length-n transform of in[0], in[stride], … into out (decimation in time): with p the
// first factor of n and m = n/p, out[q·m : (q+1)·m] first receives the transforms of the p decimated
// subsequences, then X[k + r·m] = Σ_q e^{∓2πi q(k + r m)/n} Y_q[k] combines them (p terms per output,
// through buf). A prime n is a direct DFT. Cost n·Σ(factors) instead of n².
func (f *FFT2) mixed(in []complex128, stride int, out, buf []complex128, n int, fac []int, inverse bool) {
	conj := 1.0 // the inverse uses the conjugate twiddles
	if inverse {
		conj = -1
	}
	L := f.L
	if len(fac) <= 1 { // n is 1 or prime: direct DFT with twiddles e^{∓2πi kx/n} = tw[(kx mod n)·L/n]
		sc := L / n
		for k := range n {
			var sr, si float64
			p := 0
			for x := range n {
				w := f.tw[p*sc]
				wr, wi := real(w), conj*imag(w)
				v := in[x*stride]
				vr, vi := real(v), imag(v)
				sr += vr*wr - vi*wi
				si += vr*wi + vi*wr
				if p += k; p >= n {
					p -= n
				}
			}
			out[k] = complex(sr, si)
		}
		return
	}
	p, m := fac[0], n/fac[0]
	for q := range p {
		f.mixed(in[q*stride:], stride*p, out[q*m:(q+1)*m], buf, m, fac[1:], inverse)
	}
	sc := L / n
	for r := range p {
		for k := range m {
			j := k + r*m
			var sr, si float64
			e := 0 // q·j mod n
			for q := range p {
				w := f.tw[e*sc]
				wr, wi := real(w), conj*imag(w)
				v := out[q*m+k]
				vr, vi := real(v), imag(v)
				sr += vr*wr - vi*wi
				si += vr*wi + vi*wr
				if e += j; e >= n {
					e -= n
				}
			}
			buf[j] = complex(sr, si)
		}
	}
	copy(out[:n], buf[:n])
}
