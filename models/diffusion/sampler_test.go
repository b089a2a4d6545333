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

var samplerCases = []samplerCase{
	{"EM", func(sde SDE, sc Score, x []float64, rng *rand.Rand) (int, error) {
		return EulerMaruyama(sde, sc, x, 400, 0, rng)
	}},
	{"PC", func(sde SDE, sc Score, x []float64, rng *rand.Rand) (int, error) {
		return PredictorCorrector(sde, sc, x, 400, 0, 0.01, 1, rng) // snr 0.05 biased ⟨φ²⟩ by +1.6% (4σ at n=1000)
	}},
	{"RK4", func(sde SDE, sc Score, x []float64, _ *rand.Rand) (int, error) {
		return ProbabilityFlowRK4(sde, sc, x, sde.T(), 0, 100)
	}},
	{"RK45", func(sde SDE, sc Score, x []float64, _ *rand.Rand) (int, error) {
		return ProbabilityFlowRK45(sde, sc, x, sde.T(), 0, 1e-6, 1e-6)
	}},
}

// TestSamplersFreeField: free field L=16, m²=0.5 with the exact score; every sampler, from the exact prior
// at T, reproduces the exact χ = 1/m², ⟨φ²⟩ = G(0) and G(L/2) (lattice.FreeG) within 3σ, the errors from
// the lattice package's jackknife estimators. 10,000 samples per sampler with -long (about 25 min on the
// loaded 2-core machine); 100 otherwise (about 15 s).
func TestSamplersFreeField(t *testing.T) {
	const L, m2 = 16, 0.5
	n := 100
	if *long {
		n = 10000
	}
	l := mustLat(t, L)
	v0 := must[[]float64](t)(l.FreeVariance(m2))
	action := must[*lattice.Phi4](t)(lattice.NewFree(L, m2))
	procs := []SDE{
		must[*Carosso](t)(NewCarosso(l, 2, 0, 1)),
		must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 0.1}, m2, 1)),
	}
	for pi, sde := range procs {
		sc := must[*FreeScore](t)(NewFreeScore(sde, v0))
		prior := must[*Gaussian](t)(Prior(sde, v0))
		for ci, c := range samplerCases {
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
