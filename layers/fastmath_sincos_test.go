package layers

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestSincosInPlaceRange(t *testing.T) {
	// Against math.Sin and math.Cos over the whole range, in every kernel form: |x| up to 2^21 on a
	// log-uniform grid (beyond the vector kernels' limit: the math.Sincos fallback), the quadrant
	// boundaries k·π/4, signed zeros, infinities and NaN, odd lengths (the scalar tail). Tolerances:
	// float64 4e-16, a few ulp of numbers below 1 (the three-part reduction with fused multiply-adds keeps r
	// exact to rounding over the whole range; measured 1.1e-16); float32 (float32 arithmetic throughout)
	// 3e-7, 2.5 ulp of 1 (measured 7e-8 for |x| < 16), plus 1e-8·|x| for the float32 reduction at large |x|
	// (measured 4e-9·|x|).
	for _, mode := range productModes() {
		t.Run(mode, func(t *testing.T) {
			defer useProductKernels(mode)()
			rng := rand.New(rand.NewPCG(11, 12))
			xs := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 1 << 13, -(1 << 13), 1 << 20, 1 << 21}
			for k := -40; k <= 40; k++ {
				xs = append(xs, float64(k)*math.Pi/4, math.Nextafter(float64(k)*math.Pi/4, 100))
			}
			for i := 0; i < 20000; i++ {
				e := rng.Float64()*30 - 8 // |x| from 2^-8 to 2^22
				xs = append(xs, math.Copysign(math.Exp2(e), rng.Float64()-0.5))
			}
			xs = xs[:len(xs)-3] // an odd length
			t.Run("float64", func(t *testing.T) {
				s, c := make([]float64, len(xs)), make([]float64, len(xs))
				sincosInPlace(xs, s, c)
				for i, x := range xs {
					checkSincos(t, x, s[i], c[i], 4e-16)
				}
			})
			t.Run("float32", func(t *testing.T) {
				x32 := make([]float32, len(xs))
				for i, x := range xs {
					x32[i] = float32(x)
				}
				s, c := make([]float32, len(xs)), make([]float32, len(xs))
				sincosInPlace(x32, s, c)
				for i, x := range x32 {
					checkSincos(t, float64(x), float64(s[i]), float64(c[i]), 3e-7+1e-8*math.Abs(float64(x)))
				}
			})
		})
	}
}

func checkSincos(t *testing.T, x, s, c, tol float64) {
	t.Helper()
	ws, wc := math.Sincos(x)
	if math.IsNaN(ws) {
		if !math.IsNaN(s) || !math.IsNaN(c) {
			t.Fatalf("x = %g: got %g, %g, want NaN", x, s, c)
		}
		return
	}
	if math.Abs(s-ws) > tol || math.Abs(c-wc) > tol {
		t.Fatalf("x = %.17g: sin %.17g cos %.17g, want %.17g %.17g (errors %.3g %.3g, tol %.3g)", x, s, c, ws, wc,
			math.Abs(s-ws), math.Abs(c-wc), tol)
	}
}
