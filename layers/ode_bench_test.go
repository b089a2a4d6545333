package layers

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkKernelField times one evaluation of the ode-gerdes velocity field (odd features φ, sin ωφ for
// ω = 1…4, whole-lattice D4 kernels) with its divergence, forward and backward (gradients for the
// weights and the field), at batch 256: the periodic convolution with a lattice-sized kernel against the
// circulant matrix product. Compare cpu-ns/op (the machine is shared).
func BenchmarkKernelField(b *testing.B) {
	for _, L := range []int{8, 16} {
		for _, circ := range []bool{false, true} {
			b.Run(fmt.Sprintf("L=%d/circulant=%v", L, circ), func(b *testing.B) {
				const batch = 256
				f := KernelField{Channels: 1, Freqs: []float64{1, 2, 3, 4}, Odd: true, D4: true, Circulant: circ}
				store := NewStore(tensor.Float64, 1)
				g := G.NewGraph()
				s := NewScope(g, store)
				shape := []int{batch, 1, L, L}
				x := s.Input("x", shape...)
				v, div, err := f.Velocity(s, x, 0.3)
				if err != nil {
					b.Fatal(err)
				}
				store.Perturb(rand.New(rand.NewPCG(1, 1)), 0.1)
				sq, _ := G.Square(v)
				sv, _ := G.Sum(sq)
				sd, _ := G.Sum(div)
				loss, _ := G.Add(sv, sd)
				_, params := s.Params()
				if _, err := Grad(loss, append(params, x)...); err != nil {
					b.Fatal(err)
				}
				m := G.NewTapeMachine(g)
				defer m.Close()
				xv := NewDense(tensor.Float64, shape, make([]float64, batch*L*L))
				cpu0 := processCPU()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := G.Let(x, xv); err != nil {
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
}
