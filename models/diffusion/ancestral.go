package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Ancestral integrates the reverse process from t0 down to tEnd < t0 in steps equal steps by the
// posterior-mean (Tweedie) step of a linear process, per mode coordinate j, from t to s < t:
//
//	u_s = (u_t + q_j(s,t) ŝ_j(u_t, t)) / m_j(s,t) + √(q_j(s,t) v_j(s)/v_j(t)) ξ_j,
//
// with (m, q) the exact transition from s to t and v_j the marginal variance of a Gaussian start of variance
// v0 (the reference spectrum, e.g. the data's). The mean is exact for any distribution given the exact
// score, E[u_s | u_t] = (u_t + q ∇log p_t(u_t))/m (Tweedie's formula for u_t = m u_s + √q ε), and the
// variance is the exact posterior variance of the Gaussian; for a Gaussian start of variance v0 and its
// exact score (FreeScore) every step is the exact reverse transition, so the samples are exact at any step
// count. For any other score it is a first-order integrator of the reverse SDE (q → b² dt, m → 1 + a dt as
// dt → 0) that treats the stiff linear part exactly: Euler–Maruyama evaluates b(t) and the drift at one end
// of the step, and with rates |a| dt that are not small (the Polchinski flow's short modes) it carries an
// O(|a| dt) bias in the variances even with the exact score. x holds the batch at t0 on entry and the
// samples at tEnd on return; it returns the number of score evaluations.
func Ancestral(sde SDE, score Score, v0, x []float64, t0, tEnd float64, steps int, rng *rand.Rand) (nfe int, err error) {
	d, err := newDriver(sde, score, x)
	if err != nil {
		return 0, err
	}
	l := d.lat
	V := l.Size()
	if len(v0) != V {
		return 0, fmt.Errorf("diffusion: ancestral: %d reference variances, want V=%d", len(v0), V)
	}
	for j, v := range v0 {
		if !(v > 0) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("diffusion: ancestral: reference variance v0[%d]=%v, want finite and > 0", j, v)
		}
	}
	if err := checkTime(sde.Name(), t0, sde.T()); err != nil {
		return 0, err
	}
	if err := checkSteps("ancestral", steps, tEnd, t0); err != nil {
		return 0, err
	}
	u := toModes(l, x)
	s := make([]float64, len(u))
	m, q := make([]float64, V), make([]float64, V)
	vs, vt := make([]float64, V), make([]float64, V)
	mean, sd := make([]float64, V), make([]float64, V)
	dt := (t0 - tEnd) / float64(steps)
	if err := MarginalVariance(sde, t0, v0, vt); err != nil {
		return 0, err
	}
	for n := range steps {
		t := t0 - float64(n)*dt
		ts := max(tEnd, t-dt)
		if n == steps-1 {
			ts = tEnd
		}
		if err := sde.Transition(ts, t, m, q); err != nil {
			return d.nfe, err
		}
		if err := MarginalVariance(sde, ts, v0, vs); err != nil {
			return d.nfe, err
		}
		for j := range V {
			if !(m[j] > 0) {
				return d.nfe, fmt.Errorf("diffusion: ancestral: mode %d is damped to zero between t=%v and t=%v (transition mean %v): take more steps", j, ts, t, m[j])
			}
			mean[j] = 1 / m[j]
			sd[j] = math.Sqrt(q[j] * vs[j] / vt[j])
		}
		if err := d.scoreModes(t, u, s); err != nil {
			return d.nfe, err
		}
		for i := range u {
			j := i % V
			u[i] = (u[i]+q[j]*s[i])*mean[j] + sd[j]*rng.NormFloat64()
		}
		vt, vs = vs, vt
	}
	fromModes(l, x, u)
	return d.nfe, nil
}
