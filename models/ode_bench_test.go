package models_test

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/losses"
	"rgflow/models"
)

// BenchmarkODEGerdesReverseKLStep times one reverse-KL step of the ode-gerdes preset at L=16, batch 256
// (φ⁴ at m² = −4, λ = 1.2): prior draw, generation z → x by RK4 (8 steps, 32 field evaluations), the
// action, log q, the mean loss and its gradient for every parameter, without the optimiser update, with
// the fused integration (the preset's default engine; at L=16 its lane engine, 32 samples at a time) and
// with the graph of elementary ops; op outputs
// come from an arena reset before each run, as in train.Trainer.
// bench/ode_torch.py times the same model in PyTorch.
func BenchmarkODEGerdesReverseKLStep(b *testing.B) {
	for _, engine := range []string{models.EngineFused, models.EngineGraph} {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			benchODEGerdes(b, engine, dt)
		}
	}
}

func benchODEGerdes(b *testing.B, engine string, dt tensor.Dtype) {
	b.Run(fmt.Sprintf("L=16/%s/%v", engine, dt), func(b *testing.B) {
		const L, batch = 16, 256
		cfg, err := models.Preset("ode-gerdes", L, 1)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Engine = engine
		f, err := models.Build(cfg)
		if err != nil {
			b.Fatal(err)
		}
		act, err := lattice.NewPhi4(L, -4, 1.2)
		if err != nil {
			b.Fatal(err)
		}
		store := layers.NewStore(dt, 1)
		// Bind, then perturb: at initialisation the field is zero and every step is trivial.
		obj := &losses.ReverseKL{Flow: f, Action: act}
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		// op outputs recycled from run to run, as in train.Trainer's steps
		arena := layers.NewArena()
		s.SetArena(arena)
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
			arena.Reset()
			if err := m.RunAll(); err != nil {
				b.Fatal(err)
			}
			m.Reset()
		}
		b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	})
}

// processCPU is the CPU time (user + system) of this process: on a loaded machine wall time also counts
// the time spent waiting for a core.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
