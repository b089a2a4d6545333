package losses

import (
	"context"
	"fmt"
	"math"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/datasets/images"
	"rgflow/datasets/lattice"
	"rgflow/layers"
	"rgflow/models"
	"rgflow/train"
)

// trainWeights trains obj for steps steps on a fresh float64 store and returns the losses and the final
// weights.
func trainWeights(t *testing.T, obj train.Objective, batch, workers int, steps int64) ([]float64, map[string][]float64) {
	t.Helper()
	store := layers.NewStore(tensor.Float64, 2)
	var losses []float64
	hook := train.Hook{Name: "record", Fn: func(rec train.Record) error {
		losses = append(losses, rec.Loss)
		return nil
	}}
	tr, err := train.New(store, obj, train.Config{
		Steps: steps, Batch: batch, LR: 1e-2, Seed: 5, Workers: workers,
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
		w[n] = append([]float64(nil), layers.Float64s(v)...)
	}
	return losses, w
}

// compareRuns checks two training runs' losses and final weights against each other to tol relative.
func compareRuns(t *testing.T, gotL, wantL []float64, gotW, wantW map[string][]float64, tol float64) {
	t.Helper()
	if len(gotL) != len(wantL) || len(wantL) < 2 || wantL[0] == wantL[len(wantL)-1] {
		t.Fatalf("losses %v and %v: want equally many steps that change the loss", gotL, wantL)
	}
	for i := range wantL {
		if math.Abs(gotL[i]-wantL[i]) > tol*(1+math.Abs(wantL[i])) {
			t.Errorf("step %d: loss %v, graph engine %v", i+1, gotL[i], wantL[i])
		}
	}
	if len(gotW) != len(wantW) {
		t.Fatalf("%d weights, graph engine %d", len(gotW), len(wantW))
	}
	for n, w := range wantW {
		g := gotW[n]
		if len(g) != len(w) {
			t.Fatalf("weight %s has %d values, graph engine %d", n, len(g), len(w))
		}
		for i := range w {
			if math.Abs(g[i]-w[i]) > tol*(1+math.Abs(w[i])) {
				t.Errorf("weight %s[%d] = %v, graph engine %v", n, i, g[i], w[i])
				break
			}
		}
	}
}

// Training with the fused engine follows training with the graph engine (the reference): the trainer
// takes the fused ops' parameter gradients from their packed vectors (layers.PackedGradient), the graph
// engine has one gradient node per parameter of elementary ops. NeuralRG's RealNVP blocks on φ⁴ (reverse
// KL) and RG-Flow's residual-MLP blocks on images (NLL), float64, one and two workers. Tolerance 1e-9
// relative: the engines agree to ~1e-15 per log-density and gradient (models' and layers' engine tests);
// four Adam steps at lr 1e-2 carry those differences forward without amplifying them by more than a few
// orders of magnitude, while a gradient taken from the wrong place would be wrong in the first digits.
func TestFusedTrainingMatchesGraphEngine(t *testing.T) {
	act, err := lattice.NewPhi4(8, -4, 1.502)
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := images.ParseSpec("synthetic:40")
	data, _, err := sp.Load(images.LoadOptions{Size: 8, TestFraction: -1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	objective := func(t *testing.T, preset, engine string) train.Objective {
		L, ch := 8, 3
		if preset == "neuralrg-small" {
			ch = 1
		}
		cfg, err := models.Preset(preset, L, ch)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Engine = engine
		flow, err := models.Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if preset == "neuralrg-small" {
			return &ReverseKL{Flow: flow, Action: act}
		}
		return &NLL{Flow: flow, Data: data, DataSeed: 3}
	}
	for _, preset := range []string{"neuralrg-small", "rgflow-tiny"} {
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/workers=%d", preset, workers), func(t *testing.T) {
				gotL, gotW := trainWeights(t, objective(t, preset, models.EngineFused), 8, workers, 4)
				wantL, wantW := trainWeights(t, objective(t, preset, models.EngineGraph), 8, workers, 4)
				compareRuns(t, gotL, wantL, gotW, wantW, 1e-9)
			})
		}
	}
}
