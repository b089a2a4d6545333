package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// weightGradCols (the 4×4 dot-product blocks and the leftover rows and columns) adds A[:, lo:hi]·B[:, lo:hi]ᵀ
// to C, checked against plain float64 sums for every shape from 1×1 to 9×9 and column ranges that end in
// whole vectors, partial ones and none, in both dtypes. Tolerance: the kernel sums in another order and,
// in float32, in float32; n ≤ 70 terms of size ≤ 1 give an error below 70·2⁻²⁴ ≈ 4.2e-6 (float32) and
// 70·2⁻⁵³ (float64); 1e-5 and 1e-13 leave room.
func TestWeightGradCols(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(t *testing.T, is32 bool) {
		for m := 1; m <= 9; m++ {
			for k := 1; k <= 9; k++ {
				for _, r := range [][2]int{{0, 0}, {3, 4}, {0, 16}, {5, 37}, {1, 70}} {
					lo, hi := r[0], r[1]
					ld := 73
					a, b := make([]float64, m*ld), make([]float64, k*ld)
					for i := range a {
						a[i] = 2*rng.Float64() - 1
					}
					for i := range b {
						b[i] = 2*rng.Float64() - 1
					}
					c0 := make([]float64, m*k)
					for i := range c0 {
						c0[i] = rng.Float64()
					}
					want := make([]float64, m*k)
					for i := range m {
						for j := range k {
							s := c0[i*k+j]
							for t := lo; t < hi; t++ {
								s += a[i*ld+t] * b[j*ld+t]
							}
							want[i*k+j] = s
						}
					}
					var got []float64
					tol := 1e-13
					if is32 {
						a32, b32, c32 := to32(a), to32(b), to32(c0)
						weightGradCols(m, k, a32, b32, c32, ld, lo, hi)
						got = to64(c32)
						tol = 1e-5
						// The reference from the float32-rounded inputs.
						for i := range m {
							for j := range k {
								s := float64(float32(c0[i*k+j]))
								for t := lo; t < hi; t++ {
									s += float64(a32[i*ld+t]) * float64(b32[j*ld+t])
								}
								want[i*k+j] = s
							}
						}
					} else {
						c := append([]float64(nil), c0...)
						weightGradCols(m, k, a, b, c, ld, lo, hi)
						got = c
					}
					for i := range want {
						if math.Abs(got[i]-want[i]) > tol {
							t.Fatalf("m=%d k=%d cols [%d,%d): C[%d] = %.10g, want %.10g", m, k, lo, hi, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
	for _, is32 := range []bool{true, false} {
		t.Run(fmt.Sprintf("float32=%v", is32), func(t *testing.T) { check(t, is32) })
	}
}

func to32(x []float64) []float32 {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = float32(v)
	}
	return y
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}
