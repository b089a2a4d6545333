package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// weightGradCols (the M×N dot-product blocks with their row sums, or the products of the other kernel
// sets) adds A[:, lo:hi]·B[:, lo:hi]ᵀ to C and the row sums of A[:, lo:hi] to the bias, checked against
// plain float64 sums for every shape from 1×1 to 9×9 and column ranges that end in whole vectors, partial
// ones and none, in both dtypes, on every kernel set this CPU runs. Tolerance: the kernel sums in another order and,
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
					bias0 := make([]float64, m)
					for i := range bias0 {
						bias0[i] = rng.Float64()
					}
					ones := make([]float64, ld)
					for i := range ones {
						ones[i] = 1
					}
					// want: C (m·k), then the bias (m).
					want := make([]float64, m*k+m)
					ref := func(a, b, c0, bias0 []float64) {
						for i := range m {
							for j := range k {
								s := c0[i*k+j]
								for t := lo; t < hi; t++ {
									s += a[i*ld+t] * b[j*ld+t]
								}
								want[i*k+j] = s
							}
							s := bias0[i]
							for t := lo; t < hi; t++ {
								s += a[i*ld+t]
							}
							want[m*k+i] = s
						}
					}
					var got []float64
					tol := 1e-13
					if is32 {
						a32, b32, c32, bias32 := to32(a), to32(b), to32(c0), to32(bias0)
						weightGradCols(m, k, a32, b32, c32, bias32, to32(ones), ld, lo, hi)
						got = append(to64(c32), to64(bias32)...)
						tol = 1e-5
						// The reference from the float32-rounded inputs.
						ref(to64(a32), to64(b32), to64(to32(c0)), to64(to32(bias0)))
					} else {
						c, bias := append([]float64(nil), c0...), append([]float64(nil), bias0...)
						weightGradCols(m, k, a, b, c, bias, ones, ld, lo, hi)
						got = append(c, bias...)
						ref(a, b, c0, bias0)
					}
					for i := range want {
						if math.Abs(got[i]-want[i]) > tol {
							t.Fatalf("m=%d k=%d cols [%d,%d): element %d of [C; bias] = %.10g, want %.10g", m, k, lo, hi, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
	for _, mode := range productModes() {
		for _, is32 := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/float32=%v", mode, is32), func(t *testing.T) {
				defer useProductKernels(mode)()
				check(t, is32)
			})
		}
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

// nvpMulABBias and nvpMulAtB (the R-row product kernels, R = 1…8, with and without initial values, column
// ranges ending in whole vectors, partial ones and none) against plain float64 loops, every m and k from
// 1 to 18 (one to three passes). Tolerance: as TestWeightGradCols (≤ 18 terms here).
func TestNVPProducts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	rnd := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = 2*rng.Float64() - 1
		}
		return x
	}
	const ld = 77
	for _, is32 := range []bool{true, false} {
		tol := 1e-13
		if is32 {
			tol = 1e-5
		}
		for m := 1; m <= 18; m++ {
			for k := 1; k <= 18; k += 1 + k/6 {
				for _, r := range [][2]int{{0, 0}, {2, 9}, {0, 32}, {3, 50}, {1, 77}} {
					lo, hi := r[0], r[1]
					a, b, bias := rnd(m*k), rnd(k*ld), rnd(m)
					bt := rnd(m * ld) // B for AᵀB: m rows
					c0 := rnd(max(m, k) * ld)
					if is32 { // round the inputs, so that the reference sees what the kernel sees
						for _, x := range [][]float64{a, b, bias, bt, c0} {
							copy(x, to64(to32(x)))
						}
					}
					// C = A·B + bias over [lo, hi); C' = Aᵀ·B' over [lo, hi); other columns untouched.
					want1, want2 := append([]float64(nil), c0...), append([]float64(nil), c0...)
					for i := range m {
						for j := lo; j < hi; j++ {
							s := bias[i]
							for l := range k {
								s += a[i*k+l] * b[l*ld+j]
							}
							want1[i*ld+j] = s
						}
					}
					for i := range k {
						for j := lo; j < hi; j++ {
							s := 0.0
							for l := range m {
								s += a[l*k+i] * bt[l*ld+j]
							}
							want2[i*ld+j] = s
						}
					}
					var got1, got2 []float64
					if is32 {
						c1, c2 := to32(c0), to32(c0)
						nvpMulABBias(m, k, to32(a), to32(b), to32(bias), c1, ld, lo, hi)
						nvpMulAtB(m, k, to32(a), to32(bt), c2, ld, lo, hi)
						got1, got2 = to64(c1), to64(c2)
					} else {
						got1, got2 = append([]float64(nil), c0...), append([]float64(nil), c0...)
						nvpMulABBias(m, k, a, b, bias, got1, ld, lo, hi)
						nvpMulAtB(m, k, a, bt, got2, ld, lo, hi)
					}
					for i := range want1 {
						if math.Abs(got1[i]-want1[i]) > tol {
							t.Fatalf("float32=%v m=%d k=%d cols [%d,%d): A·B+bias element %d = %.9g, want %.9g", is32, m, k, lo, hi, i, got1[i], want1[i])
						}
						if math.Abs(got2[i]-want2[i]) > tol {
							t.Fatalf("float32=%v m=%d k=%d cols [%d,%d): AᵀB element %d = %.9g, want %.9g", is32, m, k, lo, hi, i, got2[i], want2[i])
						}
					}
				}
			}
		}
	}
}

// axpyRVec with a nil init adds to C's old values.
func TestAxpyRAccumulates(t *testing.T) {
	for R := 1; R <= axpyRMax; R++ {
		n, k := 37, 3
		c := make([]float64, R*n)
		for i := range c {
			c[i] = float64(i)
		}
		a := make([]float64, R*k)
		for i := range a {
			a[i] = 1
		}
		b := make([]float64, k*n)
		for i := range b {
			b[i] = 0.5
		}
		if !axpyRVec(R, c, 0, n, n, a, k, 1, k, b, n, nil) {
			t.Skip("no AVX-512")
		}
		for i, v := range c {
			if v != float64(i)+1.5 {
				t.Fatalf("R=%d: c[%d] = %g, want %g", R, i, v, float64(i)+1.5)
			}
		}
	}
}

// actsStride gives rows that hold n columns, start on a 64-byte line in either dtype (the vectors of the
// product kernels then never straddle two lines) and are padded by exactly one line past the line that
// holds column n−1 (for the power-of-two column counts in use, rows one line apart modulo 4096 bytes, so
// staggered over the cache sets).
func TestActsStride(t *testing.T) {
	for _, n := range []int{1, 7, 8, 15, 16, 17, 100, 256, 1 << 10, 1 << 14, 1 << 16} {
		for _, size := range []int{4, 8} {
			ld := actsStride(n, size)
			if ld < n {
				t.Errorf("n=%d, %d-byte elements: stride %d < n", n, size, ld)
			}
			if ld*size%64 != 0 {
				t.Errorf("n=%d, %d-byte elements: stride %d is %d bytes, not a whole number of 64-byte lines", n, size, ld, ld*size)
			}
			if pad := ld*size - (n*size+63)/64*64; pad != 64 {
				t.Errorf("n=%d, %d-byte elements: stride %d pads %d bytes past the last line of n, want one line", n, size, ld, pad)
			}
		}
	}
	// The buffer of a plan's activations starts on a line (a large allocation); the rows follow from it.
	buf := make([]float32, 30*actsStride(1<<14, 4))
	if p := uintptr(unsafe.Pointer(&buf[0])); p%64 != 0 {
		t.Errorf("activation-sized buffer at %#x is not 64-byte aligned", p)
	}
}
