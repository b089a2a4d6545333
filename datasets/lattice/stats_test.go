package lattice

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ar1 returns R chains of a stationary AR(1) process x_t = ρ x_{t−1} + √(1−ρ²) ε_t with mean mu and unit
// variance. Its autocorrelation is ρ^|t|, so τ_int = (1+ρ)/(2(1−ρ)), and the variance of the mean of n
// consecutive values is (1/n)[(1+ρ)/(1−ρ) − 2ρ(1−ρⁿ)/(n(1−ρ)²)].
func ar1(rng *rand.Rand, chains, n int, rho, mu float64) [][]float64 {
	out := make([][]float64, chains)
	s := math.Sqrt(1 - rho*rho)
	for r := range out {
		out[r] = make([]float64, n)
		x := rng.NormFloat64() // start in equilibrium
		for t := range out[r] {
			out[r][t] = mu + x
			x = rho*x + s*rng.NormFloat64()
		}
	}
	return out
}

func ar1MeanErr(chains, n int, rho float64) float64 {
	nf := float64(n)
	v := ((1+rho)/(1-rho) - 2*rho*(1-math.Pow(rho, nf))/(nf*(1-rho)*(1-rho))) / nf
	return math.Sqrt(v / float64(chains))
}

func TestIntegratedAutocorrAR1(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rho := range []float64{0, 0.5, 0.9, 0.97} { // 0.97: W > directLags, the FFT path
		x := ar1(rng, 4, 50000, rho, 3)
		a := IntegratedAutocorr(x, 0)
		want := (1 + rho) / (2 * (1 - rho))
		// Tolerance: 4 Madras–Sokal standard errors, plus the truncation bias of the window, which is
		// below ρ^{W+1}/(1−ρ) and negligible for W ≥ 6τ.
		tol := 4*a.TauErr + math.Pow(rho, float64(a.Window+1))/(1-rho)
		if math.Abs(a.Tau-want) > tol || !a.Reliable {
			t.Errorf("ρ=%g: τ_int = %.4f ± %.4f (W=%d, reliable=%v), want %.4f", rho, a.Tau, a.TauErr, a.Window, a.Reliable, want)
		}
		wantErr := ar1MeanErr(4, 50000, rho)
		// The error of an error estimate from τ_int is δτ/(2τ) relative (≈ 2%); allow 10%.
		if e := a.MeanErr(); math.Abs(e/wantErr-1) > 0.10 {
			t.Errorf("ρ=%g: Γ-method error of the mean %.5f, want %.5f", rho, e, wantErr)
		}
		t.Logf("ρ=%g: τ_int = %.3f ± %.3f (exact %.3f), W=%d, err %.5f (exact %.5f)", rho, a.Tau, a.TauErr, want, a.Window, a.MeanErr(), wantErr)
	}
}

// TestAutocovFFT: the FFT lag sums equal the direct ones (unequal chain lengths included).
func TestAutocovFFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	x := ar1(rng, 3, 1000, 0.8, 0.5)
	x[1] = x[1][:777]
	g := autocovFFT(x, 0.4, 300)
	for lag, v := range g {
		if d := autocovDirect(x, 0.4, lag); math.Abs(v-d) > 1e-12 {
			t.Fatalf("Γ(%d): FFT %.15g, direct %.15g", lag, v, d)
		}
	}
}

func TestIntegratedAutocorrEdgeCases(t *testing.T) {
	a := IntegratedAutocorr([][]float64{{2, 2, 2, 2}}, 0)
	if a.Tau != 0.5 || a.MeanErr() != 0 || a.Mean != 2 {
		t.Errorf("constant series: %+v", a)
	}
	a = IntegratedAutocorr(nil, 0)
	if !math.IsNaN(a.Tau) || !math.IsNaN(a.MeanErr()) {
		t.Errorf("empty series: %+v", a)
	}
	// A short, strongly correlated series cannot meet the window condition.
	x := ar1(rand.New(rand.NewPCG(3, 4)), 1, 60, 0.99, 0)
	if a = IntegratedAutocorr(x, 0); a.Reliable {
		t.Errorf("ρ=0.99, n=60 reported reliable: %+v", a)
	}
}

func TestBinningAR1(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	rho := 0.8
	x := ar1(rng, 2, 1<<16, rho, 0)
	bins := BinningAnalysis(x, 0)
	want := (1 + rho) / (2 * (1 - rho)) // 4.5
	// Bins of 512 ≫ τ: the bias is ≈ τ/size ≈ 1%, the statistical error of TauEff is √(2/bins) ≈ 6%
	// relative for 256 bins; allow 20%.
	found := false
	for _, b := range bins {
		if b.Size == 512 {
			found = true
			if math.Abs(b.TauEff/want-1) > 0.2 {
				t.Errorf("binning τ at size 512: %.3f, want %.3f", b.TauEff, want)
			}
			if e := ar1MeanErr(2, 1<<16, rho); math.Abs(b.Err/e-1) > 0.15 {
				t.Errorf("binning error at size 512: %.5f, want %.5f", b.Err, e)
			}
		}
	}
	if !found || bins[0].Size != 1 || math.Abs(bins[0].TauEff-0.5) > 1e-12 {
		t.Errorf("binning levels: %+v", bins)
	}
}

// TestAnalyzeCoverage checks that the reported errors are honest: over many independent replicas of an
// autocorrelated data set the true value lies within ±1 error in ≈ 68.3% of the cases, for a plain mean
// and for a ratio of means (which needs the jackknife). With 1000 replicas the binomial standard error of
// the coverage is 1.5%; the test allows 4 of them plus 3% for the small-sample bias of the error
// estimate (blocks of 20 τ_int underestimate the error by ≈ 3%, measured over 3000 replicas: coverage
// 0.66, i.e. −0.02).
func TestAnalyzeCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const reps = 1000
	rho := 0.7
	inMean, inRatio := 0, 0
	var sumRatioErr, sumGammaErr float64
	for range reps {
		a := ar1(rng, 4, 2000, rho, 2)
		b := ar1(rng, 4, 2000, rho, 1)
		// Make b correlated with a so that the ratio's error is not the naive sum.
		for r := range a {
			for i := range a[r] {
				b[r][i] += 0.5 * (a[r][i] - 2)
			}
		}
		data := [][][]float64{a, b}
		m := Analyze(data[:1], func(x []float64) float64 { return x[0] }, StatsOptions{})
		if math.Abs(m.Value-2) < m.Err {
			inMean++
		}
		ratio := Analyze(data, func(x []float64) float64 { return x[0] / x[1] }, StatsOptions{})
		if math.Abs(ratio.Value-2) < ratio.Err {
			inRatio++
		}
		sumRatioErr += ratio.Err
		sumGammaErr += ratio.ErrGamma
		if ratio.ShortRun {
			t.Fatalf("unexpected ShortRun: %+v", ratio)
		}
	}
	tol := 4*math.Sqrt(0.683*0.317/reps) + 0.03
	for _, c := range []struct {
		name string
		in   int
	}{{"mean", inMean}, {"ratio", inRatio}} {
		cov := float64(c.in) / reps
		if math.Abs(cov-0.683) > tol {
			t.Errorf("%s: coverage %.3f, want 0.683 ± %.3f", c.name, cov, tol)
		}
		t.Logf("%s: coverage %.3f (want 0.683 ± %.3f)", c.name, cov, tol)
	}
	// Jackknife and Γ-method errors must agree on average (both estimate the same quantity).
	if r := sumRatioErr / sumGammaErr; math.Abs(r-1) > 0.05 {
		t.Errorf("mean jackknife/Γ error ratio %.3f, want 1 ± 0.05", r)
	}
}

func TestJackknifeLinearIsNaive(t *testing.T) {
	// For f = mean and block 1 the jackknife error is exactly the naive standard error.
	x := [][]float64{{1, 4, 2, 8, 5, 7}}
	_, e, nb := Jackknife([][][]float64{x}, 1, func(m []float64) float64 { return m[0] })
	_, v := meanVar(x[0])
	if nb != 6 || math.Abs(e-math.Sqrt(v/6)) > 1e-12 {
		t.Errorf("jackknife error %g (blocks %d), want %g", e, nb, math.Sqrt(v/6))
	}
}

func TestAnalyzeNaNFunction(t *testing.T) {
	x := ar1(rand.New(rand.NewPCG(9, 10)), 2, 500, 0.5, 1)
	e := Analyze([][][]float64{x}, func(m []float64) float64 { return math.Sqrt(-m[0]) }, StatsOptions{})
	if !math.IsNaN(e.Value) || math.IsNaN(e.Tau) {
		t.Errorf("NaN function: %+v", e)
	}
}
