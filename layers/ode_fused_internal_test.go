package layers

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

func TestRealFFT2AgainstDirectDFT(t *testing.T) {
	// The half spectrum of realFFT2 against the defining sum Σ_x e^{−2πi k·x/(h,w)} X[x] evaluated term by
	// term, and the inverse transform back to h·w·X, for every size the fused ODE takes up to 32 (the
	// unrolled 16-point transform and the radix-2 one, both passes). Both sides are sums of h·w order-one
	// terms: 1e-12 relative to their number.
	rng := rand.New(rand.NewPCG(1, 2))
	for _, h := range []int{2, 4, 8, 16, 32} {
		for _, w := range []int{2, 4, 8, 16, 32} {
			t.Run(fmt.Sprintf("%dx%d", h, w), func(t *testing.T) {
				f := newRealFFT2(h, w)
				x := make([]float64, h*w)
				for i := range x {
					x[i] = rng.NormFloat64()
				}
				spec := make([]complex128, f.wh*h)
				f.forward(x, spec)
				tol := 1e-12 * float64(h*w)
				for k1 := 0; k1 < h; k1++ {
					for k2 := 0; k2 < f.wh; k2++ {
						var want complex128
						for a := 0; a < h; a++ {
							for b := 0; b < w; b++ {
								ph := -2 * math.Pi * (float64(k1*a)/float64(h) + float64(k2*b)/float64(w))
								want += complex(x[a*w+b], 0) * cmplx.Exp(complex(0, ph))
							}
						}
						if got := spec[k2*h+k1]; cmplx.Abs(got-want) > tol {
							t.Fatalf("X̂[%d,%d] = %v, direct sum %v", k1, k2, got, want)
						}
					}
				}
				back := make([]float64, h*w)
				f.inverse(spec, back)
				for i := range x {
					if want := float64(h*w) * x[i]; math.Abs(back[i]-want) > tol {
						t.Fatalf("inverse: x[%d] = %.15g, want %.15g", i, back[i], want)
					}
				}
			})
		}
	}
}

func TestSincosSliceMatchesScalar(t *testing.T) {
	// The slice version is sincos32 / sincos64 bit for bit (same reduction and polynomials, branch-free
	// quadrants), including signed zeros, every quadrant, the fallback beyond 2^20 and NaN.
	rng := rand.New(rand.NewPCG(3, 4))
	x := []float64{0, math.Copysign(0, -1), math.Pi / 4, -math.Pi / 2, 3 * math.Pi / 4, 1 << 21, math.Inf(1), math.NaN()}
	for i := 0; i < 4000; i++ {
		x = append(x, 30*rng.NormFloat64())
	}
	s, c := make([]float64, len(x)), make([]float64, len(x))
	for _, fast := range []bool{false, true} {
		sincosSlice(x, s, c, fast)
		for i, xv := range x {
			ws, wc := sincos64(xv)
			if fast {
				ws, wc = sincos32(xv)
			}
			same := func(a, b float64) bool {
				return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
			}
			if !same(s[i], ws) || !same(c[i], wc) {
				t.Fatalf("fast=%v x=%g: sincosSlice %g, %g; scalar %g, %g", fast, xv, s[i], c[i], ws, wc)
			}
		}
	}
}
