package models_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/layers/bijectortest"
	"rgflow/losses"
	"rgflow/models"
)

func TestODEPresets(t *testing.T) {
	// Every ode- preset builds at L=8, counts its parameters as the store does, starts as the identity
	// (z = x) and round-trips its own samples to the RK4 error (exactly at initialisation: v = 0).
	for _, name := range []string{"ode-gerdes", "ode-cnn", "ode-rg"} {
		cfg, err := models.Preset(name, 8, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		flow, err := models.Build(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		store := layers.NewStore(tensor.Float64, 1)
		rt, err := models.RoundTrip(flow, store, 4, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rt != 0 {
			t.Errorf("%s: round trip %g at initialisation, want 0 (v = 0)", name, rt)
		}
		want, _ := cfg.NumParams()
		if got := store.NumParams(); got != want || got == 0 {
			t.Errorf("%s: store has %d parameters, Config.NumParams says %d", name, got, want)
		}
		wantEngine := models.EngineGraph // only the whole-lattice kernel field has a fused kernel
		if name == "ode-gerdes" {
			wantEngine = models.EngineFused
		}
		if cfg.EngineName() != wantEngine || cfg.ODE == nil || !models.IsODEPreset(name) {
			t.Errorf("%s: engine %q, ODE %v", name, cfg.EngineName(), cfg.ODE)
		}
	}
}

func TestODEPresetErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		L    int
		mod  func(*models.Config)
		want string
	}{
		{"ode-gerdes", 6, nil, "power of two"},
		{"ode-gerdes", 2, nil, "L=2"},
		{"ode-gerdes", 8, func(c *models.Config) { c.ODE.Steps = 0 }, "ODE steps"},
		{"ode-cnn", 8, func(c *models.Config) { c.ODE.Method = "rk45" }, "method"},
		{"ode-cnn", 8, func(c *models.Config) { c.ODE.Hidden = nil }, "hidden"},
		{"ode-gerdes", 8, func(c *models.Config) { c.ODE.Radius = 5 }, "radius"},
		{"ode-cnn", 8, func(c *models.Config) { c.Engine = models.EngineFused }, "no fused kernel"},
		{"ode-gerdes", 8, func(c *models.Config) { c.ODE.Radius, c.Engine = 1, models.EngineFused }, "no fused kernel"},
		{"ode-gerdes", 8, func(c *models.Config) { c.Engine = "turbo" }, "want graph or fused"},
		{"ode-gerdes", 8, func(c *models.Config) { c.ODE.Field = "mlp" }, "velocity field"},
	} {
		cfg, err := models.Preset(tc.name, tc.L, 1)
		if err == nil && tc.mod != nil {
			tc.mod(&cfg)
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s L=%d: error %v, want one mentioning %q", tc.name, tc.L, err, tc.want)
		}
	}
}

func TestSublatticeLeavesOtherSitesAlone(t *testing.T) {
	// Level ℓ of the hierarchical ODE flow moves exactly the sites with both coordinates multiples of
	// 2^ℓ: the rest are that level's latents and must come out bit for bit.
	const L = 8
	for _, st := range []int{1, 2, 4} {
		ode := layers.ODE{Field: layers.KernelField{Channels: 1}, Steps: 2}
		b := layers.Sublattice{Stride: st, Inner: ode}
		store := layers.NewStore(tensor.Float64, 1)
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		xn := s.Input("x", 2, 1, L, L)
		if _, _, err := b.Forward(s, xn); err != nil {
			t.Fatal(err)
		}
		store.Perturb(rand.New(rand.NewPCG(1, 1)), 0.3)
		x := make([]float64, 2*L*L)
		rng := rand.New(rand.NewPCG(2, 2))
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		g = G.NewGraph()
		s = layers.NewScope(g, store)
		xn = s.Input("x", 2, 1, L, L)
		z, _, err := b.Forward(s, xn)
		if err != nil {
			t.Fatal(err)
		}
		var zv G.Value
		G.Read(z, &zv)
		m := layers.MustNewTapeMachine(g)
		G.Let(xn, layers.NewDense(tensor.Float64, []int{2, 1, L, L}, x))
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		m.Close()
		zs := layers.ValueFloats(zv)
		for i := range x {
			r, c := (i/L)%L, i%L
			on := r%st == 0 && c%st == 0
			if moved := zs[i] != x[i]; moved != on {
				t.Errorf("stride %d: site (%d,%d): moved=%v, want %v", st, r, c, moved, on)
			}
		}
	}
}

func TestODERGConformance(t *testing.T) {
	// The hierarchical ODE flow at L=4 (levels on 4×4 and 2×2) through the bijector conformance suite,
	// with weak weights, a narrow time-independent CNN (its hidden layer starts at full strength) and 32
	// steps, so that RK4's error stays below the suite's 1e-10 (with the preset's CNN: 5e-10).
	cfg, err := models.Preset("ode-rg", 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ODE.Steps, cfg.ODE.Hidden, cfg.ODE.TimeBasis = 32, []int{2}, 1
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bijectortest.Run(t, bijectortest.Case{Name: "ode-rg", Bijector: flow.Bijector, Shape: []int{2, 1, 4, 4}, Seed: 3, WeightScale: 0.01})
}

func TestODEKineticRegulariser(t *testing.T) {
	// With --ode-kinetic λ the reverse-KL loss grows by exactly λ·mean ∫|v|² dt along the generation
	// paths (integrated separately here with IntegrateKinetic from t = 1 to 0), and the reported free
	// energy does not change. 1e-12: the same float64 sums in another order.
	const lambda = 0.7
	cfg, err := models.Preset("ode-gerdes", 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ODE.Steps = 3
	act, err := lattice.NewPhi4(4, -4, 1.5)
	if err != nil {
		t.Fatal(err)
	}
	store := layers.NewStore(tensor.Float64, 1)
	const batch = 3
	run := func(k float64) (loss, fq float64, z []float64) {
		c := cfg
		c.ODE = &models.ODEConfig{}
		*c.ODE = *cfg.ODE
		c.ODE.Kinetic = k
		flow, err := models.Build(c)
		if err != nil {
			t.Fatal(err)
		}
		obj := &losses.ReverseKL{Flow: flow, Action: act}
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		l, err := obj.Build(s, batch)
		if err != nil {
			t.Fatal(err)
		}
		if store.NumParams() > 0 && k == 0 {
			store.Perturb(rand.New(rand.NewPCG(4, 4)), 0.05)
		}
		var lv G.Value
		G.Read(l, &lv)
		m := layers.MustNewTapeMachine(g)
		defer m.Close()
		if err := obj.Feed(rand.New(rand.NewPCG(9, 9))); err != nil {
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		met := obj.Metrics()
		return layers.ValueFloats(lv)[0], met["free_energy"], nil
	}
	l0, f0, _ := run(0)
	l1, f1, _ := run(lambda)
	// the latents of that batch, and the kinetic energy of their paths
	zt := layers.NewDense(tensor.Float64, []int{batch, 1, 4, 4}, nil)
	flow, _ := models.Build(cfg)
	if err := flow.Prior.Sample(rand.New(rand.NewPCG(9, 9)), zt); err != nil {
		t.Fatal(err)
	}
	ode := layers.ODE{Field: layers.KernelField{Channels: 1, Freqs: cfg.ODE.Freqs, TimeBasis: cfg.ODE.TimeBasis, Odd: true, D4: true}, Steps: 3}
	g := G.NewGraph()
	s := layers.NewScope(g, store).Sub("ode")
	zn := s.Input("z", batch, 1, 4, 4)
	_, _, kin, err := ode.IntegrateKinetic(s, zn, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kv G.Value
	G.Read(kin, &kv)
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	G.Let(zn, zt)
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	mean := 0.0
	for _, v := range layers.ValueFloats(kv) {
		mean += v / batch
	}
	if mean == 0 {
		t.Fatal("zero kinetic energy: the test would not see anything")
	}
	if d := l1 - l0 - lambda*mean; math.Abs(d) > 1e-12*(1+math.Abs(l0)) {
		t.Errorf("loss with λ=%g: %.15g, without %.15g, λ·mean kinetic %.15g (diff %g)", lambda, l1, l0, lambda*mean, d)
	}
	if f0 == 0 || f0 != f1 {
		t.Errorf("the reported free energy changed with the regulariser: %v → %v", f0, f1)
	}
}
