package lattice

import (
	"context"
	"math"
	"testing"
)

// TestLocalDeltaS checks the local φ⁴ form against differences of the action's own Eval (an independent
// implementation), including L = 2 where neighbours coincide, and O(2).
func TestLocalDeltaS(t *testing.T) {
	f8, _ := NewFree(8, 0.7)
	is4, _ := NewIsingRelaxed(4, IsingTc())
	is2, _ := NewIsingRelaxed(2, 1.5)
	p2, _ := NewPhi4(2, -1.3, 0.4)
	p4, _ := NewPhi4(4, -4, 1.502)
	o4, _ := NewO2(4, -2, 0.7)
	o2, _ := NewO2(2, 0.3, 0.2)
	p6, _ := NewPhi4(6, -1, 0.5) // even sizes that are not powers of two
	o10, _ := NewO2(10, -2, 0.7)
	is6, _ := NewIsingRelaxed(6, 2)
	rng := ChainRand(1, 0)
	for _, a := range []Action{f8, p2, p4, o4, o2, is4, is2, p6, o10, is6} {
		la, err := LocalFor(a)
		if err != nil {
			t.Fatal(err)
		}
		phi := startConfig(a, rng, false)
		s0 := a.Eval(phi)
		for i := range phi {
			v := phi[i] + rng.NormFloat64()
			d := la.DeltaS(phi, i, v)
			old := phi[i]
			phi[i] = v
			want := a.Eval(phi) - s0
			phi[i] = old
			// Round-off: S is a sum of O(V) terms of O(1).
			if math.Abs(d-want) > 1e-10*(1+math.Abs(s0)) {
				t.Errorf("%s L=%d: ΔS at %d = %.12g, Eval difference %.12g", a.Name(), a.Size(), i, d, want)
				break
			}
		}
	}
	if _, err := LocalFor(noLocal{f8}); err == nil {
		t.Error("an action without a local form: LocalFor should fail")
	}
}

// TestMetropolisAgreesWithHMC samples real φ⁴ by local Metropolis and by HMC and requires every
// observable to agree within 4 combined standard errors, at two points: L = 4, m² = −1, λ = 0.5 (a double
// well, ⟨|M|⟩ clearly non-zero) and the AKS/Gerdes benchmark point L = 8, m² = −4, λ = 1.502 (ξ ≈ L/4).
func TestMetropolisAgreesWithHMC(t *testing.T) {
	for _, c := range []struct {
		L          int
		m2, lambda float64
		n          int
	}{{4, -1, 0.5, 6000}, {8, -4, 1.502, 8000}} {
		a, err := NewPhi4(c.L, c.m2, c.lambda)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("L=%d m²=%g λ=%g", c.L, c.m2, c.lambda)
		hmc, _ := sample(t, a, HMCConfig{Trajectories: c.n, Thermalize: 300, Chains: 4, Seed: 21})
		obs := NewObserver(a, 4)
		st, err := RunMetropolis(context.Background(), a, MetropolisConfig{Sweeps: c.n, Thermalize: 300, Chains: 4, Seed: 22}, obs.Visitor())
		if err != nil {
			t.Fatal(err)
		}
		met, err := obs.Results(StatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Metropolis: width %.3f, acceptance %.3f", st[0].Width, float64(st[0].Accepted)/float64(st[0].Proposed))
		for _, name := range []string{"abs_m", "chi", "chi_c", "phi2", "G_half", "U4", "mR2"} {
			h, _ := hmc.Get(name)
			m, _ := met.Get(name)
			sig := math.Hypot(h.Err, m.Err)
			t.Logf("%-7s HMC %.5f ± %.5f (τ %.1f)   Metropolis %.5f ± %.5f (τ %.1f)   %+.2fσ", name, h.Value, h.Err, h.Tau, m.Value, m.Err, m.Tau, (h.Value-m.Value)/sig)
			if math.Abs(h.Value-m.Value) > 4*sig || h.ShortRun || m.ShortRun {
				t.Errorf("L=%d %s: HMC %.5f ± %.5f, Metropolis %.5f ± %.5f", c.L, name, h.Value, h.Err, m.Value, m.Err)
			}
		}
	}
}

// noLocal hides everything but the HostAction methods.
type noLocal struct{ a HostAction }

func (n noLocal) Channels() int              { return n.a.Channels() }
func (n noLocal) Size() int                  { return n.a.Size() }
func (n noLocal) Z2() bool                   { return n.a.Z2() }
func (n noLocal) Eval(phi []float64) float64 { return n.a.Eval(phi) }
func (n noLocal) Force(dst, phi []float64)   { n.a.Force(dst, phi) }

// TestMetropolisIsing: local Metropolis on the relaxed Ising field, L = 4 at T_c, against the exact
// enumeration (no HMC involved), 4σ.
func TestMetropolisIsing(t *testing.T) {
	a, err := NewIsingRelaxed(4, IsingTc())
	if err != nil {
		t.Fatal(err)
	}
	exact, exactAbs, _ := isingExact(4, IsingTc())
	obs := NewObserver(a, 4)
	if _, err := RunMetropolis(context.Background(), a, MetropolisConfig{Sweeps: 8000, Thermalize: 300, Chains: 4, Seed: 8}, obs.Visitor()); err != nil {
		t.Fatal(err)
	}
	res, err := obs.Results(StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := res.Get("m2_improved")
	within(t, "m2_improved", m2, exact, 4)
	am, _ := res.Get("abs_m_spin")
	within(t, "abs_m_spin", am, exactAbs, 4)
}

func TestMetropolisReproducible(t *testing.T) {
	a, _ := NewO2(4, -1, 0.5)
	run := func(chains, workers int) []float64 {
		var out []float64
		_, err := RunMetropolis(context.Background(), a, MetropolisConfig{Sweeps: 20, Thermalize: 10, Chains: chains, Workers: workers, Seed: 7},
			func(c, k int, phi []float64, s float64) {
				if c == 1 {
					out = append(out, phi...)
				}
			})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	x, y := run(2, 1), run(4, 3)
	for i := range x {
		if x[i] != y[i] {
			t.Fatal("chain 1 differs between runs with 2 and 4 chains")
		}
	}
}
