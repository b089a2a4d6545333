package bulk

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"rgflow/datasets/lattice"
	"rgflow/layers"
)

// The correlation estimator on exact free-field samples: with the identity flow z = x, so ⟨z_i z_j⟩ is
// the free propagator G(x_i − x_j). Samples are drawn exactly (Cholesky factor of the covariance built
// from lattice.FreeG), and every bin is compared with the mean of G over the bin's pairs, computed here by
// walking the pairs independently of the binning code.
func TestCorrelationsFreeField(t *testing.T) {
	const L, m2 = 8, 0.3
	n := L * L
	cov := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			cov.SetSym(i, j, lattice.FreeG(L, m2, (i/L-j/L+L)%L, (i%L-j%L+L)%L))
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(cov) {
		t.Fatal("covariance not positive definite")
	}
	var lt mat.TriDense
	ch.LTo(&lt)
	rng := rand.New(rand.NewPCG(1, 2))
	const chains, per = 2, 2000
	samples := make([][]float64, chains)
	xi := make([]float64, n)
	for c := range samples {
		for range per {
			for i := range xi {
				xi[i] = rng.NormFloat64()
			}
			var x mat.VecDense
			x.MulVec(&lt, mat.NewVecDense(n, xi))
			samples[c] = append(samples[c], x.RawVector().Data...)
		}
	}
	h, _ := layers.NewHierarchy(L, 2)
	lm := h.LevelMap()
	bins, err := Correlations(samples, 1, L, lm, 10)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, b := range bins {
		var sum float64
		var cnt int
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				if lm[i] != b.Level || lm[j] != b.Level {
					continue
				}
				dx, dy := abs(i/L-j/L), abs(i%L-j%L)
				dx, dy = min(dx, L-dx), min(dy, L-dy)
				if math.Abs(math.Hypot(float64(dx), float64(dy))-b.R) > 1e-9 {
					continue
				}
				sum += lattice.FreeG(L, m2, dx, dy)
				cnt++
			}
		}
		if cnt != b.Pairs {
			t.Fatalf("level %d r=%.3f: %d pairs, counted %d", b.Level, b.R, b.Pairs, cnt)
		}
		want := sum / float64(cnt)
		// 4.5σ over ~30 bins: a false alarm about once in 5000 runs.
		if math.Abs(b.Corr-want) > 4.5*b.Err {
			t.Errorf("level %d r=%.3f: ⟨z z⟩ = %.4f ± %.4f, exact %.4f", b.Level, b.R, b.Corr, b.Err, want)
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d bins", checked)
	}
	// The boundary correlator (no levels) at r = 1 is G(1, 0).
	g, err := Correlations(samples, 1, L, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if g[1].R != 1 || math.Abs(g[1].Corr-lattice.FreeG(L, m2, 1, 0)) > 4.5*g[1].Err {
		t.Errorf("G(r=%g) = %.4f ± %.4f, exact %.4f", g[1].R, g[1].Corr, g[1].Err, lattice.FreeG(L, m2, 1, 0))
	}
}

// LineFit recovers an exact line (R² = 1) and a hand-computed fit of three points.
func TestLineFit(t *testing.T) {
	f, err := LineFit([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7})
	if err != nil || math.Abs(f.A-1) > 1e-12 || math.Abs(f.B-2) > 1e-12 || math.Abs(f.R2-1) > 1e-12 {
		t.Errorf("exact line: %+v, %v", f, err)
	}
	// Points (0,0), (1,1), (2,1): x̄ = 1, ȳ = 2/3, Sxx = 2, Sxy = 1, Syy = 2/3 → B = 1/2, A = 1/6,
	// R² = 1/(2·2/3) = 3/4.
	f, _ = LineFit([]float64{0, 1, 2}, []float64{0, 1, 1})
	if math.Abs(f.B-0.5) > 1e-12 || math.Abs(f.A-1.0/6) > 1e-12 || math.Abs(f.R2-0.75) > 1e-12 {
		t.Errorf("three points: %+v", f)
	}
	if _, err := LineFit([]float64{1, 1}, []float64{0, 1}); err == nil {
		t.Error("equal x accepted")
	}
}

// HoloFit on bins built from an exact power law |C| = r^{-p}: d = p ln r, slope p, R² = 1.
func TestHoloFitPowerLaw(t *testing.T) {
	var bins []Bin
	for _, r := range []float64{0, 1, 2, 3, 4} {
		c := 1.0
		if r > 0 {
			c = math.Pow(r, -0.7)
		}
		bins = append(bins, Bin{Level: 0, R: r, Corr: c, Err: 1e-3})
	}
	bins = append(bins, Bin{Level: 0, R: 5, Corr: 1e-4, Err: 1e-3}) // unresolved: left out
	pts, all, per, err := HoloFit(bins, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 4 || math.Abs(all.B-0.7) > 1e-12 || math.Abs(all.A) > 1e-12 || math.Abs(all.R2-1) > 1e-12 {
		t.Errorf("fit %+v over %d points, want slope 0.7, intercept 0, R² 1 over 4", all, len(pts))
	}
	if math.Abs(per[0].B-0.7) > 1e-12 {
		t.Errorf("level-0 fit %+v", per[0])
	}
}

// Center removes the per-site means: two chains of two measurements of two sites, by hand.
func TestCenter(t *testing.T) {
	s := [][]float64{{1, 10, 3, 10}, {5, 20, 7, 40}} // site 0: 1,3,5,7 (mean 4); site 1: 10,10,20,40 (mean 20)
	if err := Center(s, 2); err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{-3, -10, -1, -10}, {1, 0, 3, 20}}
	for c := range s {
		for i := range s[c] {
			if s[c][i] != want[c][i] {
				t.Fatalf("chain %d value %d = %g, want %g", c, i, s[c][i], want[c][i])
			}
		}
	}
	if err := Center([][]float64{{1, 2, 3}}, 2); err == nil {
		t.Error("3 values with 2 per measurement accepted")
	}
}

// The whole estimator chain with a known answer: bulk HMC on the identity flow (the initialisation) of a
// free field samples z = x, so every bin of ⟨z_i z_j⟩ must match the exact propagator.
func TestBulkCorrelationsIdentityFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk HMC run (a few seconds)")
	}
	const L, m2 = 4, 1.0
	act, _ := lattice.NewFree(L, m2)
	flow, store := testFlow(t, "neuralrg-small", L, 0, 1)
	a, err := New(act, flow, store)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const chains = 2
	zs := make([][]float64, chains)
	if _, err := lattice.RunHMC(context.Background(), a, lattice.HMCConfig{Trajectories: 200, Thermalize: 30, Chains: chains, Seed: 5},
		func(chain, k int, z []float64, s float64) { zs[chain] = append(zs[chain], z...) }); err != nil {
		t.Fatal(err)
	}
	h, _ := layers.NewHierarchy(L, 2)
	bins, err := Correlations(zs, 1, L, h.LevelMap(), 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bins {
		// On a 4×4 lattice every r² ≤ 8 comes from one (|dx|, |dy|) pair up to order.
		var dx, dy int
		for dx = 0; dx <= 2; dx++ {
			dy = int(math.Round(math.Sqrt(b.R*b.R - float64(dx*dx))))
			if dx*dx+dy*dy == int(math.Round(b.R*b.R)) {
				break
			}
		}
		want := lattice.FreeG(L, m2, dx, dy)
		// 4.5σ of the batch-means error (batches of 40 trajectories ≫ τ_int ≈ 1 for m² = 1).
		if math.Abs(b.Corr-want) > 4.5*b.Err {
			t.Errorf("level %d r=%.3f: ⟨z z⟩ = %.4f ± %.4f, exact G = %.4f", b.Level, b.R, b.Corr, b.Err, want)
		}
	}
}
