package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/layers"
)

func TestODEEnginesAgreeBeyondPresets(t *testing.T) {
	// The fused engine against the graph beyond the ode-gerdes preset: the hierarchical flow with the
	// kernel field at every level (lattices 8, 4, 2 behind sublattice masks), with sin and cos features
	// and the kinetic regulariser, and two channels. Samples, log q, the loss and every gradient to 1e-10
	// relative in float64 (the engines sum the same terms in other orders; measured at rounding level).
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"hierarchical-cos-kinetic", func(c *Config) {
			c.ODE.Hierarchical, c.ODE.Odd, c.ODE.Freqs, c.ODE.Steps, c.ODE.Kinetic = true, false, []float64{1, 2}, 2, 0.1
		}},
		{"two-channels", func(c *Config) { c.Channels, c.ODE.Steps = 2, 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Preset("ode-gerdes", 8, 1)
			if err != nil {
				t.Fatal(err)
			}
			tc.mod(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.EngineName() != EngineFused {
				t.Fatalf("engine %q, want fused", cfg.EngineName())
			}
			const batch = 3
			store := layers.NewStore(tensor.Float64, 17)
			f, err := Build(cfg)
			if err != nil {
				t.Fatal(err)
			}
			bind(t, f, store)
			rng := rand.New(rand.NewPCG(1, 9))
			store.Perturb(rng, 0.05)
			n := batch * cfg.Channels * cfg.L * cfg.L
			z, xData := make([]float64, n), make([]float64, n)
			for i := range z {
				z[i], xData[i] = rng.NormFloat64(), 1.5*rng.NormFloat64()
			}
			want := engineRun(t, cfg, EngineGraph, store, z, xData, batch)
			got := engineRun(t, cfg, EngineFused, store, z, xData, batch)
			if len(got) != len(want) {
				t.Fatalf("fused gives %d values, graph %d", len(got), len(want))
			}
			for k, wv := range want {
				gv := got[k]
				scale := 0.0
				for _, a := range wv {
					scale = math.Max(scale, math.Abs(a))
				}
				if len(gv) != len(wv) {
					t.Fatalf("%s has %d values fused, %d graph", k, len(gv), len(wv))
				}
				for i := range wv {
					if math.Abs(gv[i]-wv[i]) > 1e-10*(1+scale) {
						t.Errorf("%s[%d]: fused %.15g, graph %.15g", k, i, gv[i], wv[i])
						break
					}
				}
			}
		})
	}
}
