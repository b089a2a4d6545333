package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gaussianMoments returns χ = mean u₀² (the zero mode's variance, M²/V) and ⟨φ²⟩ = mean (1/V) Σ_j u_j² of a
// batch (position space) with their standard errors over the fields (independent samples).
func gaussianMoments(l *Lattice, x []float64) (chi, chiErr, phi2, phi2Err float64) {
	V := l.V
	n := len(x) / V
	u := make([]float64, V)
	c, p := make([]float64, n), make([]float64, n)
	for i := range n {
		l.ToModes(u, x[i*V:(i+1)*V])
		c[i] = u[0] * u[0]
		for _, v := range u {
			p[i] += v * v / float64(V)
		}
	}
	ms := func(a []float64) (float64, float64) {
		var s, s2 float64
		for _, v := range a {
			s += v
		}
		mu := s / float64(len(a))
		for _, v := range a {
			s2 += (v - mu) * (v - mu)
		}
		return mu, math.Sqrt(s2 / float64(len(a)-1) / float64(len(a)))
	}
	chi, chiErr = ms(c)
	phi2, phi2Err = ms(p)
	return
}

// TestAncestralExactForGaussian: for a Gaussian start and its exact score, the ancestral step is the exact
// reverse transition, so 10 steps reproduce the start's χ and ⟨φ²⟩ (exact: v0_0 and mean_j v0_j) within 4σ
// of 4000 independent samples, on the Polchinski flow with the mass regulator μ² = 1 at T = 4 (the CLI's
// default, whose short modes decay at rates p̂² + μ² up to 9) and on the heat flow, with a start of mass²
// 0.5 that differs from the Polchinski propagator's (1), so that the reverse drift is not zero. The same
// check with 10 Euler–Maruyama steps must fail (≥ 6σ): EM's bias at |a| dt = 3.6, which the ancestral step
// does not have.
func TestAncestralExactForGaussian(t *testing.T) {
	const n, steps = 4000, 10
	l := mustLat(t, 8)
	v0 := must[[]float64](t)(l.FreeVariance(0.5))
	exactChi, exactPhi2 := v0[0], 0.0
	for _, v := range v0 {
		exactPhi2 += v / float64(l.V)
	}
	for _, sde := range []SDE{
		must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 1}, 1, 4)),
		must[*Carosso](t)(NewCarosso(l, 1, 1, 4)),
	} {
		score := must[*FreeScore](t)(NewFreeScore(sde, v0))
		prior := must[*Gaussian](t)(Prior(sde, v0))
		for _, name := range []string{"ancestral", "EM"} {
			rng := rand.New(rand.NewPCG(7, 11))
			x := make([]float64, n*l.V)
			if err := prior.Sample(rng, x); err != nil {
				t.Fatal(err)
			}
			var nfe int
			var err error
			if name == "ancestral" {
				nfe, err = Ancestral(sde, score, v0, x, sde.T(), 0, steps, rng)
			} else {
				nfe, err = EulerMaruyama(sde, score, x, steps, 0, rng)
			}
			if err != nil {
				t.Fatal(err)
			}
			if nfe != steps {
				t.Errorf("%s %s: %d score evaluations, want %d", sde.Name(), name, nfe, steps)
			}
			chi, ce, phi2, pe := gaussianMoments(l, x)
			zc, zp := (chi-exactChi)/ce, (phi2-exactPhi2)/pe
			t.Logf("%s %s %d steps: χ %.4f(%.4f) exact %.4f (%.1fσ); ⟨φ²⟩ %.5f(%.5f) exact %.5f (%.1fσ)",
				sde.Name(), name, steps, chi, ce, exactChi, zc, phi2, pe, exactPhi2, zp)
			if name == "ancestral" && (math.Abs(zc) > 4 || math.Abs(zp) > 4) {
				t.Errorf("%s ancestral: χ %.1fσ, ⟨φ²⟩ %.1fσ off the exact values, want within 4σ", sde.Name(), zc, zp)
			}
			if name == "EM" && sde.Name() == "polchinski" && math.Abs(zp) < 6 {
				t.Errorf("%s EM with %d steps: ⟨φ²⟩ only %.1fσ off; the check cannot tell a biased sampler", sde.Name(), steps, zp)
			}
		}
	}
}

// TestAncestralBadInput: wrong reference spectra and step counts are errors.
func TestAncestralBadInput(t *testing.T) {
	l := mustLat(t, 4)
	sde := must[*Carosso](t)(NewCarosso(l, 1, 1, 1))
	v0 := must[[]float64](t)(l.FreeVariance(1))
	score := must[*FreeScore](t)(NewFreeScore(sde, v0))
	x := make([]float64, 2*l.V)
	rng := rand.New(rand.NewPCG(1, 2))
	bad := append([]float64(nil), v0...)
	bad[3] = 0
	for name, f := range map[string]func() error{
		"short v0": func() error { _, err := Ancestral(sde, score, v0[:3], x, 1, 0, 4, rng); return err },
		"zero v0":  func() error { _, err := Ancestral(sde, score, bad, x, 1, 0, 4, rng); return err },
		"steps":    func() error { _, err := Ancestral(sde, score, v0, x, 1, 0, 0, rng); return err },
		"tEnd":     func() error { _, err := Ancestral(sde, score, v0, x, 1, 1, 4, rng); return err },
		"t0":       func() error { _, err := Ancestral(sde, score, v0, x, 2, 0, 4, rng); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestEMBiasStiffModes measures the bias of reverse Euler–Maruyama with the exact score on the CLI's
// default processes at L = 20 (Polchinski with the mass regulator μ² = 1 and propagator mass² 1, and the
// heat flow Ω = 1, μ² = 1, both T = 4), from a free start of mass² 0.5, by the exact variance recursion
// of TestEMDiscretisationBias. The Polchinski flow's short modes decay at rates up to p̂² + μ² = 9, so
// 200 steps (|a| dt = 0.18) leave ⟨φ²⟩ about 5 % low (the test asks for more than 3 %: the bias the
// ancestral sampler removes) and 1000 steps about 1 % (below 1.5 %); the heat flow at 200 steps stays
// below 0.5 % in ⟨φ²⟩ but its zero mode (χ) is 1.3 % low.
func TestEMBiasStiffModes(t *testing.T) {
	l := mustLat(t, 20)
	V := l.V
	v0 := must[[]float64](t)(l.FreeVariance(0.5))
	exact := 0.0
	for _, v := range v0 {
		exact += v / float64(V)
	}
	pol := must[*Polchinski](t)(NewPolchinski(l, MassRegulator{Mu2: 1}, 1, 4))
	car := must[*Carosso](t)(NewCarosso(l, 1, 1, 4))
	for _, c := range []struct {
		sde      SDE
		steps    int
		min, max float64 // bounds on the relative bias of ⟨φ²⟩ in absolute value
	}{{pol, 200, 0.03, 1}, {pol, 1000, 0, 0.015}, {car, 200, 0, 0.005}} {
		w := make([]float64, V)
		if err := MarginalVariance(c.sde, c.sde.T(), v0, w); err != nil {
			t.Fatal(err)
		}
		a, b, v := make([]float64, V), make([]float64, V), make([]float64, V)
		dt := c.sde.T() / float64(c.steps)
		for s := range c.steps {
			tt := c.sde.T() - float64(s)*dt
			if err := c.sde.Coefficients(tt, a, b); err != nil {
				t.Fatal(err)
			}
			if err := MarginalVariance(c.sde, tt, v0, v); err != nil {
				t.Fatal(err)
			}
			for j := range w {
				f := 1 - (a[j]+b[j]*b[j]/v[j])*dt
				w[j] = f*f*w[j] + b[j]*b[j]*dt
			}
		}
		phi2 := 0.0
		for _, x := range w {
			phi2 += x / float64(V)
		}
		rel, relChi := phi2/exact-1, w[0]/v0[0]-1
		t.Logf("%s EM %d steps, exact score: ⟨φ²⟩ %+.2f%%, χ %+.2f%%", c.sde.Name(), c.steps, 100*rel, 100*relChi)
		if math.Abs(rel) < c.min || math.Abs(rel) > c.max {
			t.Errorf("%s EM %d: ⟨φ²⟩ bias %+.3f, want |bias| in [%v, %v]", c.sde.Name(), c.steps, rel, c.min, c.max)
		}
	}
}
