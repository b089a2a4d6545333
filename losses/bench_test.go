package losses

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"rgflow/datasets/images"
	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
	"rgflow/train"
)

// runStepBench runs b.N training steps of obj through a Trainer and reports, besides wall time, the
// process's CPU time per step (cpu-ms/op: user + system over all threads, the garbage collector's
// included). On a loaded machine wall time also counts the waits for a core; CPU time does not, and with
// several workers it is the total work of all of them (so overhead added by parallelism shows there).
func runStepBench(b *testing.B, store *layers.Store, obj train.Objective, batch, workers int) {
	tr, err := train.New(store, obj, train.Config{
		Steps: int64(b.N), Batch: batch, LR: 1e-4, CheckpointEvery: -1, LogEvery: 1 << 40, Workers: workers,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	if err := tr.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}

// BenchmarkReverseKLStep times one complete reverse-KL training step of the neuralrg preset on φ⁴ at the
// AKS point (draw z, generate, log q, action, loss, backward, Adam), batch 256, without symmetrisation (as
// the NeuralRG reference), on one and on two workers. b.N steps run through the Trainer; graph
// construction is not timed.
func BenchmarkReverseKLStep(b *testing.B) {
	for _, L := range []int{8, 16} {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			for _, workers := range []int{1, 2} {
				b.Run(fmt.Sprintf("L=%d/%v/workers=%d", L, dt, workers), func(b *testing.B) {
					act, err := lattice.NewPhi4(L, -4, 1.502)
					if err != nil {
						b.Fatal(err)
					}
					cfg, _ := models.Preset("neuralrg", L, 1)
					flow, _ := models.Build(cfg)
					runStepBench(b, layers.NewStore(dt, 1), &ReverseKL{Flow: flow, Action: act}, 256, workers)
				})
			}
		}
	}
}

// BenchmarkNLLStep times one maximum-likelihood training step of the rgflow-small preset (residual-MLP
// conditioners, the preset's default engine: fused) on 32×32 grey synthetic images, batch 32, float32, as
// `rgflow bench --objective nll` does, on one and on two workers.
func BenchmarkNLLStep(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("rgflow-small/workers=%d", workers), func(b *testing.B) {
			cfg, err := models.Preset("rgflow-small", 32, 1)
			if err != nil {
				b.Fatal(err)
			}
			flow, err := models.Build(cfg)
			if err != nil {
				b.Fatal(err)
			}
			sp, err := images.ParseSpec("synthetic:256")
			if err != nil {
				b.Fatal(err)
			}
			data, _, err := sp.Load(images.LoadOptions{Size: 32, Channels: 1, TestFraction: -1, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			runStepBench(b, layers.NewStore(tensor.Float32, 1), &NLL{Flow: flow, Data: data, DataSeed: 1}, 32, workers)
		})
	}
}
