package losses

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models/diffusion"
	"rgflow/train"
)

// DSM training of the lattice CNN score and of the image U-Net with the convolutions' outputs recycled
// through the workers' arenas (the default) follows the run that allocates every output afresh
// (Config.FreshBuffers) bit for bit: the loss of every step and the final weights, in float32 and float64.
func TestDSMArenaMatchesFreshBuffers(t *testing.T) {
	lat, err := diffusion.NewLattice(8)
	if err != nil {
		t.Fatal(err)
	}
	sde, err := diffusion.NewCarosso(lat, 1, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	v0, err := lat.FreeVariance(0.5)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]float64, 64*lat.V)
	if err := (&diffusion.Gaussian{Lat: lat, Var: v0}).Sample(rand.New(rand.NewPCG(3, 4)), data); err != nil {
		t.Fatal(err)
	}
	cnn, err := diffusion.NewCNNScore(sde, 1, 8, 2, false, v0)
	if err != nil {
		t.Fatal(err)
	}
	basis, err := diffusion.NewImageBasis(3, 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := diffusion.DefaultImageProcess(basis, "vp", "cosine")
	if err != nil {
		t.Fatal(err)
	}
	net, err := layers.UNetPreset("unet-tiny", 3)
	if err != nil {
		t.Fatal(err)
	}
	v1 := make([]float64, basis.Size())
	for j := range v1 {
		v1[j] = 0.25
	}
	unet, err := diffusion.NewImageScore(proc, net, v1)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	pix := make([]uint8, 16*basis.Size())
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	for _, c := range []struct {
		name  string
		loss  func() train.Objective
		batch int
	}{
		{"cnn", func() train.Objective { return &DSM{Net: cnn, Data: data, TMin: 0.02} }, 8},
		{"unet", func() train.Objective { return &ImageDSM{Score: unet, Pixels: pix, TMin: 1e-3} }, 4},
	} {
		run := func(dt tensor.Dtype, fresh bool) ([]float64, map[string][]float64) {
			store := layers.NewStore(dt, 1)
			var losses []float64
			hook := train.Hook{Name: "record", Fn: func(rec train.Record) error {
				losses = append(losses, rec.Loss)
				return nil
			}}
			tr, err := train.New(store, c.loss(), train.Config{
				Steps: 4, Batch: c.batch, LR: 1e-3, Seed: 7, Workers: 1, FreshBuffers: fresh,
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
			t.Run(fmt.Sprintf("%s/%v", c.name, dt), func(t *testing.T) {
				gotLoss, gotW := run(dt, false)
				wantLoss, wantW := run(dt, true)
				if len(wantLoss) != 4 || wantLoss[0] == wantLoss[3] {
					t.Fatalf("losses %v: want 4 steps that change the loss", wantLoss)
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
