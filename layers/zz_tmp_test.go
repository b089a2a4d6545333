package layers

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func BenchmarkFusedCols(b *testing.B) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, n := range []int{1024, 4096, 16384} {
			b.Run(fmt.Sprintf("%v/n=%d", dt, n), func(b *testing.B) {
				r := &RealNVP{Dim: 4, Couplings: 10,
					S: MLP{Hidden: []int{10, 10, 10}, Activation: "elu"},
					T: MLP{Hidden: []int{10, 10, 10}, Activation: "elu", ZeroLast: true}}
				mr := rand.New(rand.NewPCG(9, 9))
				for i := 0; i < 5; i++ {
					r.Splits = append(r.Splits, RandomHalfSplit(mr, 4))
				}
				store := NewStore(dt, 1)
				g := G.NewGraph()
				s := NewScope(g, store)
				xn := s.Input("x", 4, n)
				y, ld, _ := r.Inverse(s, xn)
				a, _ := G.Sum(y)
				c, _ := G.Sum(ld)
				loss, _ := G.Add(a, c)
				_, params := s.Params()
				if _, err := Grad(loss, params...); err != nil {
					b.Fatal(err)
				}
				m := G.NewTapeMachine(g)
				defer m.Close()
				xv := NewDense(dt, []int{4, n}, nil)
				b.ResetTimer()
				c0 := processCPU()
				for i := 0; i < b.N; i++ {
					G.Let(xn, xv)
					if err := m.RunAll(); err != nil {
						b.Fatal(err)
					}
					m.Reset()
				}
				b.ReportMetric(float64(processCPU()-c0)/float64(b.N)/float64(n), "cpu-ns/col")
			})
		}
	}
}
