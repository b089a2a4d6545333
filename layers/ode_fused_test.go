package layers_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/bijectortest"
	"rgflow/layers/layerstest"
)

// fusedCase is one configuration of the fused ODE tests.
type fusedCase struct {
	name   string
	f      layers.KernelField
	shape  []int // (B, C, H, W)
	steps  int
	method string
	t0, t1 float64
	scale  float64 // of the kernel weights: a field of order one (trajectories that move, gradients that stay moderate)
}

func fusedCases() []fusedCase {
	return []fusedCase{
		// the ode-gerdes field (harmonic odd features, D4 kernels), generation direction
		{"gerdes-d4-odd", layers.KernelField{Channels: 1, Freqs: []float64{1, 2, 3, 4}, Odd: true, D4: true}, []int{3, 1, 8, 8}, 3, "rk4", 1, 0, 0.03},
		// sin and cos features of non-integer frequencies, two channels, midpoint rule, forward direction
		{"2ch-cos-midpoint", layers.KernelField{Channels: 2, Freqs: []float64{1.5, 0.7}, TimeBasis: 2}, []int{2, 2, 4, 4}, 2, "midpoint", 0, 1, 0.1},
		// a rectangular lattice (no D4), Euler, one time function
		{"rect-euler", layers.KernelField{Channels: 1, Freqs: []float64{2}, TimeBasis: 1}, []int{2, 1, 4, 8}, 3, "euler", 0, 1, 0.1},
		// two channels with odd harmonic features (the kept sin/cos of every channel), generation direction
		{"2ch-odd-harmonic", layers.KernelField{Channels: 2, Freqs: []float64{1, 2}, Odd: true, D4: true}, []int{2, 2, 4, 4}, 2, "rk4", 1, 0, 0.1},
		// the smallest lattice the FFTs take, D4 and odd, RK4 forward
		{"2x2-rk4", layers.KernelField{Channels: 1, Freqs: []float64{1, 2}, Odd: true, D4: true}, []int{2, 1, 2, 2}, 2, "rk4", 0, 1, 0.3},
		// 16×16: the lane engine (32 samples at a time, the batch padded), the ode-gerdes field
		{"gerdes-16x16", layers.KernelField{Channels: 1, Freqs: []float64{1, 2, 3, 4}, Odd: true, D4: true}, []int{3, 1, 16, 16}, 2, "rk4", 1, 0, 0.01},
		// 16×16 lane engine: two channels, sin and cos features of non-integer frequencies
		{"2ch-cos-16x16", layers.KernelField{Channels: 2, Freqs: []float64{1.5, 0.7}, TimeBasis: 2}, []int{2, 2, 16, 16}, 2, "midpoint", 0, 1, 0.02},
		// 32×32: the lane engine's radix-2 step over the 16-point transforms, the ode-gerdes field
		{"gerdes-32x32", layers.KernelField{Channels: 1, Freqs: []float64{1, 2, 3, 4}, Odd: true, D4: true}, []int{2, 1, 32, 32}, 1, "rk4", 1, 0, 0.005},
	}
}

// fusedRun builds loss = Σ cx⊙x(t₁) + Σ cl⊙log-det + Σ ck⊙kinetic with the graph (fused false) or the
// fused op on a shared store, and returns the three outputs followed by ∂loss/∂x and ∂loss/∂w.
func fusedRun(t *testing.T, tc fusedCase, store *layers.Store, fused bool, x, cx, cl, ck []float64) [][]float64 {
	t.Helper()
	dt := store.Dtype()
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	xn := s.Input("x", tc.shape...)
	o := layers.ODE{Field: tc.f, Steps: tc.steps, Method: tc.method, Fused: fused}
	xe, ld, kin, err := o.IntegrateKinetic(s, xn, tc.t0, tc.t1)
	if err != nil {
		t.Fatal(err)
	}
	b := tc.shape[0]
	term := func(n *G.Node, c []float64, shape ...int) *G.Node {
		cn := G.NewConstant(layers.NewDense(dt, shape, c), G.In(g))
		p, err := G.HadamardProd(n, cn)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := G.Sum(p)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	loss, err := G.Add(term(xe, cx, tc.shape...), term(ld, cl, b))
	if err != nil {
		t.Fatal(err)
	}
	if loss, err = G.Add(loss, term(kin, ck, b)); err != nil {
		t.Fatal(err)
	}
	_, params := s.Params()
	if len(params) != 1 {
		t.Fatalf("%d parameters, want 1 (w)", len(params))
	}
	grads, err := layers.Grad(loss, xn, params[0])
	if err != nil {
		t.Fatal(err)
	}
	outs := []*G.Node{xe, ld, kin, grads[0], grads[1]}
	vals := make([]G.Value, len(outs))
	for i, n := range outs {
		G.Read(n, &vals[i])
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := G.Let(xn, layers.NewDense(dt, tc.shape, x)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	res := make([][]float64, len(vals))
	for i, v := range vals {
		res[i] = layers.ValueFloats(v)
	}
	return res
}

func TestFusedODEMatchesGraph(t *testing.T) {
	// The fused op against the graph it replaces (the model's definition): x(t₁), the log-det, the kinetic
	// energy and the gradients of a random linear combination of all three with respect to x and every
	// kernel parameter, with D4 and Z₂ options, sin and cos features, three integrators and both time
	// directions. float64: 1e-10 relative to the largest entry (both sides sum the same few hundred terms
	// per output in different orders, FFTs of length ≤ 64, ~1e-14 each; measured 7e-16 at most, the margin
	// covers growth through the steps). float32: the graph rounds to float32 at every node (ε = 6e-8, a few hundred nodes per
	// path) while the fused op works in float64 and rounds once (on 16×16 lattices the lane engine works in
	// float32 too, and on 32×32): measured 2.4e-7 relative at most (3e-7 on 16×16), so 1e-5.
	for _, tc := range fusedCases() {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, dt), func(t *testing.T) {
				store := layers.NewStore(dt, 3)
				bind := G.NewGraph()
				if _, _, err := tc.f.Velocity(layers.NewScope(bind, store), layers.NewScope(bind, store).Input("x", tc.shape...), 0); err != nil {
					t.Fatal(err)
				}
				store.Perturb(rand.New(rand.NewPCG(5, 6)), tc.scale)
				rng := rand.New(rand.NewPCG(7, 8))
				n := tc.shape[0] * tc.shape[1] * tc.shape[2] * tc.shape[3]
				x, cx := randField(rng, n, 1), randField(rng, n, 1)
				cl, ck := randField(rng, tc.shape[0], 1), randField(rng, tc.shape[0], 1)
				want := fusedRun(t, tc, store, false, x, cx, cl, ck)
				got := fusedRun(t, tc, store, true, x, cx, cl, ck)
				tol := 1e-10
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				for i, name := range []string{"x(t1)", "log-det", "kinetic", "∂x", "∂w"} {
					scale := 1.0
					for _, v := range want[i] {
						scale = max(scale, math.Abs(v))
					}
					if len(got[i]) != len(want[i]) {
						t.Fatalf("%s: %d values, want %d", name, len(got[i]), len(want[i]))
					}
					worst := 0.0
					for k := range want[i] {
						worst = max(worst, math.Abs(got[i][k]-want[i][k]))
					}
					t.Logf("%s: max |fused − graph| = %.3g, scale %.3g", name, worst, scale)
					if worst > tol*scale {
						t.Errorf("%s: fused differs from the graph by %.3g (scale %.3g, tolerance %.3g)", name, worst, scale, tol*scale)
					}
				}
				// the field must matter: the end point moved and the log-det is not zero
				moved := 0.0
				for k := range x {
					moved = max(moved, math.Abs(want[0][k]-x[k]))
				}
				if moved < 1e-3 || maxAbsT(want[1]) < 1e-3 {
					t.Fatalf("trivial test: the field moved x by %.3g, log-det %v", moved, want[1])
				}
			})
		}
	}
}

func maxAbsT(v []float64) float64 {
	m := 0.0
	for _, e := range v {
		m = max(m, math.Abs(e))
	}
	return m
}

func TestFusedODEGradCheck(t *testing.T) {
	// Finite differences of the fused op itself, with the kernel parameter as an ordinary input: central
	// differences of a loss of order 1–10 (GradCheck's 1e-6 tolerance), the kinetic energy included.
	cases := fusedCases()
	for _, tc := range append(cases[:3:3], cases[5]) { // and the lane engine's 16×16
		t.Run(tc.name, func(t *testing.T) {
			if tc.shape[2] == 16 && testing.Short() {
				t.Skip("-short: the 16×16 finite differences take 1200 integrations of a 32-sample block")
			}
			tc.shape[0] = 2
			rng := rand.New(rand.NewPCG(3, 4))
			k := tc.f.TimeBasis
			if k == 0 {
				k = 3
			}
			np := tc.f.NumParams(tc.shape[2], tc.shape[3]) / k
			wShape := []int{k, tc.shape[1], tc.f.Features() * tc.shape[1], np / (tc.f.Features() * tc.shape[1] * tc.shape[1])}
			n := tc.shape[0] * tc.shape[1] * tc.shape[2] * tc.shape[3]
			nw := wShape[0] * wShape[1] * wShape[2] * wShape[3]
			cx, cl, ck := randField(rng, n, 1), randField(rng, 2, 1), randField(rng, 2, 1)
			o := layers.ODE{Field: tc.f, Steps: tc.steps, Method: tc.method}
			layerstest.GradCheck(t, [][]int{tc.shape, wShape}, [][]float64{randField(rng, n, 1), randField(rng, nw, tc.scale)},
				func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
					xe, ld, kin, err := layers.FusedODENodes(o, in[0], in[1], tc.t0, tc.t1, true)
					if err != nil {
						return nil, err
					}
					var loss *G.Node
					for i, p := range []struct {
						n *G.Node
						c []float64
					}{{xe, cx}, {ld, cl}, {kin, ck}} {
						c := G.NewConstant(layers.NewDense(tensor.Float64, p.n.Shape(), p.c), G.In(g))
						h, err := G.HadamardProd(p.n, c)
						if err != nil {
							return nil, err
						}
						sum, err := G.Sum(h)
						if err != nil {
							return nil, err
						}
						if i == 0 {
							loss = sum
						} else if loss, err = G.Add(loss, sum); err != nil {
							return nil, err
						}
					}
					return loss, nil
				}, 1e-6)
		})
	}
}

func TestFusedODEConformance(t *testing.T) {
	// The bijector conformance suite on the fused integration (forward and inverse both fused): round
	// trips to the integrator's error at 32 steps (below the suite's 1e-10 for weights at 0.01, as for the
	// graph version), log-det against the finite-difference Jacobian, gradients for every parameter.
	bijectortest.Run(t, bijectortest.Case{Name: "kernel-full-fused",
		Bijector: layers.ODE{Field: layers.KernelField{Channels: 1, Freqs: []float64{1, 2}}, Steps: 32, Fused: true},
		Shape:    []int{2, 1, 4, 4}, Seed: 4, WeightScale: 0.01})
}

func TestFusedODEIsFirstOrder(t *testing.T) {
	// A second derivative through the fused op is a clear error, not a silent zero.
	g := G.NewGraph()
	store := layers.NewStore(tensor.Float64, 1)
	s := layers.NewScope(g, store)
	x := s.Input("x", 1, 1, 4, 4)
	o := layers.ODE{Field: layers.KernelField{Channels: 1, Odd: true}, Steps: 1, Fused: true}
	xe, _, err := o.Forward(s, x)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := G.Square(xe)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Sum(sq)
	if err != nil {
		t.Fatal(err)
	}
	gx, err := layers.Grad(loss, x)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := G.Sum(gx[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layers.Grad(gs, x); err == nil || !strings.Contains(err.Error(), "first-order") {
		t.Errorf("second derivative through the fused ODE: error %v, want one saying first-order only", err)
	}
}

func TestFusedODERejectsUnsupportedFields(t *testing.T) {
	for _, tc := range []struct {
		o     layers.ODE
		shape []int
		want  string
	}{
		{layers.ODE{Field: layers.KernelField{Channels: 1, Radius: 1}, Steps: 1, Fused: true}, []int{1, 1, 4, 4}, "radius 0"},
		{layers.ODE{Field: layers.CNNField{Channels: 1, Hidden: []int{2}}, Steps: 1, Fused: true}, []int{1, 1, 4, 4}, "KernelField"},
		{layers.ODE{Field: layers.KernelField{Channels: 1}, Steps: 1, Fused: true}, []int{1, 1, 6, 6}, "power-of-two"},
		{layers.ODE{Field: layers.KernelField{Channels: 2}, Steps: 1, Fused: true}, []int{1, 1, 4, 4}, "want (B, 2, H, W)"},
	} {
		g := G.NewGraph()
		s := layers.NewScope(g, layers.NewStore(tensor.Float64, 1))
		_, _, err := tc.o.Forward(s, s.Input("x", tc.shape...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v on %v: error %v, want one containing %q", tc.o.Field, tc.shape, err, tc.want)
		}
	}
}

func TestFusedODEWithArena(t *testing.T) {
	// With an arena (op outputs recycled between runs, as in the Trainer) the fused integration and its
	// gradients are bit for bit those of fresh allocation, run after run on changing inputs.
	tc := fusedCases()[0]
	store := layers.NewStore(tensor.Float64, 3)
	bind := G.NewGraph()
	if _, _, err := tc.f.Velocity(layers.NewScope(bind, store), layers.NewScope(bind, store).Input("x", tc.shape...), 0); err != nil {
		t.Fatal(err)
	}
	store.Perturb(rand.New(rand.NewPCG(5, 6)), tc.scale)
	build := func(ar *layers.Arena) (*G.ExprGraph, *G.Node, []*G.Node) {
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		s.SetArena(ar)
		x := s.Input("x", tc.shape...)
		o := layers.ODE{Field: tc.f, Steps: tc.steps, Method: tc.method, Fused: true}
		xe, ld, kin, err := o.IntegrateKinetic(s, x, tc.t0, tc.t1)
		if err != nil {
			t.Fatal(err)
		}
		sq, _ := G.Square(xe)
		a, _ := G.Sum(sq)
		b, _ := G.Sum(ld)
		c, _ := G.Sum(kin)
		loss, _ := G.Add(a, b)
		loss, _ = G.Add(loss, c)
		_, params := s.Params()
		grads, err := layers.Grad(loss, x, params[0])
		if err != nil {
			t.Fatal(err)
		}
		return g, x, []*G.Node{xe, ld, kin, grads[0], grads[1]}
	}
	run := func(m G.VM, x *G.Node, outs []*G.Node, xv []float64) [][]float64 {
		if err := G.Let(x, layers.NewDense(tensor.Float64, tc.shape, xv)); err != nil {
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		res := make([][]float64, len(outs))
		for i, o := range outs {
			res[i] = append([]float64(nil), layers.ValueFloats(o.Value())...)
		}
		m.Reset()
		return res
	}
	ar := layers.NewArena()
	ga, xa, outsA := build(ar)
	gf, xf, outsF := build(nil)
	ma, mf := layers.MustNewTapeMachine(ga), layers.MustNewTapeMachine(gf)
	defer ma.Close()
	defer mf.Close()
	rng := rand.New(rand.NewPCG(8, 9))
	n := tc.shape[0] * tc.shape[1] * tc.shape[2] * tc.shape[3]
	for r := 0; r < 3; r++ {
		xv := randField(rng, n, 1)
		ar.Reset()
		got := run(ma, xa, outsA, xv)
		want := run(mf, xf, outsF, xv)
		for i := range want {
			for k := range want[i] {
				if math.Float64bits(got[i][k]) != math.Float64bits(want[i][k]) {
					t.Fatalf("run %d, output %d[%d]: arena %v, fresh %v", r, i, k, got[i][k], want[i][k])
				}
			}
		}
	}
}
