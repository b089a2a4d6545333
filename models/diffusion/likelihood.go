package diffusion

import (
	"fmt"
	"math/rand/v2"
)

// LikelihoodOptions configure LogLikelihood. The zero value integrates with RK45 at rtol = atol = 1e-6
// and, for scores that are not ModeDiagonal, one Hutchinson probe with a finite-difference step 1e-3.
type LikelihoodOptions struct {
	// Steps > 0 integrates with that many RK4 steps; 0 uses RK45.
	Steps int
	// RTol, ATol are RK45's tolerances (default 1e-6 each).
	RTol, ATol float64
	// Probes is the number of Rademacher probes of Hutchinson's estimator (default 1), drawn once per call
	// and kept along the trajectory.
	Probes int
	// FDStep is h in the central difference J ε ≈ (s(u + hε) − s(u − hε)) / 2h (default 1e-3; exact up
	// to rounding for a score that is linear in x).
	FDStep float64
	// Hutchinson forces the estimator even for a ModeDiagonal score (to test it).
	Hutchinson bool
}

// LogLikelihood returns log p_0(x) for every field of the batch x (length n·V, unchanged) under the
// probability-flow ODE of sde with score: it integrates u and ℓ from t = 0 to T with dℓ/dt = ∇·f,
// f = a u − ½ b² s, and returns log prior(u_T) + ℓ(T). The divergence Σ_j (a_j − ½ b_j² ∂s_j/∂u_j) is
// exact for a ModeDiagonal score; otherwise Σ_j a_j − ½ E[εᵀ diag(b²) J ε] is estimated with Rademacher
// probes ε in mode coordinates (E εεᵀ = 1) and the Jacobian–vector product J ε by central finite
// differences of the score (2 score evaluations per probe and stage). rng draws the probes (unused when
// the divergence is exact). nfe counts batch score evaluations, the probes' included.
func LogLikelihood(sde SDE, score Score, prior *Gaussian, x []float64, opt LikelihoodOptions, rng *rand.Rand) (logp []float64, nfe int, err error) {
	d, err := newDriver(sde, score, x)
	if err != nil {
		return nil, 0, err
	}
	l := d.lat
	V, n := l.Size(), d.n
	if prior == nil || prior.basis() != l || len(prior.Var) != V {
		return nil, 0, fmt.Errorf("diffusion: %s: log-likelihood needs a prior in the same mode basis", sde.Name())
	}
	if opt.RTol == 0 {
		opt.RTol = 1e-6
	}
	if opt.ATol == 0 {
		opt.ATol = 1e-6
	}
	if opt.Probes == 0 {
		opt.Probes = 1
	}
	if opt.FDStep == 0 {
		opt.FDStep = 1e-3
	}
	if opt.Steps < 0 || opt.Probes < 0 || !(opt.FDStep > 0) || !(opt.RTol > 0) || !(opt.ATol > 0) {
		return nil, 0, fmt.Errorf("diffusion: log-likelihood: invalid options %+v", opt)
	}
	md, exact := score.(ModeDiagonal)
	exact = exact && !opt.Hutchinson
	deriv := make([]float64, V)
	var probes [][]float64
	var up, um, sp, sm []float64
	if !exact {
		probes = make([][]float64, opt.Probes)
		for p := range probes {
			probes[p] = make([]float64, n*V)
			for i := range probes[p] {
				probes[p][i] = float64(2*int(rng.Uint64()&1) - 1)
			}
		}
		up, um, sp, sm = make([]float64, n*V), make([]float64, n*V), make([]float64, n*V), make([]float64, n*V)
	}
	f := func(t float64, y, dy []float64) error {
		u, du := y[:n*V], dy[:n*V]
		if err := d.odeDrift(t, u, du); err != nil { // leaves a, b at t in d
			return err
		}
		var sumA float64
		for _, a := range d.a {
			sumA += a
		}
		if exact {
			if err := md.ModeDerivative(t, deriv); err != nil {
				return err
			}
			div := sumA
			for j, g := range deriv {
				div -= 0.5 * d.b[j] * d.b[j] * g
			}
			for b := range n {
				dy[n*V+b] = div
			}
			return nil
		}
		for b := range n {
			dy[n*V+b] = sumA
		}
		h := opt.FDStep
		for _, e := range probes {
			for i := range u {
				up[i], um[i] = u[i]+h*e[i], u[i]-h*e[i]
			}
			if err := d.scoreModes(t, up, sp); err != nil {
				return err
			}
			if err := d.scoreModes(t, um, sm); err != nil {
				return err
			}
			for b := range n {
				var q float64
				for j := range V {
					i := b*V + j
					q += e[i] * d.b[j] * d.b[j] * (sp[i] - sm[i]) / (2 * h)
				}
				dy[n*V+b] -= 0.5 * q / float64(len(probes))
			}
		}
		return nil
	}
	y := make([]float64, n*V+n)
	copy(y, toModes(l, x))
	if opt.Steps > 0 {
		err = rk4(f, y, 0, sde.T(), opt.Steps)
	} else {
		err = rk45(f, y, 0, sde.T(), opt.RTol, opt.ATol)
	}
	if err != nil {
		return nil, d.nfe, err
	}
	xT := make([]float64, n*V)
	fromModes(l, xT, y[:n*V])
	logp = make([]float64, n)
	if err := prior.LogProb(xT, logp); err != nil {
		return nil, d.nfe, err
	}
	for b := range n {
		logp[b] += y[n*V+b]
	}
	return logp, d.nfe, nil
}
