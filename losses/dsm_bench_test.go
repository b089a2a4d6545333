package losses

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models/diffusion"
	"rgflow/train"
)

// BenchmarkDSMStepL16 times one whole DSM training step of the lattice CNN score at the size of
// bench/dsm_compare.sh: L=16, CNNScore of width 32 and depth 3 (four 3×3 periodic convolutions:
// 2→32, 32→32, 32→32, 32→1, the second input channel the lattice mean), FiLM on a 32-dimensional
// sinusoidal time embedding, elu, batch 128, float32, one worker, under the Carosso heat flow (Ω = 1,
// μ² = 1, T = 4) with the variance weighting; the step is Feed (data order, times, noise, exact
// transition, mode transforms on the host), the graph's forward and backward passes, gradient clipping
// and Adam. bench/dsm_torch.py is the same step in PyTorch. Run with -cpu 1 (one thread, as the
// comparison); cpu-ms/op is the process CPU time per step, which a loaded machine does not inflate.
func BenchmarkDSMStepL16(b *testing.B) {
	lat, err := diffusion.NewLattice(16)
	if err != nil {
		b.Fatal(err)
	}
	sde, err := diffusion.NewCarosso(lat, 1, 1, 4)
	if err != nil {
		b.Fatal(err)
	}
	v0, err := lat.FreeVariance(0.5)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]float64, 1024*lat.V)
	if err := (&diffusion.Gaussian{Lat: lat, Var: v0}).Sample(rand.New(rand.NewPCG(1, 2)), data); err != nil {
		b.Fatal(err)
	}
	net, err := diffusion.NewCNNScore(sde, 1, 32, 3, false, v0)
	if err != nil {
		b.Fatal(err)
	}
	net.GlobalMean = true
	d := &DSM{Net: net, Data: data, TMin: 0.02}
	// Three warm-up steps (first allocations), as the PyTorch script does; the timer starts after them.
	const warm = 3
	var cpu0 time.Duration
	start := train.Hook{Name: "bench", Fn: func(r train.Record) error {
		if r.Step == warm {
			b.ResetTimer()
			cpu0 = processCPU()
		}
		return nil
	}}
	tr, err := train.New(layers.NewStore(tensor.Float32, 1), d, train.Config{
		Steps: int64(b.N) + warm, Batch: 128, LR: 1e-3, ClipNorm: 100, CheckpointEvery: -1, LogEvery: 1 << 40,
		Hooks: train.Hooks{OnStep: []train.Hook{start}},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	b.ReportAllocs()
	if err := tr.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(cpu.Seconds()*1e3/float64(b.N), "cpu-ms/op")
	}
}
