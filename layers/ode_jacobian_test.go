package layers_test

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// fdJacobianFrobenius is ‖∂v/∂x‖²_F of one sample (x of shape (1, c, L, L)) at time tm by central finite
// differences of the field's forward pass, column by column: independent of the reverse-mode
// vector–Jacobian product that the estimator uses.
func fdJacobianFrobenius(t *testing.T, f layers.VelocityField, store *layers.Store, shape []int, x []float64, tm float64) float64 {
	t.Helper()
	d := len(x)
	// one batch holding x ± h e_k for every k: rows 2k and 2k+1
	const h = 1e-5
	bshape := append([]int{2 * d}, shape[1:]...)
	xs := make([]float64, 2*d*d)
	for k := 0; k < d; k++ {
		copy(xs[2*k*d:], x)
		copy(xs[(2*k+1)*d:], x)
		xs[2*k*d+k] += h
		xs[(2*k+1)*d+k] -= h
	}
	v := runNodes(t, store, bshape, xs, func(s *layers.Scope, x *G.Node) ([]*G.Node, error) {
		v, _, err := f.Velocity(s, x, tm)
		return []*G.Node{v}, err
	})[0]
	sum := 0.0
	for k := 0; k < d; k++ {
		for i := 0; i < d; i++ {
			c := (v[2*k*d+i] - v[(2*k+1)*d+i]) / (2 * h)
			sum += c * c
		}
	}
	return sum
}

func TestHutchinsonJacobianNormExpectation(t *testing.T) {
	// The estimate ‖εᵀJ‖² = εᵀ(JJᵀ)ε is a quadratic form in ε, so its expectation over any probe with
	// E[εεᵀ] = I is tr(JJᵀ) = ‖J‖²_F, and the sum of the estimates at the d unit vectors e_k is that
	// expectation exactly. Both are checked against ‖J‖²_F from finite differences of the field (central
	// differences with h = 1e-5: truncation h²·|v‴| ≈ 1e-10, rounding ≈ 1e-16/h ≈ 1e-11 per entry, so
	// 1e-7 relative on a sum of a few hundred squares of O(1) entries has a wide margin), and the mean
	// over 4000 Gaussian probes must lie within 4.5 of its standard errors (a false alarm once in 10⁵).
	for _, tc := range odeFields() {
		t.Run(tc.name, func(t *testing.T) {
			L := max(tc.L, 4)
			d := tc.c * L * L
			one := []int{1, tc.c, L, L}
			store := perturbedStore(t, tc.f, one, 0.5)
			rng := rand.New(rand.NewPCG(11, 12))
			x := randField(rng, d, 1)
			const tm = 0.37
			want := fdJacobianFrobenius(t, tc.f, store, one, x, tm)
			if want < 1e-3 {
				t.Fatalf("‖J‖²_F = %g: too small to test anything", want)
			}
			estimate := func(probes []float64, n int) []float64 {
				shape := append([]int{n}, one[1:]...)
				xs := make([]float64, n*d)
				for b := 0; b < n; b++ {
					copy(xs[b*d:], x)
				}
				g := G.NewGraph()
				s := layers.NewScope(g, store)
				xn := s.Input("x", shape...)
				en := s.Input("eps", shape...)
				est, _, err := layers.HutchinsonJacobianNorm(s, tc.f, xn, en, tm)
				if err != nil {
					t.Fatal(err)
				}
				var ev G.Value
				G.Read(est, &ev)
				m := layers.MustNewTapeMachine(g)
				defer m.Close()
				G.Let(xn, layers.NewDense(tensor.Float64, shape, xs))
				G.Let(en, layers.NewDense(tensor.Float64, shape, probes))
				if err := m.RunAll(); err != nil {
					t.Fatal(err)
				}
				return layers.ValueFloats(ev)
			}
			basis := make([]float64, d*d)
			for k := 0; k < d; k++ {
				basis[k*d+k] = 1
			}
			exact := 0.0
			for _, e := range estimate(basis, d) {
				exact += e
			}
			if math.Abs(exact-want) > 1e-7*want {
				t.Errorf("Σ_k ‖e_kᵀJ‖² = %.12g, ‖J‖²_F by finite differences %.12g", exact, want)
			}
			const n = 4000
			est := estimate(randField(rng, n*d, 1), n)
			mean, sq := 0.0, 0.0
			for _, e := range est {
				mean += e / n
			}
			for _, e := range est {
				sq += (e - mean) * (e - mean)
			}
			se := math.Sqrt(sq / (n - 1) / n)
			if math.Abs(mean-want) > 4.5*se {
				t.Errorf("mean over %d Gaussian probes %.6g ± %.2g, ‖J‖²_F %.6g (%.1fσ)", n, mean, se, want, (mean-want)/se)
			}
		})
	}
}

func TestODEJacobianIntegral(t *testing.T) {
	// For v = λ(1+t)x the Jacobian is λ(1+t)·I, so ‖εᵀJ‖² = λ²(1+t)²|ε|² and ∫₀¹ = (7/3)λ²|ε|² for every
	// probe, in either direction of time; RK4's weights are Simpson's rule on each step, exact for this
	// quadratic in t, so only rounding remains (1e-12 relative). The end point and log-det are Integrate's.
	const lambda = 0.6
	x := []float64{1, -2, 0.5, 0.25, 0.1, -0.3, 2, 1.5}
	eps := []float64{0.3, -1, 2, 0.5, 1, 1, -0.7, 0.2}
	store := layers.NewStore(tensor.Float64, 1)
	o := layers.ODE{Field: linearField{lambda}, Steps: 3}
	shape := []int{2, 1, 2, 2}
	for _, dir := range [][2]float64{{0, 1}, {1, 0}} {
		out := runNodes(t, store, shape, x, func(s *layers.Scope, xn *G.Node) ([]*G.Node, error) {
			en := G.NewConstant(layers.NewDense(tensor.Float64, shape, eps), G.In(s.Graph()))
			xe, ld, jac, err := o.IntegrateJacobian(s, xn, en, dir[0], dir[1])
			if err != nil {
				return nil, err
			}
			xe2, ld2, err := o.Integrate(s.Sub("plain"), xn, dir[0], dir[1])
			if err != nil {
				return nil, err
			}
			return []*G.Node{jac, xe, ld, xe2, ld2}, nil
		})
		for b := 0; b < 2; b++ {
			e2 := 0.0
			for _, e := range eps[4*b : 4*b+4] {
				e2 += e * e
			}
			want := 7.0 / 3 * lambda * lambda * e2
			if got := out[0][b]; math.Abs(got-want) > 1e-12*want {
				t.Errorf("t %g → %g, sample %d: ∫‖εᵀJ‖² dt = %.15g, want %.15g", dir[0], dir[1], b, got, want)
			}
		}
		for i := range out[1] {
			if out[1][i] != out[3][i] {
				t.Fatalf("end point with the probe %v, without %v", out[1], out[3])
			}
		}
		for i := range out[2] {
			if out[2][i] != out[4][i] {
				t.Fatalf("log-det with the probe %v, without %v", out[2], out[4])
			}
		}
	}
}

func TestODEJacobianRegulariserOnlyWhereCollected(t *testing.T) {
	// Integrate registers μ·∫‖εᵀJ‖²dt, with a noise input for ε, only in graphs whose objective collects
	// regularisers; elsewhere (sampling) the graph has no extra input and no extra term.
	o := layers.ODE{Field: layers.KernelField{Channels: 1, Freqs: []float64{1}}, Steps: 2, Jacobian: 0.5, Kinetic: 0.25}
	for _, collect := range []bool{false, true} {
		g := G.NewGraph()
		s := layers.NewScope(g, layers.NewStore(tensor.Float64, 1))
		if collect {
			s.CollectAux()
		}
		if _, _, err := o.Integrate(s.Sub("ode"), s.Input("x", 3, 1, 4, 4), 1, 0); err != nil {
			t.Fatal(err)
		}
		wantAux, wantNoise := 1, 0
		if collect {
			wantAux, wantNoise = 2, 1
		}
		if len(s.Aux()) != wantAux || len(s.NoiseInputs()) != wantNoise {
			t.Errorf("collect=%v: %d regularisers and %d noise inputs, want %d and %d", collect, len(s.Aux()), len(s.NoiseInputs()), wantAux, wantNoise)
		}
		for _, n := range s.NoiseInputs() {
			if !n.Shape().Eq(tensor.Shape{3, 1, 4, 4}) {
				t.Errorf("probe shape %v, want the state's (3, 1, 4, 4)", n.Shape())
			}
		}
	}
}

func TestODEJacobianRegulariserParamGradient(t *testing.T) {
	// The regulariser contains the vector–Jacobian product εᵀ∂v/∂x, so its gradient with respect to the
	// field's weights differentiates the field twice. Autodiff (layers.Grad) against central finite
	// differences of the whole integrated regulariser in the stored weights (h = 1e-6, float64: the FD
	// value is good to ~1e-8 relative on these O(1)–O(10) sums; 1e-5 relative leaves a margin, while a
	// missing second-order term is off by O(1)), on 10 weights drawn at random, for both kinds of field.
	for _, tc := range []struct {
		name string
		f    layers.VelocityField
	}{
		{"kernel-d4-odd", layers.KernelField{Channels: 1, Freqs: []float64{1, 2}, TimeBasis: 2, D4: true, Odd: true}},
		{"kernel-radius1", layers.KernelField{Channels: 1, Freqs: []float64{1}, TimeBasis: 2, Radius: 1}},
		{"cnn-odd", layers.CNNField{Channels: 1, Hidden: []int{3, 2}, TimeBasis: 2, Odd: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const L, batch = 4, 2
			shape := []int{batch, 1, L, L}
			o := layers.ODE{Field: tc.f, Steps: 2}
			store := perturbedStore(t, tc.f, shape, 0.5)
			rng := rand.New(rand.NewPCG(21, 22))
			x := randField(rng, batch*L*L, 1)
			eps := randField(rng, batch*L*L, 1)
			// loss = Σ_b ∫‖ε_bᵀJ‖² dt, built in a fresh graph over the store's current weights
			build := func() (*G.ExprGraph, *layers.Scope, *G.Node, *G.Node) {
				g := G.NewGraph()
				s := layers.NewScope(g, store)
				xn := s.Input("x", shape...)
				en := G.NewConstant(layers.NewDense(tensor.Float64, shape, eps), G.In(g))
				_, _, jac, err := o.IntegrateJacobian(s, xn, en, 1, 0)
				if err != nil {
					t.Fatal(err)
				}
				loss, err := G.Sum(jac)
				if err != nil {
					t.Fatal(err)
				}
				return g, s, xn, loss
			}
			eval := func(g *G.ExprGraph, xn, loss *G.Node, extra ...*G.Node) []G.Value {
				vals := make([]G.Value, 1+len(extra))
				G.Read(loss, &vals[0])
				for i, n := range extra {
					G.Read(n, &vals[1+i])
				}
				m := layers.MustNewTapeMachine(g)
				defer m.Close()
				G.Let(xn, layers.NewDense(tensor.Float64, shape, x))
				if err := m.RunAll(); err != nil {
					t.Fatal(err)
				}
				return vals
			}
			g, s, xn, loss := build()
			names, params := s.Params()
			grads, err := layers.Grad(loss, params...)
			if err != nil {
				t.Fatal(err)
			}
			vals := eval(g, xn, loss, grads...)
			if l := layers.ValueFloats(vals[0])[0]; !(l > 1e-3) {
				t.Fatalf("regulariser %g: too small to test anything", l)
			}
			const h = 1e-6
			for trial := 0; trial < 10; trial++ {
				p := rng.IntN(len(names))
				pt, _ := store.Get(names[p])
				w := layers.Float64s(pt)
				k := rng.IntN(len(w))
				at := func(v float64) float64 {
					w2 := append([]float64(nil), w...)
					w2[k] = v
					if err := store.Set(names[p], pt.Shape(), w2); err != nil {
						t.Fatal(err)
					}
					g, _, xn, loss := build()
					return layers.ValueFloats(eval(g, xn, loss)[0])[0]
				}
				fd := (at(w[k]+h) - at(w[k]-h)) / (2 * h)
				if err := store.Set(names[p], pt.Shape(), w); err != nil {
					t.Fatal(err)
				}
				sym := layers.ValueFloats(vals[1+p])[k]
				if math.Abs(sym-fd) > 1e-5*max(1, math.Abs(fd)) {
					t.Errorf("∂/∂%s[%d]: autodiff %.10g, finite differences %.10g", names[p], k, sym, fd)
				}
			}
		})
	}
}
