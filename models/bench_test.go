package models

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// BenchmarkNeuralRGForwardBackward times one generation pass (z → x, log q) and its backward pass through
// every parameter, for the neuralrg preset at batch 256: the core of a reverse-KL training step.
func BenchmarkNeuralRGForwardBackward(b *testing.B) {
	for _, L := range []int{8, 16} {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			b.Run(fmt.Sprintf("L=%d/%v", L, dt), func(b *testing.B) {
				cfg, _ := Preset("neuralrg", L, 1)
				f, err := Build(cfg)
				if err != nil {
					b.Fatal(err)
				}
				const batch = 256
				store := layers.NewStore(dt, 1)
				g := G.NewGraph()
				s := layers.NewScope(g, store)
				z := s.Input("z", f.Shape(batch)...)
				x, logq, err := f.Generate(s, z)
				if err != nil {
					b.Fatal(err)
				}
				sq, _ := G.Square(x)
				sx, _ := G.Sum(sq)
				sl, _ := G.Sum(logq)
				loss, _ := G.Add(sx, sl)
				_, params := s.Params()
				if _, err := layers.Grad(loss, params...); err != nil {
					b.Fatal(err)
				}
				m := layers.MustNewTapeMachine(g)
				defer m.Close()
				zv := layers.NewDense(dt, f.Shape(batch), nil)
				rng := rand.New(rand.NewPCG(2, 2))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := f.Prior.Sample(rng, zv); err != nil {
						b.Fatal(err)
					}
					if err := G.Let(z, zv); err != nil {
						b.Fatal(err)
					}
					if err := m.RunAll(); err != nil {
						b.Fatal(err)
					}
					m.Reset()
				}
			})
		}
	}
}
