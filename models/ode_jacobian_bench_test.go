package models_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
)

// BenchmarkODEJacobianRegulariserStep is BenchmarkODEGerdesReverseKLStep (float64) without and with the
// Jacobian regulariser (--ode-jacobian): its cost is one extra backward pass of the field per RK4 stage,
// and the gradient then differentiates through that pass.
func BenchmarkODEJacobianRegulariserStep(b *testing.B) {
	for _, w := range []float64{0, 0.01} {
		b.Run(fmt.Sprintf("L=16/jacobian=%g", w), func(b *testing.B) {
			const L, batch = 16, 256
			cfg, err := models.Preset("ode-gerdes", L, 1)
			if err != nil {
				b.Fatal(err)
			}
			cfg.ODE.Jacobian = w
			f, err := models.Build(cfg)
			if err != nil {
				b.Fatal(err)
			}
			act, err := lattice.NewPhi4(L, -4, 1.2)
			if err != nil {
				b.Fatal(err)
			}
			store := layers.NewStore(tensor.Float64, 1)
			obj := &losses.ReverseKL{Flow: f, Action: act}
			g := G.NewGraph()
			s := layers.NewScope(g, store)
			loss, err := obj.Build(s, batch)
			if err != nil {
				b.Fatal(err)
			}
			store.Perturb(rand.New(rand.NewPCG(1, 1)), 0.01)
			_, params := s.Params()
			if _, err := layers.Grad(loss, params...); err != nil {
				b.Fatal(err)
			}
			m := layers.MustNewTapeMachine(g)
			defer m.Close()
			rng := rand.New(rand.NewPCG(2, 2))
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := obj.Feed(rng); err != nil {
					b.Fatal(err)
				}
				if err := m.RunAll(); err != nil {
					b.Fatal(err)
				}
				m.Reset()
			}
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
