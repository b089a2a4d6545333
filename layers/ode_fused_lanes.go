package layers

import "fmt"

// The lane engine of the fused ODE op on 16×16 lattices: the integration of laneN samples at a time, every
// per-site quantity stored as laneN consecutive numbers (one per sample of the block), so that the 2-D
// FFTs, the spectral products and the feature loops run across samples, the FFTs with vector instructions.
//
// A real lane plane is V·laneN numbers, site-major ([site][lane]); a complex lane plane is V·2·laneN
// numbers, [site][re, im][lane]. The spectra are full 16×16 complex spectra in digit-reversed order on both
// axes (position 4a + b of an axis holds frequency a + 4b), the order the in-place radix-4×4 transform
// leaves them in; the spectra of the kernels are computed by the same transform, so every spectral product
// pairs matching frequencies, and the inverse transform takes that order back to the sites.

// laneN is the number of samples a lane block integrates together.
const laneN = 32

// laneSide is the lattice side the lane engine handles.
const laneSide = 16

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

// fft2Lanes transforms np consecutive complex lane planes (16×16 sites) of z in place: rows, then columns.
func fft2Lanes[T float](z []T, np int, inverse bool) {
	const s, w = 2 * laneN, laneSide
	fft16Lanes(z, s, w*np, w*s, inverse) // along each row
	for q := 0; q < np; q++ {
		fft16Lanes(z[q*w*w*s:(q+1)*w*w*s], w*s, w, s, inverse) // along each column
	}
}
