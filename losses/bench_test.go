package losses

import (
	"context"
	"fmt"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
	"rgflow/train"
)

// BenchmarkReverseKLStep times one complete reverse-KL training step of the neuralrg preset on φ⁴ at the
// AKS point (draw z, generate, log q, action, loss, backward, Adam), batch 256, without symmetrisation (as
// the NeuralRG reference). b.N steps run through the Trainer; graph construction is not timed.
func BenchmarkReverseKLStep(b *testing.B) {
	for _, L := range []int{8, 16} {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			b.Run(fmt.Sprintf("L=%d/%v", L, dt), func(b *testing.B) {
				act, err := lattice.NewPhi4(L, -4, 1.502)
				if err != nil {
					b.Fatal(err)
				}
				cfg, _ := models.Preset("neuralrg", L, 1)
				flow, _ := models.Build(cfg)
				store := layers.NewStore(dt, 1)
				tr, err := train.New(store, &ReverseKL{Flow: flow, Action: act}, train.Config{
					Steps: int64(b.N), Batch: 256, LR: 1e-4, CheckpointEvery: -1, LogEvery: 1 << 40,
				})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				b.ReportAllocs()
				b.ResetTimer()
				if err := tr.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
