package models_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/bijectortest"
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
		if cfg.EngineName() != models.EngineGraph || cfg.ODE == nil || !models.IsODEPreset(name) {
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
		{"ode-gerdes", 8, func(c *models.Config) { c.Engine = models.EngineFused }, "no fused kernel"},
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
		m := G.NewTapeMachine(g)
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
