package bulk

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// Posterior is the energy of a Repair's free latents z_c under the model conditioned on the known values,
//
//	U(z_c) = Σ_{known p} (F⁻¹(z)_p − Observed_p)² / (2σ²) − ln p(z),
//
// the Repair loss, so that exp(−U) is the posterior of the free latents given the known values under
// Gaussian observation noise σ (the conditioning term, weight 1/(2σ²)) and the flow's prior, with every
// other latent fixed at Start. It evaluates U and ∇U through the Repair's graph (restricted decode
// included) in float64, whatever the dtype of the trained weights (they are copied), because a Metropolis
// test needs energies smooth to ~1e-10. It is not safe for concurrent use; Close it when done.
type Posterior struct {
	rep  *Repair
	zc   *tensor.Dense // the free latents' tensor in the float64 store (the graph reads it)
	m    G.VM
	u, g G.Value
	// Grads counts gradient evaluations.
	Grads int64
}

// NewPosterior builds U for a copy of rep (its Name is replaced) over a float64 copy of store (the flow's
// weights). rep.Start fixes the latents outside the free set; the free latents start there too.
func NewPosterior(rep Repair, store *layers.Store) (*Posterior, error) {
	st, err := Float64Store(store)
	if err != nil {
		return nil, err
	}
	rep.Name = "posterior/z"
	rep.Decoder = nil
	rep.Cone = nil
	g := G.NewGraph()
	s := layers.NewScope(g, st)
	loss, err := rep.Build(s, 1)
	if err != nil {
		return nil, fmt.Errorf("bulk: Posterior: %w", err)
	}
	zc := s.Param(rep.Name, []int{len(rep.Cone)}, nil)
	grads, err := layers.Grad(loss, zc)
	if err != nil {
		return nil, fmt.Errorf("bulk: Posterior: ∇U: %w", err)
	}
	p := &Posterior{rep: &rep}
	G.Read(loss, &p.u)
	G.Read(grads[0], &p.g)
	t, ok := st.Get(rep.Name)
	if !ok {
		return nil, errors.New("bulk: Posterior: the free latents are not in the store")
	}
	p.zc = t
	if p.m, err = layers.NewTapeMachine(g); err != nil {
		return nil, fmt.Errorf("bulk: Posterior: %w", err)
	}
	return p, nil
}

// Dim is the number of free latents.
func (p *Posterior) Dim() int { return len(p.rep.Cone) }

// Free lists the free latents (flat indices into the C·L·L grid), in the order of z_c.
func (p *Posterior) Free() []int { return p.rep.Cone }

// Latents returns Start with the free latents replaced by zc.
func (p *Posterior) Latents(zc []float64) []float64 {
	z := append([]float64(nil), p.rep.Start...)
	for i, k := range p.rep.Cone {
		z[k] = zc[i]
	}
	return z
}

// EvalGrad returns U(zc) and writes ∇U into grad.
func (p *Posterior) EvalGrad(zc, grad []float64) (float64, error) {
	if len(zc) != p.Dim() || len(grad) != p.Dim() {
		return 0, fmt.Errorf("bulk: Posterior: %d latents and %d gradient values, want %d", len(zc), len(grad), p.Dim())
	}
	defer p.m.Reset()
	layers.SetData(p.zc, zc)
	if err := p.rep.Feed(nil); err != nil {
		return 0, err
	}
	if err := p.m.RunAll(); err != nil {
		return 0, fmt.Errorf("bulk: Posterior: %w", err)
	}
	p.Grads++
	copy(grad, layers.ValueFloats(p.g))
	return layers.ValueFloats(p.u)[0], nil
}

// Close releases the machine.
func (p *Posterior) Close() error { return p.m.Close() }

// HMCConfig sets up Sample. Langevin dynamics with a Metropolis test (MALA) is Leapfrog = 1.
type HMCConfig struct {
	Samples  int     // samples kept, one per trajectory after burn-in
	Burn     int     // trajectories discarded first; during them ε adapts towards Target acceptance
	Leapfrog int     // leapfrog steps per trajectory
	Eps      float64 // initial step size
	Target   float64 // acceptance aimed at during burn-in (0 means 0.7)
}

// HMCResult is what Sample returns.
type HMCResult struct {
	Samples    [][]float64 // Samples × dim
	Acceptance float64     // after burn-in
	Eps        float64     // the (mean) step size used after burn-in
	Grads      int64       // gradient evaluations, burn-in included
}

// Sample runs Hamiltonian Monte Carlo on exp(−U) from x0 with unit mass: each trajectory draws fresh
// Gaussian momenta, integrates Leapfrog steps of size ε (jittered uniformly by ±20 %) and accepts with probability min(1, e^{−ΔH}), so
// exp(−U) is left exactly invariant for any ε (the step size only changes during burn-in, before any sample
// is kept).
func Sample(u func(x, grad []float64) (float64, error), x0 []float64, c HMCConfig, rng *rand.Rand) (*HMCResult, error) {
	if c.Samples < 1 || c.Burn < 0 || c.Leapfrog < 1 || !(c.Eps > 0) || math.IsInf(c.Eps, 0) || c.Target < 0 || c.Target >= 1 {
		return nil, fmt.Errorf("bulk: HMC: samples %d, burn %d, leapfrog %d, ε %v, target %v; want ≥ 1, ≥ 0, ≥ 1, ε > 0, 0 ≤ target < 1",
			c.Samples, c.Burn, c.Leapfrog, c.Eps, c.Target)
	}
	target := c.Target
	if target == 0 {
		target = 0.7
	}
	n := len(x0)
	x := append([]float64(nil), x0...)
	g := make([]float64, n)
	res := &HMCResult{}
	ux, err := u(x, g)
	res.Grads++
	if err != nil {
		return nil, err
	}
	if math.IsNaN(ux) || math.IsInf(ux, 0) {
		return nil, fmt.Errorf("bulk: HMC: energy %v at the start", ux)
	}
	eps := c.Eps
	xn, gn, p := make([]float64, n), make([]float64, n), make([]float64, n)
	accepted := 0
	for it := 0; it < c.Burn+c.Samples; it++ {
		k0 := 0.0
		for i := range p {
			p[i] = rng.NormFloat64()
			k0 += p[i] * p[i] / 2
		}
		copy(xn, x)
		copy(gn, g)
		un := ux
		// ε jittered by ±20 % per trajectory: a fixed ε·Leapfrog can sit at a half period of some mode of a
		// near-Gaussian target, where HMC is exact but not ergodic (it flips x → −x forever).
		e := eps * (0.8 + 0.4*rng.Float64())
		for range c.Leapfrog {
			for i := range p {
				p[i] -= e / 2 * gn[i]
				xn[i] += e * p[i]
			}
			if un, err = u(xn, gn); err != nil {
				return nil, err
			}
			res.Grads++
			for i := range p {
				p[i] -= e / 2 * gn[i]
			}
		}
		k1 := 0.0
		for _, v := range p {
			k1 += v * v / 2
		}
		dH := un + k1 - ux - k0
		acc := 0.0
		if !math.IsNaN(dH) {
			acc = math.Min(1, math.Exp(-dH))
		}
		if rng.Float64() < acc {
			x, xn = xn, x
			g, gn = gn, g
			ux = un
			if it >= c.Burn {
				accepted++
			}
		}
		if it < c.Burn {
			eps *= math.Exp(0.5 * (acc - target)) // a crude Robbins–Monro step towards the target
		} else {
			res.Samples = append(res.Samples, append([]float64(nil), x...))
		}
	}
	res.Acceptance = float64(accepted) / float64(c.Samples)
	res.Eps = eps
	return res, nil
}
