package flowmc

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/datasets/lattice/latticetest"
	"rgflow/layers"
	"rgflow/models"
)

// hostPhi4 is S = Σ_x [ ½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² φ_x² + λ φ_x⁴ ] on a periodic L×L lattice, written
// out here independently of package lattice.
func hostPhi4(L int, m2, lambda float64, phi []float64) float64 {
	var s float64
	for i := 0; i < L; i++ {
		for j := 0; j < L; j++ {
			v := phi[i*L+j]
			dr := phi[i*L+(j+1)%L] - v
			dd := phi[((i+1)%L)*L+j] - v
			s += 0.5*(dr*dr+dd*dd) + 0.5*m2*v*v + lambda*v*v*v*v
		}
	}
	return s
}

// testFlow is neuralrg-small at L with a Gaussian prior of temperature T, its parameters created and
// perturbed by N(0, scale²) noise so that the flow is not the identity.
func testFlow(t *testing.T, L int, T, scale float64, seed uint64) (*models.Flow, *layers.Store) {
	t.Helper()
	cfg, err := models.Preset("neuralrg-small", L, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.T = T
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := layers.NewStore(tensor.Float64, seed)
	s := layers.NewScope(G.NewGraph(), store)
	if _, _, err := flow.LogProb(s, s.Input("x", flow.Shape(1)...)); err != nil {
		t.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(seed, 2)), scale)
	return flow, store
}

// encode returns log q(x) of every configuration through the flow's forward (inference) direction, a
// different graph from the generation that Draw samples with.
func encode(t *testing.T, flow *models.Flow, store *layers.Store, x []float64, n int) []float64 {
	t.Helper()
	enc, err := models.NewEncoder(flow, store, n)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	_, lq, err := enc.Encode(x)
	if err != nil {
		t.Fatal(err)
	}
	return lq
}

// Every draw's log q, S and log w against independent computations: log q through the forward graph
// (and, symmetrised, log ½[e^{log q(x)} + e^{log q(−x)}] summed directly), S by the host formula above.
// Tolerance 1e-9·(1+|v|): float64 round trip F(F⁻¹(z)) through a 4-level flow loses ~1e-13 relative.
// n = 10 with batch 4 runs a partial last batch. Symmetrised draws must be flips of the unflipped
// generation of their latents with either sign.
func TestDrawDensitiesAndActions(t *testing.T) {
	const L, m2, lambda, n = 4, -1.0, 0.5, 10
	act, err := lattice.NewPhi4(L, m2, lambda)
	if err != nil {
		t.Fatal(err)
	}
	flow, store := testFlow(t, L, 1, 0.3, 7)
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*(1+math.Abs(a)) }
	for _, sym := range []bool{false, true} {
		d, err := Draw(act, flow, store, n, Options{Symmetrize: sym, Batch: 4}, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		if d.N != n || d.Dim != L*L || len(d.X) != n*L*L || len(d.Z) != n*L*L {
			t.Fatalf("symmetrize=%v: draws %d×%d with %d and %d values", sym, d.N, d.Dim, len(d.X), len(d.Z))
		}
		lq := encode(t, flow, store, d.X, n)
		neg := make([]float64, len(d.X))
		for i, v := range d.X {
			neg[i] = -v
		}
		lqNeg := encode(t, flow, store, neg, n)
		logw := d.LogW()
		for i := range n {
			want := lq[i]
			if sym {
				want = math.Log(0.5 * (math.Exp(lq[i]) + math.Exp(lqNeg[i])))
			}
			if !close(d.LogQ[i], want) {
				t.Errorf("symmetrize=%v sample %d: log q %.12g, independent %.12g", sym, i, d.LogQ[i], want)
			}
			s := hostPhi4(L, m2, lambda, d.Config(i))
			if !close(d.Action[i], s) {
				t.Errorf("symmetrize=%v sample %d: S %.12g, host %.12g", sym, i, d.Action[i], s)
			}
			if !close(logw[i], -s-want) {
				t.Errorf("symmetrize=%v sample %d: log w %.12g, want −S − log q = %.12g", sym, i, logw[i], -s-want)
			}
		}
		// Unsymmetrised log q is not even (the perturbed flow breaks Z₂), so the symmetrised test above
		// is not passed trivially.
		if !sym && math.Abs(lq[0]-lqNeg[0]) < 1e-3 {
			t.Errorf("log q(x) − log q(−x) = %g: the test flow is Z₂-symmetric, the check above proves nothing", lq[0]-lqNeg[0])
		}
	}
}

// The random global flip: the sign of each symmetrised draw relative to the generation of its own latent
// is + or − with probability ½. 400 draws: the count of flips is Binomial(400, ½), mean 200, σ = 10; the
// bound ±40 is 4σ.
func TestSymmetrizedFlipIsFair(t *testing.T) {
	const L, n = 4, 400
	act, err := lattice.NewPhi4(L, -1, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	flow, store := testFlow(t, L, 1, 0.3, 8)
	d, err := Draw(act, flow, store, n, Options{Symmetrize: true, Batch: 100}, rand.New(rand.NewPCG(3, 4)))
	if err != nil {
		t.Fatal(err)
	}
	sm, err := models.NewSampler(flow, store, n)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	x, _, err := sm.Decode(d.Z)
	if err != nil {
		t.Fatal(err)
	}
	flips := 0
	for i := range n {
		var same, opp float64
		for k := i * L * L; k < (i+1)*L*L; k++ {
			same = math.Max(same, math.Abs(d.X[k]-x[k]))
			opp = math.Max(opp, math.Abs(d.X[k]+x[k]))
		}
		switch {
		case opp < 1e-9 && same > 1e-6:
			flips++
		case same < 1e-9:
		default:
			t.Fatalf("draw %d is neither F⁻¹(z) nor −F⁻¹(z) (differences %g, %g)", i, same, opp)
		}
	}
	if flips < 160 || flips > 240 {
		t.Errorf("%d of %d draws flipped, want 200 ± 40", flips, n)
	}
}

// Independence Metropolis on a two-state target: proposals x ∈ {0, 1} with q(1) = 0.3, target p(1) = 0.7,
// log w = log p − log q. The chains' time in state 1 must approach 0.7. The chain is Markov with
// P(1→0) = q(0)·min(1, w₀/w₁) = 0.7·(9/49), P(0→1) = 0.3; its stationary law is 0.7 and its integrated
// autocorrelation time is (1+ρ)/(1−ρ) ≈ 1.5 with ρ = 1 − P(1→0) − P(0→1) ≈ 0.57, so 40 000 visits give
// σ ≈ √(0.21·3.7/40000) ≈ 0.0044: the bound 0.02 is 4.5σ. The acceptance rate is compared with its exact
// stationary value Σ_s π(s) Σ_{s'} q(s') min(1, w_{s'}/w_s) = 0.7·(0.3 + 0.7·9/49) + 0.3·1 = 0.6 within
// 0.02 (a mean of 40 000 correlated Bernoulli draws: σ ≈ 0.005).
func TestIndependenceMetropolisTwoStates(t *testing.T) {
	const n, chains = 40000, 4
	rng := rand.New(rand.NewPCG(5, 6))
	state := make([]int, n)
	logw := make([]float64, n)
	for i := range state {
		if rng.Float64() < 0.3 {
			state[i], logw[i] = 1, math.Log(0.7/0.3)
		} else {
			logw[i] = math.Log(0.3 / 0.7)
		}
	}
	ones, visits := 0, 0
	perChain := make([]int, chains)
	acc, props, err := IndependenceMetropolis(logw, chains, rng, func(c, cur int) {
		if cur < c*(n/chains) || cur >= (c+1)*(n/chains) {
			t.Fatalf("chain %d visits proposal %d outside its block", c, cur)
		}
		ones += state[cur]
		visits++
		perChain[c]++
	})
	if err != nil {
		t.Fatal(err)
	}
	if visits != n || props != n-chains || perChain[0] != n/chains {
		t.Fatalf("%d visits, %d proposals, %v per chain", visits, props, perChain)
	}
	if f := float64(ones) / float64(visits); math.Abs(f-0.7) > 0.02 {
		t.Errorf("time in state 1 = %g, want 0.7", f)
	}
	if a := float64(acc) / float64(props); math.Abs(a-0.6) > 0.02 {
		t.Errorf("acceptance %g, want 0.6", a)
	}
	if _, _, err := IndependenceMetropolis(logw[:7], 4, rng, func(int, int) {}); err == nil {
		t.Error("7 proposals for 4 chains accepted")
	}
}

// exactFree returns ⟨φ²⟩, χ = ⟨M²⟩/V, G(L/2) and ln Z of the free field from its dense precision matrix
// (latticetest.DenseFree), independently of package lattice's momentum sums.
func exactFree(L int, m2 float64) (phi2, chi, gHalf, logZ float64) {
	f, err := latticetest.DenseFree(L, m2)
	if err != nil {
		panic(err) // the tests pass valid sizes and masses
	}
	return f.Phi2, f.Chi, f.GHalf, f.LogZ
}

// Flow MCMC on the free field (L = 4, m² = 4) with a perturbed flow whose prior temperature T = 0.52 makes
// the proposal wider than the target in every mode (target σ_k = w_k^{−1/2} ≤ ½ < T), so the importance
// weights are bounded and independence Metropolis is uniformly ergodic: every observable must agree with
// the exact free-field value within 4 of its jackknife errors, including U4 = g_R = 0 (a Gaussian field).
// The free energy bounds −ln Z (gap ≥ −3σ), the importance-sampled ln Z agrees with the exact one within
// 4σ, and the ESS lies in (0, 1]. Evaluate's own sums are checked against sums written out here.
func TestEvaluateFreeFieldExact(t *testing.T) {
	const L, m2, n = 4, 4.0, 8192
	act, err := lattice.NewFree(L, m2)
	if err != nil {
		t.Fatal(err)
	}
	flow, store := testFlow(t, L, 0.52, 0.02, 9)
	rng := rand.New(rand.NewPCG(11, 12))
	d, err := Draw(act, flow, store, n, Options{}, rng)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Evaluate(d, act, 4, rng)
	if err != nil {
		t.Fatal(err)
	}
	phi2, chi, gHalf, logZ := exactFree(L, m2)
	within := func(name string, got, err, want, k float64) {
		t.Helper()
		if !(math.Abs(got-want) <= k*err) {
			t.Errorf("%s = %.6g ± %.3g, exact %.6g (%.1fσ, allowed %gσ)", name, got, err, want, math.Abs(got-want)/err, k)
		}
	}
	if !(r.ESS > 0 && r.ESS <= 1) {
		t.Errorf("ESS %g outside (0, 1]", r.ESS)
	}
	if !r.HasExact || math.Abs(r.ExactLogZ-logZ) > 1e-9 {
		t.Errorf("exact ln Z %v %.12g, the precision matrix gives %.12g", r.HasExact, r.ExactLogZ, logZ)
	}
	if r.Gap.Value < -3*r.Gap.Err {
		t.Errorf("gap %g ± %g below −3σ", r.Gap.Value, r.Gap.Err)
	}
	within("IS ln Z", r.LogZ.Value, r.LogZ.Err, logZ, 4)
	// Host sums: F_q = mean(log q + S), its standard error, ln Z = log mean w, ESS = (Σw)²/(NΣw²).
	var sf, sf2, sw, sw2 float64
	for i := range n {
		f := d.LogQ[i] + hostPhi4(L, m2, 0, d.Config(i))
		sf += f
		sf2 += f * f
		w := math.Exp(-f)
		sw += w
		sw2 += w * w
	}
	mf := sf / n
	sef := math.Sqrt((sf2/n - mf*mf) * n / (n - 1) / n)
	// 1e-9 relative: sums of 8192 terms of size ~10 in a different order.
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"F_q", r.FreeEnergy.Value, mf}, {"F_q error", r.FreeEnergy.Err, sef},
		{"ln Z", r.LogZ.Value, math.Log(sw / n)}, {"ESS", r.ESS, sw * sw / (n * sw2)}} {
		if math.Abs(c.got-c.want) > 1e-9*(1+math.Abs(c.want)) {
			t.Errorf("%s = %.12g, host %.12g", c.name, c.got, c.want)
		}
	}
	t.Logf("ESS %.3f, acceptance %.3f, gap %.4f ± %.4f", r.ESS, r.Acceptance, r.Gap.Value, r.Gap.Err)
	exact := map[string]float64{"phi2": phi2, "chi": chi, "G_half": gHalf, "U4": 0, "gR": 0, "mR2": m2}
	for name, want := range exact {
		e, ok := r.Results.Get(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		within(name, e.Value, e.Err, want, 4)
	}
}
