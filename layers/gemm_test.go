package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The three product shapes against naive triple loops in float64, for sizes that exercise the 32/16-column
// blocks, the 8/4-column blocks and the scalar tails of the AVX2 kernels, the 64/32- and 16/8-column blocks
// and the masked tails of the AVX-512 ones, on every kernel set this CPU can run. Tolerance: 1e-12 relative
// (float64 sums of ≤ 100 terms in another order); float32 5e-6 relative.
func TestProducts(t *testing.T) {
	for _, mode := range productModes() {
		t.Run(mode, func(t *testing.T) {
			defer useProductKernels(mode)()
			testProducts(t)
		})
	}
}

func testProducts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sz := range [][3]int{{1, 1, 1}, {3, 7, 2}, {10, 4096, 10}, {4, 37, 3}, {2, 100, 70}, {5, 33, 1}, {1, 16, 5},
		{3, 95, 4}, {2, 127, 3}, {6, 200, 10}, {2, 15, 2}, {1, 9, 1}, {10, 77, 2}, {5, 40, 1}} {
		m, n, k := sz[0], sz[1], sz[2]
		a := randSlice(rng, m*k)
		b := randSlice(rng, k*n)
		at := randSlice(rng, m*n) // for mulABt: A (m×n)
		bt := randSlice(rng, k*n) // B (k×n)
		c0 := randSlice(rng, m*n)
		wantAB := append([]float64(nil), c0...)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				for l := 0; l < k; l++ {
					wantAB[i*n+j] += a[i*k+l] * b[l*n+j]
				}
			}
		}
		// mulAtB: C (k×n) = Aᵀ B with A (m×k), B (m×n) = at.
		wantAtB := make([]float64, k*n)
		for i := 0; i < k; i++ {
			for j := 0; j < n; j++ {
				for l := 0; l < m; l++ {
					wantAtB[i*n+j] += a[l*k+i] * at[l*n+j]
				}
			}
		}
		wantABt := make([]float64, m*k)
		for i := 0; i < m; i++ {
			for j := 0; j < k; j++ {
				for l := 0; l < n; l++ {
					wantABt[i*k+j] += at[i*n+l] * bt[j*n+l]
				}
			}
		}
		name := fmt.Sprintf("m=%d n=%d k=%d", m, n, k)
		// c is followed by guard elements that no product may write (the masked stores of the last columns).
		guarded := append(append([]float64(nil), c0...), 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7)
		c := guarded[:m*n]
		mulAB(m, n, k, a, b, c)
		closeTo(t, name+" mulAB f64", c, wantAB, 1e-12)
		for i, g := range guarded[m*n:] {
			if g != 7 {
				t.Errorf("%s mulAB f64: guard element %d past the end of c was overwritten: %g", name, i, g)
			}
		}
		// With a bias in place of c's old values: A·B + bias[i] on row i, whatever c held.
		bias := randSlice(rng, m)
		wantBias := make([]float64, m*n)
		for i := range wantBias {
			wantBias[i] = wantAB[i] - c0[i] + bias[i/n]
		}
		guarded = append(randSlice(rng, m*n), 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7)
		c = guarded[:m*n]
		mulABBiasCols(m, k, a, b, bias, c, n, 0, n)
		closeTo(t, name+" mulABBiasCols f64", c, wantBias, 1e-12)
		for i, g := range guarded[m*n:] {
			if g != 7 {
				t.Errorf("%s mulABBiasCols f64: guard element %d past the end of c was overwritten: %g", name, i, g)
			}
		}
		c32b := f32(randSlice(rng, m*n))
		mulABBiasCols(m, k, f32(a), f32(b), f32(bias), c32b, n, 0, n)
		closeTo(t, name+" mulABBiasCols f32", f64(c32b), wantBias, 5e-6)
		// mulABSet (the matrix-product op's A·B) overwrites whatever c held.
		c = randSlice(rng, m*n)
		mulABSet(m, n, k, a, b, c)
		for i := range wantBias {
			wantBias[i] = wantAB[i] - c0[i]
		}
		closeTo(t, name+" mulABSet f64", c, wantBias, 1e-12)
		c = make([]float64, m*k)
		mulABtColsWide(m, k, at, bt, c, n, 0, n)
		closeTo(t, name+" mulABtColsWide f64", c, wantABt, 1e-12)
		c = make([]float64, k*n)
		mulAtB(m, n, k, a, at, c)
		closeTo(t, name+" mulAtB f64", c, wantAtB, 1e-12)
		c = make([]float64, m*k)
		mulABt(m, n, k, at, bt, c)
		closeTo(t, name+" mulABt f64", c, wantABt, 1e-12)

		c32 := f32(c0)
		mulAB(m, n, k, f32(a), f32(b), c32)
		closeTo(t, name+" mulAB f32", f64(c32), wantAB, 5e-6)
		c32 = make([]float32, k*n)
		mulAtB(m, n, k, f32(a), f32(at), c32)
		closeTo(t, name+" mulAtB f32", f64(c32), wantAtB, 5e-6)
		c32 = make([]float32, m*k)
		mulABt(m, n, k, f32(at), f32(bt), c32)
		closeTo(t, name+" mulABt f32", f64(c32), wantABt, 5e-6)
	}
}

func randSlice(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

func f32(v []float64) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		o[i] = float32(x)
	}
	return o
}

func f64(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

func closeTo(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	scale := 1.0
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol*scale*10 {
			t.Errorf("%s: element %d = %g, want %g", what, i, got[i], want[i])
			return
		}
	}
}

// BenchmarkProducts times the product shapes of the fused RealNVP (10×10 weights, one pass's block of
// columns: 4 KB of a row, so all operands stay in cache) on every kernel set this CPU can run.
func BenchmarkProducts(b *testing.B) {
	for _, mode := range productModes() {
		b.Run(mode+"/float32", func(b *testing.B) { benchProducts[float32](b, mode, 1024) })
		b.Run(mode+"/float64", func(b *testing.B) { benchProducts[float64](b, mode, 512) })
	}
}

func benchProducts[T float](b *testing.B, mode string, n int) {
	defer useProductKernels(mode)()
	rng := rand.New(rand.NewPCG(1, 1))
	m, k := 10, 10
	conv := func(v []float64) []T {
		o := make([]T, len(v))
		for i, x := range v {
			o[i] = T(x)
		}
		return o
	}
	a, bb, c := conv(randSlice(rng, m*k)), conv(randSlice(rng, k*n)), make([]T, m*n)
	b.Run("mulAB", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			mulAB(m, n, k, a, bb, c)
		}
		b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	w := make([]T, m*k)
	b.Run("mulABt", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			mulABt(m, n, k, c, bb, w)
		}
		b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
