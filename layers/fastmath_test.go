package layers

import (
	"math"
	"math/big"
	"testing"
)

// exp32 must be within 2 ulp of the correctly rounded e^x over the whole float32 range it handles, and
// the derived tanh and ELU within a few ulp / 1e-7 absolute.
func TestExp32(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88; x += 0.00731 {
		got := float64(exp32(x))
		want := math.Exp(float64(x))
		ulp := float64(math.Nextafter32(float32(want), float32(math.Inf(1))) - float32(want))
		worst = math.Max(worst, math.Abs(got-want)/ulp)
	}
	if worst > 2 {
		t.Errorf("exp32: worst error %.2f ulp, want ≤ 2", worst)
	}
	if exp32(-105) != 0 || !math.IsInf(float64(exp32(100)), 1) || !math.IsNaN(float64(exp32(float32(math.NaN())))) {
		t.Error("exp32: wrong behaviour outside the range")
	}
	worstT, worstE := 0.0, 0.0
	for x := float32(-12); x < 12; x += 0.000913 {
		worstT = math.Max(worstT, math.Abs(float64(tanhT(x))-math.Tanh(float64(x)))/math.Max(math.Abs(math.Tanh(float64(x))), 1e-30))
		v := []float32{x}
		eluInPlace(v)
		worstE = math.Max(worstE, math.Abs(float64(v[0])-elu64(float64(x))))
	}
	// Relative 1e-6 for tanh (a few float32 ulp); ELU's e^x − 1 near 0 has absolute error ~1 ulp of 1.
	if worstT > 1e-6 || worstE > 2.5e-7 {
		t.Errorf("tanh32 worst relative error %g, elu32 worst absolute error %g", worstT, worstE)
	}
}

// The float64 ELU must be within 2 ulp of math.Expm1 on [−45, 0], including tiny arguments, and exact
// for positive arguments.
func TestELU64(t *testing.T) {
	worst := 0.0
	check := func(x float64) {
		v := []float64{x, -x}
		eluInPlace(v)
		if -x != v[1] {
			t.Fatalf("ELU(%g) = %g", -x, v[1])
		}
		got, want := v[0], math.Expm1(x)
		ulp := math.Abs(math.Nextafter(want, 0) - want)
		if want == 0 {
			ulp = math.SmallestNonzeroFloat64
		}
		worst = math.Max(worst, math.Abs(got-want)/ulp)
	}
	for x := -45.0; x <= 0; x += 0.000731 {
		check(x)
	}
	for x := -1e-3; x < -1e-300; x *= 0.61 {
		check(x)
	}
	check(0)
	if worst > 2 {
		t.Errorf("ELU float64: worst error %.2f ulp, want ≤ 2", worst)
	}
}

// The float64 ELU against e^x − 1 in 256-bit arithmetic (a Taylor series of e^{x/64}, squared six times;
// for |x| < 10⁻³ the series of e^x − 1 itself): within 1 ulp on a grid over [−45, 0] and on tiny
// arguments. The bound is the analysis in elu64Scalar (two roundings of half an ulp where the result is
// near 1 in magnitude, less elsewhere); math.Expm1, the reference of the other tests, is itself only
// within 1 ulp, so this test does not use it.
func TestELU64Accuracy(t *testing.T) {
	var xs []float64
	for x := -45.0; x < 0; x += 0.00731 {
		xs = append(xs, x)
	}
	for x := -1e-3; x > -1e-300; x *= 0.77 {
		xs = append(xs, x)
	}
	v := append([]float64(nil), xs...)
	eluInPlace(v)
	worst, at := 0.0, 0.0
	for i, x := range xs {
		want := expm1Big(x)
		ulp := math.Abs(math.Nextafter(want, 0) - want)
		if d := math.Abs(v[i]-want) / ulp; d > worst {
			worst, at = d, x
		}
	}
	if worst > 1 {
		t.Errorf("ELU float64: worst error %.3f ulp at x = %g, want ≤ 1", worst, at)
	}
}

// expm1Big is e^x − 1 for x ≤ 0 in 256-bit arithmetic, rounded to float64.
func expm1Big(x float64) float64 {
	const prec = 256
	num := func(v float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(v) }
	series := func(y float64) *big.Float { // Σ_{k≥1} y^k/k!, 60 terms: far below 2⁻²⁵⁶ for |y| ≤ 1
		sum, term := num(0), num(1)
		for k := 1; k <= 60; k++ {
			term.Mul(term, num(y))
			term.Quo(term, num(float64(k)))
			sum.Add(sum, term)
		}
		return sum
	}
	if x > -1e-3 {
		f, _ := series(x).Float64()
		return f
	}
	e := series(x / 64) // e^{x/64} − 1; x/64 is exact
	e.Add(e, num(1))
	for range 6 {
		e.Mul(e, e)
	}
	f, _ := e.Sub(e, num(1)).Float64()
	return f
}

func elu64(x float64) float64 {
	if x > 0 {
		return x
	}
	return math.Expm1(x)
}

func BenchmarkExp32(b *testing.B) {
	xs := make([]float32, 4096)
	for i := range xs {
		xs[i] = float32(i%200)/20 - 8
	}
	var s float32
	for i := 0; i < b.N; i++ {
		for _, x := range xs {
			s += exp32(x)
		}
	}
	_ = s
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(xs)), "ns/exp")
}

// The vector kernels (AVX2+FMA where present) agree with the references on long slices, propagate NaN
// and handle ±Inf; tolerances as for the scalar loops (2 ulp float64; 2.5e-7 absolute float32, about 2 ulp
// of 1, the size of e^x − 1's rounding near 0).
func TestELUVectorKernels(t *testing.T) {
	const n = 1003
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = -45 + 50*float64(i)/n + 1e-3*float64(i%7)
	}
	xs[10], xs[20], xs[30], xs[40] = math.NaN(), math.Inf(-1), math.Inf(1), -1e-12
	v64 := append([]float64(nil), xs...)
	eluInPlace(v64)
	v32 := make([]float32, n)
	for i, x := range xs {
		v32[i] = float32(x)
	}
	eluInPlace(v32)
	if vectorKernels() && eluVector(make([]float64, 8)) == 0 {
		t.Fatal("the vector kernel did not run on a CPU that has it")
	}
	for i, x := range xs {
		want := elu64(x)
		switch {
		case math.IsNaN(x):
			if !math.IsNaN(v64[i]) || !math.IsNaN(float64(v32[i])) {
				t.Errorf("ELU(NaN) = %g, %g", v64[i], v32[i])
			}
			continue
		case math.IsInf(x, 0):
			if v64[i] != want || float64(v32[i]) != want {
				t.Errorf("ELU(%g) = %g, %g, want %g", x, v64[i], v32[i], want)
			}
			continue
		}
		ulp := math.Abs(math.Nextafter(want, 0) - want)
		if want == 0 {
			ulp = math.SmallestNonzeroFloat64
		}
		if d := math.Abs(v64[i]-want) / ulp; d > 2 {
			t.Errorf("float64 ELU(%g) = %.17g, want %.17g (%.1f ulp)", x, v64[i], want, d)
		}
		if d := math.Abs(float64(v32[i]) - elu64(float64(float32(x)))); d > 2.5e-7*math.Max(1, math.Abs(want)) {
			t.Errorf("float32 ELU(%g) = %g, want %g", x, v32[i], want)
		}
	}
}

// ELU' from the output, vector and scalar paths: g·(min(y, 0) + 1), exactly (one rounding each).
func TestELUGradKernels(t *testing.T) {
	const n = 1003
	for _, dt := range []string{"f32", "f64"} {
		ys := make([]float64, n)
		gs := make([]float64, n)
		for i := range ys {
			ys[i] = -1 + 3*float64(i)/n
			gs[i] = 0.5 + float64(i%11)
		}
		ys[5] = math.NaN()
		check := func(i int, got float64) {
			want := gs[i] * (math.Min(ys[i], 0) + 1)
			if dt == "f32" {
				want = float64(float32(gs[i]) * (float32(math.Min(ys[i], 0)) + 1))
			}
			if math.IsNaN(ys[i]) {
				if !math.IsNaN(got) {
					t.Errorf("%s: NaN y gave %g", dt, got)
				}
				return
			}
			if got != want {
				t.Errorf("%s: element %d: %g, want %g", dt, i, got, want)
			}
		}
		if dt == "f32" {
			g, y := make([]float32, n), make([]float32, n)
			for i := range g {
				g[i], y[i] = float32(gs[i]), float32(ys[i])
			}
			eluGradInPlace(g, y)
			for i := range g {
				check(i, float64(g[i]))
			}
		} else {
			g := append([]float64(nil), gs...)
			eluGradInPlace(g, ys)
			for i := range g {
				check(i, g[i])
			}
		}
	}
}

// Every activation and derivative in float32 (fast exp, branch-free selects) against the float64 reference
// evaluation: 2e-6 absolute plus 2e-6 relative (a few float32 ulp of values of order 1).
func TestActivationsFloat32(t *testing.T) {
	xs := make([]float32, 0, 4000)
	for x := float32(-30); x < 30; x += 0.0157 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), 1e-8, -1e-8)
	for _, k := range []actKind{actELU, actELUD1, actELUD2, actSwish, actSwishD1} {
		dst := make([]float32, len(xs))
		applyAct(dst, xs, k)
		for i, x := range xs {
			want := k.eval(float64(x))
			if d := math.Abs(float64(dst[i]) - want); d > 2e-6+2e-6*math.Abs(want) {
				t.Errorf("%s(%g) = %g, want %g", k, x, dst[i], want)
				break
			}
		}
	}
}

// The float32 exp and tanh passes of the fused coupling, vector and scalar paths: exp within 3 ulp of the
// correctly rounded value on [−87, 88] (the exp32 polynomial; FMA changes the last bit), tanh within 2.5e-7
// absolute (its e^{−2|x|} − 1 is accurate to about an ulp of 1), NaN propagated.
func TestExpTanhPasses(t *testing.T) {
	var xs []float32
	for x := float32(-87); x < 88; x += 0.0931 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, 1e-6, -1e-6)
	e := append([]float32(nil), xs...)
	expInPlace(e)
	for i, x := range xs {
		want := math.Exp(float64(x))
		ulp := float64(math.Nextafter32(float32(want), float32(math.Inf(1))) - float32(want))
		if d := math.Abs(float64(e[i])-want) / ulp; d > 3 {
			t.Errorf("exp(%g) = %g, want %g (%.1f ulp)", x, e[i], want, d)
			break
		}
	}
	var ts []float32
	for x := float32(-12); x < 12; x += 0.00731 {
		ts = append(ts, x)
	}
	ts = append(ts, float32(math.NaN()), 0, 1e-9, -1e-9)
	th := append([]float32(nil), ts...)
	tanhInPlace(th, make([]float32, len(th)))
	for i, x := range ts {
		want := math.Tanh(float64(x))
		if math.IsNaN(want) {
			if !math.IsNaN(float64(th[i])) {
				t.Errorf("tanh(NaN) = %g", th[i])
			}
			continue
		}
		if d := math.Abs(float64(th[i]) - want); d > 2.5e-7 {
			t.Errorf("tanh(%g) = %g, want %g", x, th[i], want)
			break
		}
	}
}

// The float64 exp and tanh passes: relative error ≤ 4e-16 (a few ulp) over the ranges the coupling uses.
func TestExpTanhPasses64(t *testing.T) {
	var xs []float64
	for x := -30.0; x < 30; x += 0.0173 {
		xs = append(xs, x)
	}
	xs = append(xs, 0, 1e-9, -1e-9, 1e-300)
	e := append([]float64(nil), xs...)
	expInPlace(e)
	th := append([]float64(nil), xs...)
	tanhInPlace(th, make([]float64, len(th)))
	for i, x := range xs {
		if w := math.Exp(x); math.Abs(e[i]-w) > 4e-16*w {
			t.Errorf("exp(%g) = %.17g, want %.17g", x, e[i], w)
			break
		}
		if w := math.Tanh(x); math.Abs(th[i]-w) > 4e-16*math.Abs(w)+1e-300 {
			t.Errorf("tanh(%g) = %.17g, want %.17g", x, th[i], w)
			break
		}
	}
}

// TestELU64PolyBound checks the truncation bound stated at elu64Poly: with its float64 coefficients
// evaluated in 200-bit arithmetic (so that only the polynomial's own error remains), q(r) = r + r²·P(r)
// is within 3.1·10⁻¹⁸ relative (the bound derived there) of e^r − 1 (the 200-bit series, 40 terms: |r|⁴⁰/40! is far below 2⁻²⁰⁰)
// on 20,001 points over |r| ≤ ln2/32 (and slightly past it: the rounded reduction can overshoot by a few
// ulp of r), and a0 is ½ + 2⁻⁵³ (the rounding that bound assumes).
func TestELU64PolyBound(t *testing.T) {
	const prec = 200
	a := elu64Poly()
	if a[5] != 0.5+0x1p-53 {
		t.Errorf("a0 = %v, want ½ + 2⁻⁵³", a[5])
	}
	num := func(v float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(v) }
	h := math.Ln2 / 32 * (1 + 1e-14)
	worst, at := 0.0, 0.0
	for i := -10000; i <= 10000; i++ {
		r := h * float64(i) / 10000
		if r == 0 {
			continue
		}
		br := num(r)
		p := num(a[0])
		for _, c := range a[1:] {
			p.Mul(p, br).Add(p, num(c))
		}
		q := num(r)
		q.Mul(q, br).Mul(q, p).Add(q, br) // r + r²·P
		want, term := num(0), num(1)
		for k := 1; k <= 40; k++ {
			term.Mul(term, br).Quo(term, num(float64(k)))
			want.Add(want, term)
		}
		d, _ := new(big.Float).SetPrec(prec).Quo(q.Sub(q, want), want).Float64()
		if d = math.Abs(d); d > worst {
			worst, at = d, r
		}
	}
	if worst > 3.1e-18 {
		t.Errorf("elu64Poly: worst relative truncation error %.3g at r = %g, want ≤ 3.1e-18", worst, at)
	}
	t.Logf("elu64Poly: worst relative truncation error %.3g at r = %g", worst, at)
}
