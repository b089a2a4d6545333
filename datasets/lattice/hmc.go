package lattice

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// HostAction is the part of an Action the samplers need: the host form S(φ) and its force −∂S/∂φ on a
// field of length Channels()·Size()². Every Action satisfies it; so can an effective action that has no
// graph form (e.g. a bulk action S_eff(z) evaluated through a flow).
type HostAction interface {
	Channels() int
	Size() int
	// Z2 reports S(−φ) = S(φ); the samplers then add the global flip φ → −φ.
	Z2() bool
	Eval(phi []float64) float64
	// Force writes −∂S/∂φ into dst without allocating.
	Force(dst, phi []float64)
}

// ChainRand returns the random source of chain number chain of a run seeded with seed: a ChaCha8 stream
// keyed by SplitMix64 expansions of (seed, chain). A chain's stream depends on nothing else, so the same
// seed gives the same chains bit for bit whatever the number of chains, workers or cores.
func ChainRand(seed uint64, chain int) *rand.Rand {
	var key [32]byte
	s := seed ^ 0x6a09e667f3bcc909
	c := uint64(chain) ^ 0xbb67ae8584caa73b
	for i := range 4 {
		s = splitMix64(s + c*0x9e3779b97f4a7c15 + uint64(i))
		binary.LittleEndian.PutUint64(key[8*i:], s)
	}
	return rand.New(rand.NewChaCha8(key))
}

// splitMix64 is one step of Steele, Lea & Flood's SplitMix64 output function.
func splitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// HMC is one Hybrid Monte Carlo chain (Duane, Kennedy, Pendleton & Roweth 1987) for p(φ) ∝ exp(−S(φ))
// with unit-mass momenta, H = S(φ) + ½ Σ p². A trajectory draws p ~ N(0, 1), integrates Hamilton's
// equations with n leapfrog steps of size Eps and accepts with probability min(1, e^{−ΔH}). The force at
// the current configuration is cached, so a trajectory of n steps costs n force evaluations and one Eval.
// Trajectory and Flip do not allocate. An HMC is not safe for concurrent use; run one per goroutine.
type HMC struct {
	a   HostAction
	rng *rand.Rand
	// Eps is the leapfrog step size ε.
	Eps float64

	phi, force, mom []float64
	phi0, force0    []float64
	s               float64
}

// NewHMC returns a chain for a starting at the configuration start (copied; length C·L·L).
func NewHMC(a HostAction, rng *rand.Rand, start []float64, eps float64) (*HMC, error) {
	n := a.Channels() * a.Size() * a.Size()
	if len(start) != n {
		return nil, fmt.Errorf("lattice: hmc: start has %d values, want C·L·L = %d", len(start), n)
	}
	if !(eps > 0) || math.IsInf(eps, 0) {
		return nil, fmt.Errorf("lattice: hmc: step size %v, want a finite ε > 0", eps)
	}
	h := &HMC{a: a, rng: rng, Eps: eps,
		phi: make([]float64, n), force: make([]float64, n), mom: make([]float64, n),
		phi0: make([]float64, n), force0: make([]float64, n)}
	copy(h.phi, start)
	h.s = a.Eval(h.phi)
	if math.IsNaN(h.s) || math.IsInf(h.s, 0) {
		return nil, fmt.Errorf("lattice: hmc: the action of the start configuration is %v", h.s)
	}
	a.Force(h.force, h.phi)
	return h, nil
}

// Phi is the current configuration (owned by the chain: copy it to keep it).
func (h *HMC) Phi() []float64 { return h.phi }

// S is the action of the current configuration.
func (h *HMC) S() float64 { return h.s }

// Trajectory runs one trajectory of n ≥ 1 leapfrog steps and the accept/reject step. It returns the
// acceptance probability min(1, e^{−ΔH}) (0 when ΔH is NaN, e.g. after an integration blow-up), whether the
// proposal was accepted, and ΔH = H_new − H_old (for the check ⟨e^{−ΔH}⟩ = 1).
func (h *HMC) Trajectory(n int) (prob float64, accepted bool, dH float64) {
	if n < 1 {
		n = 1
	}
	eps := h.Eps
	phi, f, p := h.phi, h.force, h.mom
	k := 0.0
	for i := range p {
		v := h.rng.NormFloat64()
		p[i] = v
		k += v * v
	}
	h0 := h.s + 0.5*k
	copy(h.phi0, phi)
	copy(h.force0, f)
	s0 := h.s

	half := 0.5 * eps
	for i := range p {
		p[i] += half * f[i]
	}
	for step := 1; ; step++ {
		for i := range phi {
			phi[i] += eps * p[i]
		}
		h.a.Force(f, phi)
		if step == n {
			break
		}
		for i := range p {
			p[i] += eps * f[i]
		}
	}
	k = 0
	for i := range p {
		v := p[i] + half*f[i]
		k += v * v
	}
	s1 := h.a.Eval(phi)
	dH = s1 + 0.5*k - h0
	prob = 0
	if dH <= 0 {
		prob = 1
	} else if dH < math.Inf(1) { // false for NaN
		prob = math.Exp(-dH)
	}
	u := h.rng.Float64()
	if u < prob {
		h.s = s1
		return prob, true, dH
	}
	copy(phi, h.phi0)
	copy(f, h.force0)
	h.s = s0
	return prob, false, dH
}

// Flip proposes the global flip φ → −φ and accepts it with probability min(1, e^{S(φ) − S(−φ)}), the
// Metropolis rule, so the move is exact for any action; for a Z2 action it is always accepted. The force
// of the flipped field is −F(φ), exact for the even actions this move is used with. It reuses the chain's
// scratch and does not allocate.
func (h *HMC) Flip() bool {
	for i, v := range h.phi {
		h.phi0[i] = -v
	}
	s1 := h.a.Eval(h.phi0)
	d := s1 - h.s
	if !(d <= 0) && !(h.rng.Float64() < math.Exp(-d)) {
		return false
	}
	for i := range h.phi {
		h.phi[i] = h.phi0[i]
		h.force[i] = -h.force[i]
	}
	h.s = s1
	return true
}

// RandomFlip proposes the global flip with probability ½ (drawn from the chain's source) and otherwise
// leaves the field alone; it reports whether a flip was proposed and whether it was accepted. Each of the
// two moves leaves the distribution invariant, so their mixture does too. The coin matters: a flip that
// follows every trajectory of a Z2 action is always accepted, so fields recorded every second trajectory
// would all have seen an even number of flips and the chain's sign would stay where HMC left it.
func (h *HMC) RandomFlip() (proposed, accepted bool) {
	if h.rng.Uint64()&1 == 0 {
		return false, false
	}
	return true, h.Flip()
}

// HMCConfig configures RunHMC. The zero value of every field is a documented default.
type HMCConfig struct {
	// Trajectories is the number of trajectories per chain after thermalisation; zero → 1000.
	Trajectories int
	// Thermalize is the number of warm-up trajectories per chain, discarded; the step size is tuned during
	// them (unless FixedStep). Zero means no warm-up (and no tuning).
	Thermalize int
	// Every keeps one configuration every Every trajectories: a chain yields Trajectories/Every
	// measurements. Zero → 1.
	Every int
	// Chains is the number of independent chains; zero → 1. Chain c uses ChainRand(Seed, c).
	Chains int
	// Workers is the number of goroutines running chains; zero → runtime.GOMAXPROCS(0). It never changes
	// the numbers produced.
	Workers int
	// Seed seeds every chain (see ChainRand).
	Seed uint64

	// StepSize is the initial leapfrog step ε, the one kept when FixedStep is set; zero → 0.1.
	StepSize float64
	// FixedStep disables the tuning of ε during thermalisation.
	FixedStep bool
	// TargetAccept is the mean acceptance probability the tuning aims for; zero → 0.8.
	TargetAccept float64
	// TrajLength is the mean trajectory length τ in molecular-dynamics time; zero → 1. The number of
	// leapfrog steps of each trajectory is drawn uniformly from {1, …, 2n̄−1}, n̄ = max(1, round(τ/ε)), so
	// its mean is n̄: a randomised length is needed for ergodicity (a fixed length resonates with the
	// oscillation period of some modes, e.g. the free field's zero mode, and biases ⟨φ²⟩, by 6σ in
	// TestHMCFixedLengthBias).
	TrajLength float64
	// FixedLength uses exactly n̄ steps every trajectory. It is wrong for production and exists only to
	// demonstrate that bias.
	FixedLength bool
	// NoFlip disables the global flip φ → −φ proposed with probability ½ after every trajectory of a Z2 action.
	NoFlip bool
	// Cold starts every chain at φ = 0 instead of φ_i ~ N(0, 1).
	Cold bool
}

func (c HMCConfig) withDefaults() HMCConfig {
	if c.Trajectories == 0 {
		c.Trajectories = 1000
	}
	if c.Every == 0 {
		c.Every = 1
	}
	if c.Chains == 0 {
		c.Chains = 1
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.StepSize == 0 {
		c.StepSize = 0.1
	}
	if c.TargetAccept == 0 {
		c.TargetAccept = 0.8
	}
	if c.TrajLength == 0 {
		c.TrajLength = 1
	}
	return c
}

func (c HMCConfig) validate() error {
	switch {
	case c.Trajectories < 0:
		return fmt.Errorf("lattice: hmc: Trajectories=%d is negative", c.Trajectories)
	case c.Thermalize < 0:
		return fmt.Errorf("lattice: hmc: Thermalize=%d is negative", c.Thermalize)
	case c.Every < 1:
		return fmt.Errorf("lattice: hmc: Every=%d, want ≥ 1", c.Every)
	case c.Chains < 1:
		return fmt.Errorf("lattice: hmc: Chains=%d, want ≥ 1", c.Chains)
	case c.Workers < 1:
		return fmt.Errorf("lattice: hmc: Workers=%d, want ≥ 1", c.Workers)
	case !(c.StepSize > 0) || math.IsInf(c.StepSize, 0):
		return fmt.Errorf("lattice: hmc: StepSize=%v, want a finite ε > 0", c.StepSize)
	case !(c.TargetAccept > 0 && c.TargetAccept < 1):
		return fmt.Errorf("lattice: hmc: TargetAccept=%v, want 0 < target < 1", c.TargetAccept)
	case !(c.TrajLength > 0) || math.IsInf(c.TrajLength, 0):
		return fmt.Errorf("lattice: hmc: TrajLength=%v, want a finite τ > 0", c.TrajLength)
	}
	return nil
}

// meanSteps returns n̄ = max(1, round(τ/ε)), capped at 2²⁰.
func meanSteps(tau, eps float64) int {
	n := math.Round(tau / eps)
	if !(n >= 1) {
		return 1
	}
	if n > 1<<20 {
		return 1 << 20
	}
	return int(n)
}

// drawSteps draws the number of leapfrog steps of one trajectory: uniform on {1, …, 2n̄−1} (mean n̄).
func drawSteps(rng *rand.Rand, nbar int, fixed bool) int {
	if fixed || nbar == 1 {
		return nbar
	}
	return 1 + rng.IntN(2*nbar-1)
}

// dualAveraging is Nesterov's dual averaging as used for step-size adaptation by Hoffman & Gelman (2014,
// Algorithm 5), with their constants γ = 0.05, t₀ = 10, κ = 0.75 and μ = ln(10 ε₀).
type dualAveraging struct {
	mu, hbar, logEps, logEpsBar float64
	target                      float64
	m                           int
}

func newDualAveraging(eps0, target float64) dualAveraging {
	return dualAveraging{mu: math.Log(10 * eps0), logEps: math.Log(eps0), logEpsBar: math.Log(eps0), target: target}
}

// update takes the acceptance probability of the last trajectory and returns the next ε.
func (d *dualAveraging) update(prob float64) float64 {
	const gamma, t0, kappa = 0.05, 10.0, 0.75
	d.m++
	m := float64(d.m)
	w := 1 / (m + t0)
	d.hbar = (1-w)*d.hbar + w*(d.target-prob)
	d.logEps = d.mu - math.Sqrt(m)/gamma*d.hbar
	// Keep ε in a sane range while the integrator is exploring (an overflowing trajectory returns 0).
	d.logEps = min(max(d.logEps, -20), 5)
	eta := math.Pow(m, -kappa)
	d.logEpsBar = eta*d.logEps + (1-eta)*d.logEpsBar
	return math.Exp(d.logEps)
}

// final is the averaged step size to freeze after the warm-up.
func (d *dualAveraging) final() float64 { return math.Exp(d.logEpsBar) }

// ChainStats summarises one chain of a run (counts over the measured trajectories only).
type ChainStats struct {
	StepSize     float64 // the frozen leapfrog step after thermalisation
	MeanSteps    int     // n̄, the mean number of leapfrog steps per trajectory
	Trajectories int
	Accepted     int
	MeanProb     float64 // mean acceptance probability ⟨min(1, e^{−ΔH})⟩
	MeanExpMinus float64 // ⟨e^{−ΔH}⟩, which must be 1 within errors (Creutz's check of the integrator)
	Flips        int
	FlipAccepted int
}

// RunResult is what a sampler run reports besides the configurations it visited.
type RunResult struct {
	Chains []ChainStats
}

// Acceptance is the fraction of accepted proposals over all chains (measured part only).
func (r RunResult) Acceptance() float64 {
	a, n := 0, 0
	for _, c := range r.Chains {
		a += c.Accepted
		n += c.Trajectories
	}
	if n == 0 {
		return math.NaN()
	}
	return float64(a) / float64(n)
}

// Visitor receives every kept configuration: chain index, measurement index k (0, 1, … within the chain),
// the configuration (owned by the sampler: copy it to keep it) and its action. Calls for one chain are
// sequential and in order; calls for different chains may be concurrent.
type Visitor func(chain, k int, phi []float64, s float64)

// RunHMC runs cfg.Chains independent HMC chains of a in parallel and calls visit (which may be nil) for
// every kept configuration. The result depends only on a, cfg (not Workers) and the seed. It stops early
// with ctx's error when ctx is cancelled.
func RunHMC(ctx context.Context, a HostAction, cfg HMCConfig, visit Visitor) (RunResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return RunResult{}, err
	}
	res := RunResult{Chains: make([]ChainStats, cfg.Chains)}
	err := runChains(ctx, cfg.Chains, cfg.Workers, func(chain int) error {
		st, err := runHMCChain(ctx, a, cfg, chain, visit)
		res.Chains[chain] = st
		return err
	})
	return res, err
}

// runChains calls run(chain) for chain = 0 … chains−1 on workers goroutines and returns the error of the
// lowest-numbered failing chain.
func runChains(ctx context.Context, chains, workers int, run func(chain int) error) error {
	errs := make([]error, chains)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, chains) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				errs[c] = run(c)
			}
		}()
	}
	for c := range chains {
		if ctx.Err() != nil {
			break
		}
		next <- c
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

func startConfig(a HostAction, rng *rand.Rand, cold bool) []float64 {
	n := a.Channels() * a.Size() * a.Size()
	start := make([]float64, n)
	if !cold {
		for i := range start {
			start[i] = rng.NormFloat64()
		}
	}
	return start
}

func runHMCChain(ctx context.Context, a HostAction, cfg HMCConfig, chain int, visit Visitor) (ChainStats, error) {
	rng := ChainRand(cfg.Seed, chain)
	h, err := NewHMC(a, rng, startConfig(a, rng, cfg.Cold), cfg.StepSize)
	if err != nil {
		return ChainStats{}, fmt.Errorf("chain %d: %w", chain, err)
	}
	flip := a.Z2() && !cfg.NoFlip
	tune := !cfg.FixedStep && cfg.Thermalize > 0
	da := newDualAveraging(cfg.StepSize, cfg.TargetAccept)
	for t := range cfg.Thermalize {
		if t%64 == 0 && ctx.Err() != nil {
			return ChainStats{}, ctx.Err()
		}
		n := drawSteps(rng, meanSteps(cfg.TrajLength, h.Eps), cfg.FixedLength)
		prob, _, _ := h.Trajectory(n)
		if tune {
			h.Eps = da.update(prob)
		}
		if flip {
			h.RandomFlip()
		}
	}
	if tune {
		h.Eps = da.final()
	}
	st := ChainStats{StepSize: h.Eps, MeanSteps: meanSteps(cfg.TrajLength, h.Eps)}
	k := 0
	for t := 1; t <= cfg.Trajectories; t++ {
		if t%64 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		prob, acc, dH := h.Trajectory(drawSteps(rng, st.MeanSteps, cfg.FixedLength))
		st.Trajectories++
		if acc {
			st.Accepted++
		}
		st.MeanProb += prob
		if e := math.Exp(-dH); !math.IsNaN(e) { // a NaN ΔH (blow-up) contributes e^{−∞} = 0
			st.MeanExpMinus += e
		}
		if flip {
			if proposed, accepted := h.RandomFlip(); proposed {
				st.Flips++
				if accepted {
					st.FlipAccepted++
				}
			}
		}
		if t%cfg.Every == 0 {
			if visit != nil {
				visit(chain, k, h.phi, h.s)
			}
			k++
		}
	}
	if st.Trajectories > 0 {
		st.MeanProb /= float64(st.Trajectories)
		st.MeanExpMinus /= float64(st.Trajectories)
	}
	return st, nil
}
