//go:build unix

package layers_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// benchStep times one training step's graph work (forward + backward, TapeMachine) of loss = Σ f(x)².
func benchStep(b *testing.B, dt tensor.Dtype, shape []int, f func(s *layers.Scope, x *G.Node) (*G.Node, error)) {
	b.Helper()
	g := G.NewGraph()
	store := layers.NewStore(dt, 1)
	s := layers.NewScope(g, store)
	x := G.NewTensor(g, dt, len(shape), G.WithShape(shape...), G.WithName("x"),
		G.WithValue(layers.NewDense(dt, shape, randVals(rand.New(rand.NewPCG(2, 2)), size(shape), -1, 1))))
	y, err := f(s, x)
	if err != nil {
		b.Fatal(err)
	}
	sq, err := G.Square(y)
	if err != nil {
		b.Fatal(err)
	}
	loss, err := G.Sum(sq)
	if err != nil {
		b.Fatal(err)
	}
	_, params := s.Params()
	if _, err := layers.Grad(loss, append(params, x)...); err != nil {
		b.Fatal(err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	b.ReportAllocs()
	b.ResetTimer()
	clock := startCPU()
	for i := 0; i < b.N; i++ {
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
		m.Reset()
	}
	clock.report(b)
}

// BenchmarkGroupNorm: (32, 32, 16, 16), 8 groups, forward + backward.
func BenchmarkGroupNorm(b *testing.B) {
	for _, dt := range benchDtypes {
		b.Run(dt.String(), func(b *testing.B) {
			benchStep(b, dt, []int{32, 32, 16, 16}, func(s *layers.Scope, x *G.Node) (*G.Node, error) {
				return layers.GroupNorm{Groups: 8}.Apply(s, x)
			})
		})
	}
}

// BenchmarkCNN: the lattice score-network shape, 1 → 32 → 32 → 1 channels, 3×3 periodic, GroupNorm and
// FiLM from a 32-dimensional sinusoidal time embedding, batch 16 of 16×16; forward + backward. d4 runs
// the D4-symmetrised network (8× the batch).
func BenchmarkCNN(b *testing.B) {
	for _, dt := range benchDtypes {
		for _, d4 := range []bool{false, true} {
			b.Run(fmt.Sprintf("%v/d4=%v", dt, d4), func(b *testing.B) {
				net := layers.CNN{In: 1, Out: 1, Hidden: []int{32, 32}, Activation: "swish", Groups: 8, D4: d4}
				benchStep(b, dt, []int{16, 1, 16, 16}, func(s *layers.Scope, x *G.Node) (*G.Node, error) {
					tv := make([]float64, 16)
					for i := range tv {
						tv[i] = float64(i) / 16
					}
					t := G.NewTensor(s.Graph(), dt, 1, G.WithShape(16), G.WithName("t"), G.WithValue(layers.NewDense(dt, []int{16}, tv)))
					emb, err := layers.SinusoidalEmbedding{Dim: 32, Scale: 1000}.Apply(t)
					if err != nil {
						return nil, err
					}
					return net.ApplyCond(s, x, emb)
				})
			})
		}
	}
}
