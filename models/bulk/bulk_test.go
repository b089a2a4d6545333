package bulk

import (
	"context"
	"flag"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
)

var long = flag.Bool("long", false, "run the long validations")

// testFlow is the named preset at L (one channel) with its parameters created and perturbed by
// N(0, scale²) noise (scale 0 keeps the identity flow of the initialisation).
func testFlow(t testing.TB, preset string, L int, scale float64, seed uint64) (*models.Flow, *layers.Store) {
	t.Helper()
	cfg, err := models.Preset(preset, L, 1)
	if err != nil {
		t.Fatal(err)
	}
	return testFlowCfg(t, cfg, scale, seed)
}

// testFlowCfg builds the flow of cfg with its parameters perturbed by N(0, scale²).
func testFlowCfg(t testing.TB, cfg models.Config, scale float64, seed uint64) (*models.Flow, *layers.Store) {
	t.Helper()
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store := layers.NewStore(tensor.Float64, seed)
	s := layers.NewScope(G.NewGraph(), store)
	if _, _, err := flow.LogProb(s, s.Input("x", flow.Shape(1)...)); err != nil {
		t.Fatal(err)
	}
	if scale > 0 {
		store.Perturb(rand.New(rand.NewPCG(seed, 2)), scale)
	}
	return flow, store
}

func gauss(rng *rand.Rand, n int, sd float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = sd * rng.NormFloat64()
	}
	return v
}

// At initialisation every layer is the identity, so S_eff = S and its force is the host force exactly
// (up to float64 rounding of the graph's sum, ~1e-13 relative).
func TestIdentityFlowIsTheAction(t *testing.T) {
	act, err := lattice.NewPhi4(8, -4, 1.502)
	if err != nil {
		t.Fatal(err)
	}
	flow, store := testFlow(t, "neuralrg-small", 8, 0, 1)
	a, err := New(act, flow, store)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	z := gauss(rng, 64, 1)
	if got, want := a.Eval(z), act.Eval(z); math.Abs(got-want) > 1e-12*math.Abs(want) {
		t.Errorf("S_eff = %.15g, S = %.15g", got, want)
	}
	f, want := make([]float64, 64), make([]float64, 64)
	a.Force(f, z)
	act.Force(want, z)
	for i := range f {
		if math.Abs(f[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
			t.Fatalf("force[%d] = %.15g, host force %.15g", i, f[i], want[i])
		}
	}
	if a.GradEvals() != 1 {
		t.Errorf("GradEvals = %d, want 1", a.GradEvals())
	}
}

// With random weights S_eff(z) is checked through an independent route: x = F⁻¹(z) from the generation
// graph, then the forward (inference) graph's log q(x) = log p(F(x)) + ldj_F(x) and the host action, so
// S_eff(z) = S(x) − ldj_I(z) = S(x) + log q(x) − log p(z), with log p(z) the standard normal density by hand.
func TestSeffThroughInference(t *testing.T) {
	act, _ := lattice.NewPhi4(4, 0.5, 0.3)
	flow, store := testFlow(t, "neuralrg-small", 4, 0.3, 5)
	a, err := New(act, flow, store)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	enc, err := models.NewEncoder(flow, store, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	rng := rand.New(rand.NewPCG(6, 7))
	for range 3 {
		z := gauss(rng, 16, 1)
		x, seff, err := a.Decode(z)
		if err != nil {
			t.Fatal(err)
		}
		z2, lq, err := enc.Encode(x)
		if err != nil {
			t.Fatal(err)
		}
		logp := 0.0
		for i, v := range z {
			logp += -0.5*v*v - 0.5*math.Log(2*math.Pi)
			if math.Abs(z2[i]-v) > 1e-10 { // a round trip through ~40 couplings in float64
				t.Fatalf("F(F⁻¹(z))[%d] = %g, z = %g", i, z2[i], v)
			}
		}
		want := act.Eval(x) + lq[0] - logp
		if math.Abs(seff-want) > 1e-9*(1+math.Abs(want)) {
			t.Errorf("S_eff = %.12g, S(x) + log q(x) − log p(z) = %.12g", seff, want)
		}
		if e := a.Eval(z); e != seff {
			t.Errorf("Eval = %v, Decode's S_eff = %v", e, seff)
		}
	}
	if a.Err() != nil {
		t.Fatal(a.Err())
	}
}

// The force of S_eff with random weights against central finite differences of Eval.
func TestForceFiniteDifferences(t *testing.T) {
	for _, preset := range []string{"neuralrg-small", "rgflow-tiny"} {
		L := 4
		act, _ := lattice.NewPhi4(L, -1, 0.5)
		flow, store := testFlow(t, preset, L, 0.3, 8)
		a, err := New(act, flow, store)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(9, 10))
		z := gauss(rng, L*L, 0.8)
		f := make([]float64, L*L)
		a.Force(f, z)
		const h = 1e-5
		for i := range z {
			zp := append([]float64(nil), z...)
			zm := append([]float64(nil), z...)
			zp[i] += h
			zm[i] -= h
			fd := -(a.Eval(zp) - a.Eval(zm)) / (2 * h)
			// Central differences: truncation O(h²·S''') ~ 1e-9, rounding ~1e-16·|S|/h ~ 1e-10.
			if math.Abs(fd-f[i]) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("%s: force[%d] = %.10g, finite differences %.10g", preset, i, f[i], fd)
			}
		}
		if err := a.Err(); err != nil {
			t.Fatal(err)
		}
		a.Close()
	}
}

func TestNewErrors(t *testing.T) {
	act, _ := lattice.NewPhi4(8, 1, 0)
	flow, store := testFlow(t, "neuralrg-small", 4, 0, 1)
	if _, err := New(act, flow, store); err == nil {
		t.Error("an L=8 action with an L=4 flow accepted")
	}
	act4, _ := lattice.NewPhi4(4, 1, 0)
	a, err := New(act4, flow, store)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !math.IsNaN(a.Eval(make([]float64, 3))) || a.Err() == nil {
		t.Error("Eval of 3 latents did not fail")
	}
}

// Bulk HMC with random weights, mapped back to x, samples the free field: ⟨φ²⟩ and G(1) against the exact
// propagator. The flow is far from the identity (weights N(0, 0.3²)), so this checks that S_eff is the
// same target seen through the flow.
func TestBulkHMCReproducesFreeField(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk HMC run (a few seconds)")
	}
	const L, m2 = 4, 0.5
	act, _ := lattice.NewFree(L, m2)
	// The default run is short (weights N(0, 0.15²), 4×150 trajectories, ~5 s); -long runs weights
	// N(0, 0.3²) and 4×600 trajectories (~100 s on a loaded 2-core machine).
	scale, traj := 0.15, 150
	if *long {
		scale, traj = 0.3, 600
	}
	flow, store := testFlow(t, "neuralrg-small", L, scale, 11)
	a, err := New(act, flow, store)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const chains = 4
	obs := lattice.NewObserver(act, chains)
	var decodeErr error
	_, err = lattice.RunHMC(context.Background(), a, lattice.HMCConfig{
		Trajectories: traj, Thermalize: 50, Chains: chains, Seed: 3, TrajLength: 1,
	}, func(chain, k int, z []float64, s float64) {
		x, _, err := a.Decode(z)
		if err != nil {
			decodeErr = err
			return
		}
		obs.Measure(chain, x)
	})
	if err != nil || decodeErr != nil {
		t.Fatal(err, decodeErr)
	}
	res, err := obs.Results(lattice.StatsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	phi2, _ := res.Get("phi2")
	want := lattice.FreeG(L, m2, 0, 0)
	// 4σ of the blocked-jackknife error: a false alarm once in ~16000 runs.
	if math.Abs(phi2.Value-want) > 4*phi2.Err {
		t.Errorf("bulk HMC ⟨φ²⟩ = %.4f ± %.4f, exact %.4f", phi2.Value, phi2.Err, want)
	}
	g1 := res.G[1]
	if w := lattice.FreeG(L, m2, 1, 0); math.Abs(g1.Value-w) > 4*g1.Err {
		t.Errorf("bulk HMC G(1) = %.4f ± %.4f, exact %.4f", g1.Value, g1.Err, w)
	}
	t.Logf("⟨φ²⟩ = %.4f ± %.4f (exact %.4f), %d gradient evaluations", phi2.Value, phi2.Err, want, a.GradEvals())
}

// BenchmarkForce is one bulk gradient (forward and backward through the flow at batch 1) for the default
// neuralrg preset at L=8 on φ⁴, with each engine, against the host force of the action itself.
func BenchmarkForce(b *testing.B) {
	act, _ := lattice.NewPhi4(8, -4, 1.502)
	for _, engine := range []string{models.EngineFused, models.EngineGraph} {
		cfg, err := models.Preset("neuralrg", 8, 1)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Engine = engine
		flow, store := testFlowCfg(b, cfg, 0.1, 1)
		a, err := New(act, flow, store)
		if err != nil {
			b.Fatal(err)
		}
		z := gauss(rand.New(rand.NewPCG(1, 2)), 64, 1)
		f := make([]float64, 64)
		b.Run("bulk-"+engine, func(b *testing.B) {
			for b.Loop() {
				a.Force(f, z)
			}
		})
		b.Run("bulk-eval-"+engine, func(b *testing.B) {
			for b.Loop() {
				a.Eval(z)
			}
		})
		a.Close()
	}
	z := gauss(rand.New(rand.NewPCG(1, 2)), 64, 1)
	f := make([]float64, 64)
	b.Run("host", func(b *testing.B) {
		for b.Loop() {
			act.Force(f, z)
		}
	})
}
