package layers

import (
	"math"
	"math/rand/v2"
	"testing"
)

// naiveWeightNorm and naiveWeightNormGrad are the textbook loops (one running sum per row, a division per
// element), the form weightNormRows and weightNormGrad replaced: the reference of the test and the
// benchmark's baseline.
func naiveWeightNorm[T float](w, nrm, v, g []T, out, in int) {
	for i := range out {
		row := v[i*in : (i+1)*in]
		var n2 T
		for _, e := range row {
			n2 += e * e
		}
		n := T(math.Sqrt(float64(n2)))
		nrm[i] = n
		sc := g[i] / n
		for j, e := range row {
			w[i*in+j] = e * sc
		}
	}
}

func naiveWeightNormGrad[T float](gv, gg, v, g, gW, nrm []T, out, in int) {
	for i := range out {
		row, grow := v[i*in:(i+1)*in], gW[i*in:(i+1)*in]
		var dot T
		for j, e := range row {
			dot += grow[j] * e
		}
		n := nrm[i]
		dg := dot / n
		gg[i] = dg
		sc := g[i] / n
		for j, e := range row {
			gv[i*in+j] = sc * (grow[j] - e*dg/n)
		}
	}
}

// TestWeightNormRowsAndGrad holds the fast weight normalisation and its gradient to the textbook loops
// (relative 1e-13 in float64: both sum 64–67 terms in a different order, ~n·ulp), checks the gradient
// against central differences of L(v, g) = Σ c ⊙ W(v, g) (5e-7: the O(h²) truncation at h = 1e-5 for
// second derivatives of order 1, over rounding ~1e-16/h), and checks that float32 gives the float64
// results to float32 rounding (1e-5 relative).
func TestWeightNormRowsAndGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, shape := range [][2]int{{3, 1}, {5, 7}, {8, 64}, {2, 67}} {
		out, in := shape[0], shape[1]
		v, g, gW, c := make([]float64, out*in), make([]float64, out), make([]float64, out*in), make([]float64, out*in)
		for i := range v {
			v[i], gW[i], c[i] = rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()
		}
		for i := range g {
			g[i] = 0.5 + rng.Float64()
		}
		w, nrm, wRef, nrmRef := make([]float64, out*in), make([]float64, out), make([]float64, out*in), make([]float64, out)
		weightNormRows(w, nrm, v, g, out, in)
		naiveWeightNorm(wRef, nrmRef, v, g, out, in)
		closeRel(t, "W", w, wRef, 1e-13)
		closeRel(t, "norms", nrm, nrmRef, 1e-13)
		gv, gg, gvRef, ggRef := make([]float64, out*in), make([]float64, out), make([]float64, out*in), make([]float64, out)
		weightNormGrad(gv, gg, v, g, gW, nrm, out, in)
		naiveWeightNormGrad(gvRef, ggRef, v, g, gW, nrmRef, out, in)
		closeRel(t, "∂v", gv, gvRef, 1e-13)
		closeRel(t, "∂g", gg, ggRef, 1e-13)

		// Central differences of L = Σ c ⊙ W: its gradient is weightNormGrad with ∂W = c.
		weightNormGrad(gv, gg, v, g, c, nrm, out, in)
		loss := func() float64 {
			weightNormRows(wRef, nrmRef, v, g, out, in)
			var s float64
			for i, e := range wRef {
				s += c[i] * e
			}
			return s
		}
		const h = 1e-5
		fd := func(x []float64, i int) float64 {
			x0 := x[i]
			x[i] = x0 + h
			up := loss()
			x[i] = x0 - h
			down := loss()
			x[i] = x0
			return (up - down) / (2 * h)
		}
		for i := range v {
			if d := fd(v, i); math.Abs(d-gv[i]) > 5e-7*(1+math.Abs(d)) {
				t.Errorf("%dx%d: ∂v[%d] = %g, central difference %g", out, in, i, gv[i], d)
			}
		}
		for i := range g {
			if d := fd(g, i); math.Abs(d-gg[i]) > 5e-7*(1+math.Abs(d)) {
				t.Errorf("%dx%d: ∂g[%d] = %g, central difference %g", out, in, i, gg[i], d)
			}
		}

		// float32: the float64 results to float32 rounding.
		v32, g32, c32 := f32(v), f32(g), f32(c)
		w32, nrm32, gv32, gg32 := make([]float32, out*in), make([]float32, out), make([]float32, out*in), make([]float32, out)
		weightNormRows(w32, nrm32, v32, g32, out, in)
		weightNormGrad(gv32, gg32, v32, g32, c32, nrm32, out, in)
		weightNormRows(w, nrm, v, g, out, in)
		closeRel(t, "float32 W", f64(w32), w, 1e-5)
		closeRel(t, "float32 ∂v", f64(gv32), gv, 1e-5)
		closeRel(t, "float32 ∂g", f64(gg32), gg, 1e-5)
	}
}

// TestDotRow checks dotRow exactly on small integers (every partial sum exact) for lengths 0–11, and that a
// longer b is read only over len(a).
func TestDotRow(t *testing.T) {
	for n := 0; n < 12; n++ {
		a, b := make([]float64, n), make([]float64, n+3)
		var want float64
		for j := range n {
			a[j], b[j] = float64(j+1), float64(2*j-5)
			want += a[j] * b[j]
		}
		b[n], b[n+1], b[n+2] = math.NaN(), math.NaN(), math.NaN()
		if got := dotRow(a, b); got != want {
			t.Errorf("n = %d: dotRow = %g, want %g", n, got, want)
		}
	}
}

func closeRel(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	// Relative to the value, or to 0.01 for values near zero: the inputs are of order one, so the results'
	// natural scale is too, and a value that cancels to ~0 (∂v of a one-column row is exactly 0) carries
	// the rounding of its order-one terms.
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > tol*max(math.Abs(want[i]), 0.01) {
			t.Fatalf("%s[%d] = %.17g, want %.17g (relative %.3g > %g)", what, i, got[i], want[i], d/math.Abs(want[i]), tol)
		}
	}
}

// BenchmarkWeightNorm times the weight normalisation and its gradient over 243,648 float32 weights in rows
// of 64 (the rgflow-small preset's size and hidden width), the fast forms against the textbook loops.
func BenchmarkWeightNorm(b *testing.B) {
	in, out := 64, 243648/64
	if testing.Short() {
		out /= 8 // 120 KB per array: in L2
	}
	rng := rand.New(rand.NewPCG(1, 2))
	v, gW, w, gv := make([]float32, out*in), make([]float32, out*in), make([]float32, out*in), make([]float32, out*in)
	g, nrm, gg := make([]float32, out), make([]float32, out), make([]float32, out)
	for i := range v {
		v[i], gW[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	for i := range g {
		g[i] = 1
	}
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			weightNormRows(w, nrm, v, g, out, in)
			weightNormGrad(gv, gg, v, g, gW, nrm, out, in)
		}
	})
	b.Run("textbook", func(b *testing.B) {
		for b.Loop() {
			naiveWeightNorm(w, nrm, v, g, out, in)
			naiveWeightNormGrad(gv, gg, v, g, gW, nrm, out, in)
		}
	})
}
