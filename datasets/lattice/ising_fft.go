package lattice

import "sync"

// isingFFTMinL is the smallest L for which the relaxed-Ising host forms use the FFT instead of the direct
// circulant sum (O(N²)); below it the direct sum is as fast and needs no scratch.
const isingFFTMinL = 8

// isingFFT applies the circulant K⁻¹ through the 2-D transform of FFT2 (any L). Scratch buffers come from
// a pool, so the transforms are safe for concurrent use and allocation-free in the steady state.
type isingFFT struct {
	f    *FFT2
	pool sync.Pool // *[]complex128, L×L
}

func newIsingFFT(L int) *isingFFT {
	f, _ := NewFFT2(L) // L ≥ isingFFTMinL here
	i := &isingFFT{f: f}
	i.pool.New = func() any {
		b := make([]complex128, L*L)
		return &b
	}
	return i
}

// quad returns xᵀK⁻¹x = (1/N) Σ_k |x̃_k|² / κ_k (Parseval, unnormalised transform), with
// invKappa[kx·L+ky] = 1/κ_k.
func (f *isingFFT) quad(x, invKappa []float64) float64 {
	bp := f.pool.Get().(*[]complex128)
	defer f.pool.Put(bp)
	a := *bp
	for i, v := range x {
		a[i] = complex(v, 0)
	}
	f.f.transform(a, false)
	var q float64
	for k, z := range a {
		q += (real(z)*real(z) + imag(z)*imag(z)) * invKappa[k]
	}
	return q / float64(len(x))
}

// applyInv writes K⁻¹x into dst (dst and x may be the same slice).
func (f *isingFFT) applyInv(dst, x, invKappa []float64) {
	bp := f.pool.Get().(*[]complex128)
	defer f.pool.Put(bp)
	a := *bp
	for i, v := range x {
		a[i] = complex(v, 0)
	}
	f.f.transform(a, false)
	for k := range a {
		a[k] *= complex(invKappa[k], 0)
	}
	f.f.transform(a, true)
	inv := 1 / float64(len(x))
	for i, z := range a {
		dst[i] = real(z) * inv
	}
}
