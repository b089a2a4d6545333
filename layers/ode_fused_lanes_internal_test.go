package layers

import (
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"strings"
	"testing"
)

// lanePlane returns the complex value of lane l at site (a, b) of a complex lane plane.
func lanePlane[T float](z []T, a, b, l int) complex128 {
	o := (a*laneSide+b)*2*laneN + l
	return complex(float64(z[o]), float64(z[o+laneN]))
}

func testFFT2Lanes[T float](t *testing.T, tol float64) {
	// The 2-D lane transform against the defining sum Σ_x e^{−2πi k·x/16} z[x] evaluated term by term for
	// every lane of two planes (frequency k read at the digit-reversed position), and the inverse back to
	// 256·z. Both sides are sums of 256 order-one terms: tol relative to their number.
	rng := rand.New(rand.NewPCG(5, 6))
	const np = 2
	n := np * laneSide * laneSide * 2 * laneN
	z := make([]T, n)
	for i := range z {
		z[i] = T(rng.NormFloat64())
	}
	orig := append([]T(nil), z...)
	fft2Lanes(z, np, false)
	plane := laneSide * laneSide * 2 * laneN
	for q := 0; q < np; q++ {
		for l := 0; l < laneN; l += 7 {
			for k1 := 0; k1 < 16; k1++ {
				for k2 := 0; k2 < 16; k2++ {
					var want complex128
					for a := 0; a < 16; a++ {
						for b := 0; b < 16; b++ {
							ph := -2 * math.Pi * float64(k1*a+k2*b) / 16
							want += lanePlane(orig[q*plane:], a, b, l) * cmplx.Exp(complex(0, ph))
						}
					}
					got := lanePlane(z[q*plane:], digitRev16(k1), digitRev16(k2), l)
					if cmplx.Abs(got-want) > tol*256 {
						t.Fatalf("plane %d lane %d: X̂[%d,%d] = %v, direct sum %v", q, l, k1, k2, got, want)
					}
				}
			}
		}
	}
	fft2Lanes(z, np, true)
	for i := range z {
		if want := 256 * float64(orig[i]); math.Abs(float64(z[i])-want) > tol*256 {
			t.Fatalf("inverse: z[%d] = %.9g, want %.9g", i, z[i], want)
		}
	}
}

func TestFFT2LanesAgainstDirectDFT(t *testing.T) {
	// Every kernel form (AVX-512, AVX2, the Go loops) in both precisions. Tolerances: float64 1e-13 per
	// term (a few ulp of the twiddles times the 8 radix-2-equivalent stages); float32 2e-6 per term.
	for _, mode := range productModes() {
		t.Run(mode, func(t *testing.T) {
			defer useProductKernels(mode)()
			t.Run("float64", func(t *testing.T) { testFFT2Lanes[float64](t, 1e-13) })
			t.Run("float32", func(t *testing.T) { testFFT2Lanes[float32](t, 2e-6) })
		})
	}
}

func TestFFT16LanesBounds(t *testing.T) {
	// A transform reaching past the slice panics with the sizes instead of letting the assembly run off.
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "fft16Lanes") {
			t.Fatalf("recovered %v, want the bounds message", r)
		}
	}()
	fft16Lanes(make([]float64, 16*2*laneN-1), 2*laneN, 1, 0, false)
}
