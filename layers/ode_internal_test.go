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

func TestLinCombAndCat(t *testing.T) {
	// The gradients of Σ r ⊙ linComb(a, ca, b, cb) are ca·r and cb·r exactly; those of Σ r ⊙ cat(x, y) are
	// the matching blocks of r (exact: copies and products by constants, so the comparison is exact).
	const ca, cb = 0.75, -1.5
	shape := []int{2, 3, 4}
	r := make([]float64, 24)
	av := make([]float64, 24)
	for i := range r {
		r[i], av[i] = float64(i%7)-3, 0.1*float64(i)-1
	}
	store := NewStore(tensor.Float64, 1)
	g := G.NewGraph()
	s := NewScope(g, store)
	a, b := s.Input("a", shape...), s.Input("b", shape...)
	rc := G.NewConstant(NewDense(tensor.Float64, shape, r), G.In(g))
	l, err := linComb(a, ca, b, cb)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := G.HadamardProd(l, rc)
	cost, _ := G.Sum(p)
	c2, _ := catAxis1(a, b) // (2, 6, 4)
	r2 := G.NewConstant(NewDense(tensor.Float64, []int{2, 6, 4}, append(append([]float64(nil), r...), r...)), G.In(g))
	p2, _ := G.HadamardProd(c2, r2)
	cost2, _ := G.Sum(p2)
	tot, _ := G.Add(cost, cost2)
	grads, err := Grad(tot, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var ga, gb G.Value
	G.Read(grads[0], &ga)
	G.Read(grads[1], &gb)
	m := G.NewTapeMachine(g)
	defer m.Close()
	G.Let(a, NewDense(tensor.Float64, shape, av))
	G.Let(b, NewDense(tensor.Float64, shape, av))
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	// catAxis1 puts a's (3, 4) block of sample n before b's: the r2 entries a sees are r2[n, 0:3, :]
	ra := make([]float64, 24)
	rb := make([]float64, 24)
	for n := 0; n < 2; n++ {
		for k := 0; k < 12; k++ {
			ra[n*12+k] = append(append([]float64(nil), r...), r...)[n*24+k]
			rb[n*12+k] = append(append([]float64(nil), r...), r...)[n*24+12+k]
		}
	}
	gav, gbv := ValueFloats(ga), ValueFloats(gb)
	for i := range r {
		if wa := ca*r[i] + ra[i]; gav[i] != wa {
			t.Fatalf("∂/∂a[%d] = %g, want %g", i, gav[i], wa)
		}
		if wb := cb*r[i] + rb[i]; gbv[i] != wb {
			t.Fatalf("∂/∂b[%d] = %g, want %g", i, gbv[i], wb)
		}
	}
}

// BenchmarkCNNField times one evaluation of the ode-cnn velocity field (two hidden layers of 16, odd) with
// its exact divergence, forward and backward, at batch 256 on 16×16; compare cpu-ns/op.
func BenchmarkCNNField(b *testing.B) {
	const batch, L = 256, 16
	f := CNNField{Channels: 1, Hidden: []int{16, 16}, Odd: true}
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
}
