package lattice

import (
	"context"
	"fmt"
	"math"
)

// LocalAction gives the change of the action when one component of one site changes: DeltaS(φ, i, v) =
// S(φ with φ_i = v) − S(φ), i an index into the (C, L, L) layout. It must not modify phi and must be safe
// for concurrent use on different fields. The local Metropolis sampler needs it (a full Eval per proposal
// would cost O(V) instead of O(1)).
type LocalAction interface {
	DeltaS(phi []float64, i int, v float64) float64
}

// LocalFor returns the local form of a: a itself if it implements LocalAction; for the φ⁴ family (free,
// phi4, o2: any action with the standard-convention parameters M2() and Lambda()) a local form written
// from the standard-convention formula; for the relaxed Ising model (any one-channel action with a dense KInverse())
// the O(N) form below. These are independent implementations of the actions: the tests check them
// against differences of a.Eval.
func LocalFor(a HostAction) (LocalAction, error) {
	if la, ok := a.(LocalAction); ok {
		return la, nil
	}
	if p, ok := a.(interface {
		M2() float64
		Lambda() float64
	}); ok {
		return phi4Local{L: a.Size(), C: a.Channels(), m2: p.M2(), lambda: p.Lambda()}, nil
	}
	if k, ok := a.(interface{ KInverse() []float64 }); ok && a.Channels() == 1 {
		n := a.Size() * a.Size()
		kinv := k.KInverse()
		if len(kinv) == n*n {
			return isingLocal{n: n, kinv: kinv}, nil
		}
	}
	name := "this action"
	if n, ok := a.(interface{ Name() string }); ok {
		name = fmt.Sprintf("action %q", n.Name())
	}
	return nil, fmt.Errorf("lattice: metropolis: %s has no local form (implement LocalAction)", name)
}

// phi4Local is ΔS for the standard-convention φ⁴ action with C components,
// S = Σ_x [ ½ Σ_μ |φ_{x+μ} − φ_x|² + ½ m² |φ_x|² + λ |φ_x|⁴ ]. Changing component c at site x from u to v:
//
//	ΔS = 2(v² − u²) − (v − u) Σ_{y~x} φ_{c,y} + ½ m² (v² − u²) + λ (r'⁴ − r⁴),
//
// r² = |φ_x|², r'² = r² − u² + v², and the sum runs over the 4 nearest neighbours (with multiplicity: for
// L = 2 the two neighbours along an axis coincide and count twice).
type phi4Local struct {
	L, C       int
	m2, lambda float64
}

func (p phi4Local) DeltaS(phi []float64, idx int, v float64) float64 {
	L, V := p.L, p.L*p.L
	c, s := idx/V, idx%V
	i, j := s/L, s%L
	f := phi[c*V : (c+1)*V]
	nb := f[next(i, L)*L+j] + f[prev(i, L)*L+j] + f[i*L+next(j, L)] + f[i*L+prev(j, L)]
	u := f[s]
	r2 := 0.0
	for cc := range p.C {
		x := phi[cc*V+s]
		r2 += x * x
	}
	r2n := r2 - u*u + v*v
	d2 := v*v - u*u
	return 2*d2 - (v-u)*nb + 0.5*p.m2*d2 + p.lambda*(r2n*r2n-r2*r2)
}

// isingLocal is ΔS for the relaxed Ising action S(x) = ½ xᵀK⁻¹x − Σ_i ln cosh x_i: changing x_i from u to
// v = u + d gives ΔS = d (K⁻¹x)_i + ½ d² (K⁻¹)_ii − ln cosh v + ln cosh u, O(N) per proposal.
type isingLocal struct {
	n    int
	kinv []float64 // dense N×N, row-major
}

func (s isingLocal) DeltaS(x []float64, i int, v float64) float64 {
	row := s.kinv[i*s.n : (i+1)*s.n]
	kx := 0.0
	for j, k := range row {
		kx += k * x[j]
	}
	u := x[i]
	d := v - u
	// ln cosh y = |y| + log1p(e^{−2|y|}) − ln 2; the ln 2 cancels in the difference.
	lc := func(y float64) float64 { y = math.Abs(y); return y + math.Log1p(math.Exp(-2*y)) }
	return d*kx + 0.5*d*d*row[i] - lc(v) + lc(u)
}

// MetropolisConfig configures RunMetropolis. The zero value of every field is a documented default.
type MetropolisConfig struct {
	// Sweeps is the number of sweeps per chain after thermalisation (one sweep proposes a change of every
	// field component once, in lexicographic order); zero → 1000.
	Sweeps int
	// Thermalize is the number of discarded warm-up sweeps; the proposal width is tuned during them (unless
	// FixedWidth). Zero means none.
	Thermalize int
	// Every keeps one configuration every Every sweeps; zero → 1.
	Every int
	// Chains, Workers and Seed are as in HMCConfig (chain c uses ChainRand(Seed, c)).
	Chains  int
	Workers int
	Seed    uint64
	// Width is the proposal half-width δ: φ_i' = φ_i + δ(2u − 1), u ~ U[0, 1); zero → 1.
	Width float64
	// FixedWidth disables the tuning of δ during thermalisation.
	FixedWidth bool
	// TargetAccept is the acceptance rate the tuning aims for; zero → 0.5.
	TargetAccept float64
	// NoFlip disables the global flip φ → −φ after every sweep of a Z2 action.
	NoFlip bool
	// Cold starts at φ = 0 instead of φ_i ~ N(0, 1).
	Cold bool
}

// MetropolisStats summarises one chain (measured sweeps only).
type MetropolisStats struct {
	Width    float64
	Proposed int
	Accepted int
}

// RunMetropolis runs cfg.Chains independent local Metropolis chains of a (which must have a local form,
// see LocalFor) in parallel and calls visit (which may be nil) for every kept configuration with its
// action. It is the independent check of HMC: no force, no integrator. Like RunHMC, its numbers depend only
// on a, cfg (not Workers) and the seed.
func RunMetropolis(ctx context.Context, a HostAction, cfg MetropolisConfig, visit Visitor) ([]MetropolisStats, error) {
	if cfg.Sweeps == 0 {
		cfg.Sweeps = 1000
	}
	if cfg.Every == 0 {
		cfg.Every = 1
	}
	if cfg.Chains == 0 {
		cfg.Chains = 1
	}
	if cfg.Workers == 0 {
		cfg.Workers = HMCConfig{}.withDefaults().Workers
	}
	if cfg.Width == 0 {
		cfg.Width = 1
	}
	if cfg.TargetAccept == 0 {
		cfg.TargetAccept = 0.5
	}
	switch {
	case cfg.Sweeps < 0 || cfg.Thermalize < 0 || cfg.Every < 1 || cfg.Chains < 1 || cfg.Workers < 1:
		return nil, fmt.Errorf("lattice: metropolis: bad counts (Sweeps=%d, Thermalize=%d, Every=%d, Chains=%d, Workers=%d)",
			cfg.Sweeps, cfg.Thermalize, cfg.Every, cfg.Chains, cfg.Workers)
	case !(cfg.Width > 0) || math.IsInf(cfg.Width, 0):
		return nil, fmt.Errorf("lattice: metropolis: Width=%v, want a finite δ > 0", cfg.Width)
	case !(cfg.TargetAccept > 0 && cfg.TargetAccept < 1):
		return nil, fmt.Errorf("lattice: metropolis: TargetAccept=%v, want 0 < target < 1", cfg.TargetAccept)
	}
	local, err := LocalFor(a)
	if err != nil {
		return nil, err
	}
	stats := make([]MetropolisStats, cfg.Chains)
	err = runChains(ctx, cfg.Chains, cfg.Workers, func(chain int) error {
		st, err := runMetropolisChain(ctx, a, local, cfg, chain, visit)
		stats[chain] = st
		return err
	})
	return stats, err
}

func runMetropolisChain(ctx context.Context, a HostAction, local LocalAction, cfg MetropolisConfig, chain int, visit Visitor) (MetropolisStats, error) {
	rng := ChainRand(cfg.Seed, chain)
	phi := startConfig(a, rng, cfg.Cold)
	flipped := make([]float64, len(phi))
	flip := a.Z2() && !cfg.NoFlip
	width := cfg.Width
	sweep := func() (acc int) {
		for i := range phi {
			v := phi[i] + width*(2*rng.Float64()-1)
			d := local.DeltaS(phi, i, v)
			if d <= 0 || rng.Float64() < math.Exp(-d) {
				phi[i] = v
				acc++
			}
		}
		if flip {
			for i, x := range phi {
				flipped[i] = -x
			}
			if d := a.Eval(flipped) - a.Eval(phi); d <= 0 || rng.Float64() < math.Exp(-d) {
				copy(phi, flipped)
			}
		}
		return acc
	}
	for t := range cfg.Thermalize {
		if t%16 == 0 && ctx.Err() != nil {
			return MetropolisStats{}, ctx.Err()
		}
		acc := sweep()
		if !cfg.FixedWidth {
			// Multiplicative Robbins–Monro adaptation with a decaying gain; frozen after thermalisation.
			rate := float64(acc) / float64(len(phi))
			width *= math.Exp((rate - cfg.TargetAccept) / math.Sqrt(float64(t)+1))
		}
	}
	st := MetropolisStats{Width: width}
	k := 0
	for t := 1; t <= cfg.Sweeps; t++ {
		if t%16 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		st.Accepted += sweep()
		st.Proposed += len(phi)
		if t%cfg.Every == 0 {
			if visit != nil {
				visit(chain, k, phi, a.Eval(phi))
			}
			k++
		}
	}
	return st, nil
}
