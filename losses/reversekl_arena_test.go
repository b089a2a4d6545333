package losses

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
	"rgflow/train"
)

// Training with the workers' op outputs recycled through their arenas (the default) follows the run that
// allocates every output afresh (Config.FreshBuffers) bit for bit: the loss of every step and the final
// weights, in float32 and float64, on one worker and on two (where each worker has its own arena and the
// two run at once; run with -race to check that they share nothing).
func TestReverseKLArenaMatchesFreshBuffers(t *testing.T) {
	act, err := lattice.NewPhi4(8, -4, 1.502)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := models.Preset("neuralrg-small", 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	flow, err := models.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run := func(dt tensor.Dtype, workers int, fresh bool) ([]float64, map[string][]float64) {
		store := layers.NewStore(dt, 2)
		var losses []float64
		hook := train.Hook{Name: "record", Fn: func(rec train.Record) error {
			losses = append(losses, rec.Loss)
			return nil
		}}
		tr, err := train.New(store, &ReverseKL{Flow: flow, Action: act}, train.Config{
			Steps: 6, Batch: 12, LR: 1e-2, Seed: 5, Workers: workers, FreshBuffers: fresh,
			LogEvery: 1, CheckpointEvery: -1, Hooks: train.Hooks{OnStep: []train.Hook{hook}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		w := map[string][]float64{}
		for _, n := range store.Names() {
			v, _ := store.Get(n)
			w[n] = slices.Clone(layers.Float64s(v))
		}
		return losses, w
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%v/workers=%d", dt, workers), func(t *testing.T) {
				gotLoss, gotW := run(dt, workers, false)
				wantLoss, wantW := run(dt, workers, true)
				if len(wantLoss) != 6 || wantLoss[0] == wantLoss[5] {
					t.Fatalf("losses %v: want 6 steps that change the loss", wantLoss)
				}
				if !slices.Equal(gotLoss, wantLoss) {
					t.Errorf("losses with the arena %v, afresh %v", gotLoss, wantLoss)
				}
				for n, w := range wantW {
					if !slices.Equal(gotW[n], w) {
						t.Errorf("weight %s differs", n)
					}
				}
			})
		}
	}
}
