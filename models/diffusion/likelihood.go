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
	// Hutchinson forces the estimator even for a ModeDiagonal or TraceScore score (to test it).
	Hutchinson bool
}

// LogLikelihood returns log p_0(x) for every field of the batch x (length n·V, unchanged) under the
// probability-flow ODE of sde with score: it integrates u and ℓ from t = 0 to T with dℓ/dt = ∇·f,
// f = a u − ½ b² s, and returns log prior(u_T) + ℓ(T). The divergence Σ_j (a_j − ½ b_j² ∂s_j/∂u_j) is
// exact for a ModeDiagonal score and for a TraceScore; otherwise Σ_j a_j − ½ E[εᵀ diag(b²) J ε] is
// estimated with Rademacher probes ε in mode coordinates (E εεᵀ = 1) and the Jacobian–vector product J ε
// by central finite differences of the score (2 score evaluations per probe and stage). rng draws the
// probes (unused when the divergence is exact). nfe counts batch score evaluations, the probes' included.
func LogLikelihood(sde SDE, score Score, prior *Gaussian, x []float64, opt LikelihoodOptions, rng *rand.Rand) (logp []float64, nfe int, err error) {
	if b := BasisOf(sde); prior == nil || prior.basis() != b || len(prior.Var) != b.Size() {
		return nil, 0, fmt.Errorf("diffusion: %s: log-likelihood needs a prior in the same mode basis", sde.Name())
	}
	y, ell, nfe, err := flowWithDivergence(sde, score, x, 0, sde.T(), opt, rng)
	if err != nil {
		return nil, nfe, err
	}
	logp = make([]float64, len(ell))
	if err := prior.LogProb(y, logp); err != nil {
		return nil, nfe, err
	}
	for b := range logp {
		logp[b] += ell[b]
	}
	return logp, nfe, nil
}

// SampleLogProb generates with the probability-flow ODE and scores what it generates: x holds a batch
// drawn from prior at T on entry (e.g. by prior.Sample) and the fields at t = 0 on return, and logq is
// their log-density under the model, log q(x_0) = log prior(x_T) + ∫_0^T ∇·f dt along the trajectory
// (the same integral as LogLikelihood's, run backwards). Options and nfe as for LogLikelihood.
func SampleLogProb(sde SDE, score Score, prior *Gaussian, x []float64, opt LikelihoodOptions, rng *rand.Rand) (logq []float64, nfe int, err error) {
	if b := BasisOf(sde); prior == nil || prior.basis() != b || len(prior.Var) != b.Size() {
		return nil, 0, fmt.Errorf("diffusion: %s: SampleLogProb needs a prior in the same mode basis", sde.Name())
	}
	logq = make([]float64, len(x)/max(1, BasisOf(sde).Size()))
	if err := prior.LogProb(x, logq); err != nil {
		return nil, 0, err
	}
	y, ell, nfe, err := flowWithDivergence(sde, score, x, sde.T(), 0, opt, rng)
	if err != nil {
		return nil, nfe, err
	}
	copy(x, y)
	for b := range logq {
		logq[b] -= ell[b] // ℓ(0) = ∫_T^0 ∇·f dt = −∫_0^T ∇·f dt
	}
	return logq, nfe, nil
}

// DivergenceMethod names how LogLikelihood and SampleLogProb take the divergence of the flow for score
// with opt: "exact (mode-diagonal)", "exact (trace)" or "hutchinson (K probes)".
func DivergenceMethod(score Score, opt LikelihoodOptions) string {
	if !opt.Hutchinson {
		if _, ok := score.(ModeDiagonal); ok {
			return "exact (mode-diagonal)"
		}
		if _, ok := score.(TraceScore); ok {
			return "exact (trace)"
		}
	}
	p := opt.Probes
	if p == 0 {
		p = 1
	}
	return fmt.Sprintf("hutchinson (%d probes)", p)
}

// flowWithDivergence integrates the probability-flow ODE for the batch x from t0 to t1 together with
// ℓ, dℓ/dt = ∇·f, ℓ(t0) = 0. It returns the fields at t1 (position space, a new slice) and ℓ(t1) per field.
func flowWithDivergence(sde SDE, score Score, x []float64, t0, t1 float64, opt LikelihoodOptions, rng *rand.Rand) (xt, ell []float64, nfe int, err error) {
	d, err := newDriver(sde, score, x)
	if err != nil {
		return nil, nil, 0, err
	}
	if err := checkODE(sde, t0, t1); err != nil {
		return nil, nil, 0, err
	}
	l := d.lat
	V, n := l.Size(), d.n
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
		return nil, nil, 0, fmt.Errorf("diffusion: log-likelihood: invalid options %+v", opt)
	}
	md, diag := score.(ModeDiagonal)
	diag = diag && !opt.Hutchinson
	ts, trace := score.(TraceScore)
	trace = trace && !diag && !opt.Hutchinson
	deriv := make([]float64, V)
	var probes [][]float64
	var up, um, sp, sm, b2, tr []float64
	switch {
	case trace:
		b2, tr = make([]float64, V), make([]float64, n)
	case !diag:
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
		switch {
		case diag:
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
		case trace:
			for j, bj := range d.b {
				b2[j] = bj * bj
			}
			if err := ts.WeightedTrace(t, u, b2, tr); err != nil {
				return fmt.Errorf("diffusion: score trace at t=%v: %w", t, err)
			}
			for b := range n {
				dy[n*V+b] = sumA - 0.5*tr[b]
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
		err = rk4(f, y, t0, t1, opt.Steps)
	} else {
		err = rk45(f, y, t0, t1, opt.RTol, opt.ATol)
	}
	if err != nil {
		return nil, nil, d.nfe, err
	}
	xt = make([]float64, n*V)
	fromModes(l, xt, y[:n*V])
	return xt, y[n*V:], d.nfe, nil
}
