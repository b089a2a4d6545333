package layers

import (
	"fmt"
	"math"
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

func TestLinComb(t *testing.T) {
	// The gradients of Σ r ⊙ linComb(a, ca, b, cb) are ca·r and cb·r exactly (products by constants).
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
	grads, err := Grad(cost, a, b)
	if err != nil {
		t.Fatal(err)
	}
	var lv, ga, gb G.Value
	G.Read(l, &lv)
	G.Read(grads[0], &ga)
	G.Read(grads[1], &gb)
	m := G.NewTapeMachine(g)
	defer m.Close()
	G.Let(a, NewDense(tensor.Float64, shape, av))
	G.Let(b, NewDense(tensor.Float64, shape, r))
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	lvv, gav, gbv := ValueFloats(lv), ValueFloats(ga), ValueFloats(gb)
	for i := range r {
		if want := ca*av[i] + cb*r[i]; lvv[i] != want {
			t.Fatalf("linComb[%d] = %g, want %g", i, lvv[i], want)
		}
		if gav[i] != ca*r[i] || gbv[i] != cb*r[i] {
			t.Fatalf("gradients at %d: %g, %g, want %g, %g", i, gav[i], gbv[i], ca*r[i], cb*r[i])
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

func TestKernelFeatureDerivatives(t *testing.T) {
	// Each order of the fused feature op against central differences of the order below (step 1e-5:
	// truncation ≈ h²/6·|h⁽ᵏ⁺³⁾| ≲ 1e-10·ω³ with ω ≤ 2.5; rounding ≈ 1e-16/1e-5), and order 0 against
	// math.Sin / math.Cos directly.
	x := []float64{-1.3, 0.2, 0.7, 2.9, -0.4, 1.1}
	for _, freqs := range [][]float64{{1, 2.5}, {1, 2}} {
		checkFeatureDerivatives(t, freqs, x)
	}
}

// checkFeatureDerivatives runs the checks of TestKernelFeatureDerivatives for two frequencies; {1, 2} takes
// the angle-addition path, {1, 2.5} one sincos per frequency.
func checkFeatureDerivatives(t *testing.T, freqs []float64, x []float64) {
	eval := func(order int, xs []float64, odd bool) []float64 {
		op := featOp{order: order, freqs: freqs, odd: odd, b: 2, c: 1, v: 3}
		out, err := op.Do(NewDense(tensor.Float64, []int{2, 1, 3}, xs))
		if err != nil {
			t.Fatal(err)
		}
		return ValueFloats(out)
	}
	for _, odd := range []bool{false, true} {
		f0 := eval(0, x, odd)
		nf := 3
		if !odd {
			nf = 5
		}
		for b := 0; b < 2; b++ {
			for i := 0; i < 3; i++ {
				xv := x[b*3+i]
				w := freqs[1]
				want := []float64{xv, math.Sin(xv), math.Sin(w * xv), math.Cos(xv), math.Cos(w * xv)}[:nf]
				for f := 0; f < nf; f++ {
					// a few ulp: the angle-addition path is not correctly rounded
					if got := f0[b*nf*3+f*3+i]; math.Abs(got-want[f]) > 1e-15 {
						t.Errorf("freqs %v odd=%v: feature %d at x=%g: %g, want %g", freqs, odd, f, xv, got, want[f])
					}
				}
			}
		}
		const h = 1e-5
		for order := 0; order < 3; order++ {
			d := eval(order+1, x, odd)
			for j := range x {
				xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
				xp[j] += h
				xm[j] -= h
				fp, fm := eval(order, xp, odd), eval(order, xm, odd)
				b, i := j/3, j%3
				for f := 0; f < nf; f++ {
					k := b*nf*3 + f*3 + i
					fd := (fp[k] - fm[k]) / (2 * h)
					if math.Abs(fd-d[k]) > 1e-8 {
						t.Errorf("odd=%v order %d feature %d x=%g: derivative %g, finite difference %g", odd, order+1, f, x[j], d[k], fd)
					}
				}
			}
		}
	}
}
