package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/checkpoints"
	"rgflow/layers"
)

// refAdam is the textbook Adam/AdamW (Kingma & Ba with decoupled decay per Loshchilov & Hutter, as torch
// documents it), written independently of Adam: m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ), θ −= lr·m̂/(√v̂ + ε).
func refAdam(theta []float64, grads func(t int, theta []float64) []float64, steps int, lr, b1, b2, eps, wd float64, decoupled bool) []float64 {
	th := append([]float64(nil), theta...)
	m := make([]float64, len(th))
	v := make([]float64, len(th))
	for t := 1; t <= steps; t++ {
		g := grads(t, th)
		for i := range th {
			gi := g[i]
			if wd != 0 && decoupled {
				th[i] -= lr * wd * th[i]
			} else if wd != 0 {
				gi += wd * th[i]
			}
			m[i] = b1*m[i] + (1-b1)*gi
			v[i] = b2*v[i] + (1-b2)*gi*gi
			mh := m[i] / (1 - math.Pow(b1, float64(t)))
			vh := v[i] / (1 - math.Pow(b2, float64(t)))
			th[i] -= lr * mh / (math.Sqrt(vh) + eps)
		}
	}
	return th
}

// quadGrad is the gradient of Σ c_i (θ_i − 1)², with a step-dependent twist so that m and v see varying inputs.
func quadGrad(t int, th []float64) []float64 {
	g := make([]float64, len(th))
	for i := range th {
		g[i] = 2*float64(i+1)*(th[i]-1) + 0.3*float64(t)
	}
	return g
}

func TestAdamMatchesReference(t *testing.T) {
	theta0 := []float64{0.5, -1.25, 2, 0.01}
	cases := []struct {
		name string
		cfg  AdamConfig
		lr   float64
	}{
		{"adam", AdamConfig{}, 0.1},
		{"adam-large-eps", AdamConfig{Beta1: 0.8, Beta2: 0.95, Eps: 0.1}, 0.05},
		{"adam-l2", AdamConfig{WeightDecay: 0.3, Eps: 1e-3}, 0.1},
		{"adamw", AdamConfig{AdamW: true, WeightDecay: 0.3, Eps: 1e-3}, 0.1},
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, tc := range cases {
			t.Run(tc.name+"/"+dt.String(), func(t *testing.T) {
				store := layers.NewStore(dt, 0)
				p := store.Param("w", []int{2, 2}, nil)
				layers.SetData(p, theta0)
				opt := NewAdam(store, tc.cfg)
				c := opt.Config()
				g := tensor.New(tensor.WithShape(2, 2), tensor.Of(dt))
				for step := 1; step <= 3; step++ {
					layers.SetData(g, quadGrad(step, layers.Float64s(p)))
					if err := opt.Step(tc.lr, 1, []Grad{{"w", g}}); err != nil {
						t.Fatal(err)
					}
				}
				// The reference sees the same gradients: for float32 they are computed from the float32 weights.
				want := refAdam(theta0, func(step int, th []float64) []float64 {
					if dt == tensor.Float32 {
						th32 := make([]float64, len(th))
						for i, x := range th {
							th32[i] = float64(float32(x))
						}
						return quadGrad(step, th32)
					}
					return quadGrad(step, th)
				}, 3, tc.lr, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, c.AdamW)
				got := layers.Float64s(p)
				// float64: the two formulas differ only in rounding (a few ulp). float32: per-element float32
				// arithmetic over 3 steps, relative error ~ 10·2⁻²⁴ on updates of size ~lr.
				tol := 1e-14
				if dt == tensor.Float32 {
					tol = 2e-6
				}
				for i := range want {
					if d := math.Abs(got[i] - want[i]); d > tol*math.Max(1, math.Abs(want[i])) {
						t.Errorf("θ[%d] = %.17g, want %.17g (|Δ| %.3g)", i, got[i], want[i], d)
					}
				}
				// Sanity: the update moved the weights.
				if got[0] == theta0[0] {
					t.Error("weights did not move")
				}
			})
		}
	}
}

// TestAdamHandComputed pins the first step to numbers worked out by hand: at t=1 the bias-corrected update is
// lr·g/(|g| + ε) = lr·sign(g)·|g|/(|g|+ε).
func TestAdamHandComputed(t *testing.T) {
	store := layers.NewStore(tensor.Float64, 0)
	p := store.Param("w", []int{2}, nil)
	layers.SetData(p, []float64{1, 1})
	g := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{0.5, -2}))
	opt := NewAdam(store, AdamConfig{Eps: 0.5})
	if err := opt.Step(0.1, 1, []Grad{{"w", g}}); err != nil {
		t.Fatal(err)
	}
	want := []float64{1 - 0.1*0.5/(0.5+0.5), 1 + 0.1*2/(2+0.5)} // 0.95, 1.08
	for i, w := range want {
		if got := layers.Float64s(p)[i]; math.Abs(got-w) > 1e-15 {
			t.Errorf("θ[%d] = %.17g, want %.17g", i, got, w)
		}
	}
}

func TestAdamStateRoundTrip(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			mk := func() (*layers.Store, *Adam) {
				s := layers.NewStore(dt, 0)
				layers.SetData(s.Param("a", []int{3}, nil), []float64{1, 2, 3})
				layers.SetData(s.Param("b/c", []int{1, 2}, nil), []float64{-1, 0.5})
				return s, NewAdam(s, AdamConfig{AdamW: true, WeightDecay: 0.1})
			}
			grads := func(s *layers.Store, step int) []Grad {
				var out []Grad
				for _, n := range s.SortedNames() {
					p, _ := s.Get(n)
					g := tensor.New(tensor.WithShape(p.Shape()...), tensor.Of(dt))
					v := layers.Float64s(p)
					for i := range v {
						v[i] = math.Sin(v[i]*float64(step+i)) + 0.1
					}
					layers.SetData(g, v)
					out = append(out, Grad{n, g})
				}
				return out
			}
			s1, o1 := mk()
			for i := range 6 {
				if err := o1.Step(0.01, 1, grads(s1, i)); err != nil {
					t.Fatal(err)
				}
			}
			s2, o2 := mk()
			for i := range 3 {
				if err := o2.Step(0.01, 1, grads(s2, i)); err != nil {
					t.Fatal(err)
				}
			}
			st := o2.State()
			s3, o3 := mk()
			for _, n := range s2.SortedNames() {
				p, _ := s2.Get(n)
				if err := s3.Set(n, p.Shape(), layers.Float64s(p)); err != nil {
					t.Fatal(err)
				}
			}
			if err := o3.Restore(st); err != nil {
				t.Fatal(err)
			}
			for i := 3; i < 6; i++ {
				if err := o3.Step(0.01, 1, grads(s3, i)); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range s1.SortedNames() {
				a, _ := s1.Get(n)
				b, _ := s3.Get(n)
				av, bv := layers.Float64s(a), layers.Float64s(b)
				for i := range av {
					if av[i] != bv[i] {
						t.Errorf("%s[%d]: uninterrupted %v, restored %v", n, i, av[i], bv[i])
					}
				}
			}
		})
	}
}

func TestAdamRestoreRejects(t *testing.T) {
	s := layers.NewStore(tensor.Float64, 0)
	s.Param("a", []int{2}, nil)
	o := NewAdam(s, AdamConfig{})
	good := func() []checkpoints.Array {
		return []checkpoints.Array{
			{Name: "adam/m/a", Shape: []int{2}, Data: []float64{0, 0}},
			{Name: "adam/v/a", Shape: []int{2}, Data: []float64{0, 0}},
			{Name: "adam/step/a", Shape: []int{}, Data: []int64{1}},
		}
	}
	if err := o.Restore(good()); err != nil {
		t.Fatalf("good state: %v", err)
	}
	bad := map[string]func([]checkpoints.Array) []checkpoints.Array{
		"missing v":   func(a []checkpoints.Array) []checkpoints.Array { return append(a[:1], a[2]) },
		"wrong shape": func(a []checkpoints.Array) []checkpoints.Array { a[0].Shape = []int{1, 2}; return a },
		"wrong dtype": func(a []checkpoints.Array) []checkpoints.Array { a[1].Data = []float32{0, 0}; return a },
		"unknown param": func(a []checkpoints.Array) []checkpoints.Array {
			a[0].Name, a[1].Name, a[2].Name = "adam/m/zz", "adam/v/zz", "adam/step/zz"
			return a
		},
		"stray array": func(a []checkpoints.Array) []checkpoints.Array { return append(a, checkpoints.Array{Name: "sgd/x"}) },
		"zero step":   func(a []checkpoints.Array) []checkpoints.Array { a[2].Data = []int64{0}; return a },
	}
	for name, f := range bad {
		if err := o.Restore(f(good())); err == nil {
			t.Errorf("%s: Restore accepted it", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestClipping(t *testing.T) {
	g1 := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{3, 0}))
	g2 := tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{4}))
	norm, bad, _ := GradNorm([]Grad{{"a", g1}, {"b", g2}})
	if norm != 5 || bad != "" {
		t.Fatalf("GradNorm = %v, %q; want 5", norm, bad)
	}
	if s := ClipScale(5, 0); s != 1 {
		t.Errorf("no clipping: scale %v", s)
	}
	if s := ClipScale(5, 10); s != 1 {
		t.Errorf("below the maximum: scale %v", s)
	}
	if s, want := ClipScale(5, 1), 1/(5+1e-6); s != want {
		t.Errorf("clip to 1: scale %v, want %v", s, want)
	}
	// A clipped step equals a step on the explicitly rescaled gradient, and does not modify the gradient.
	run := func(g []float64, scale float64) []float64 {
		s := layers.NewStore(tensor.Float64, 0)
		layers.SetData(s.Param("a", []int{2}, nil), []float64{1, 1})
		o := NewAdam(s, AdamConfig{})
		gt := tensor.New(tensor.WithShape(2), tensor.WithBacking(g))
		for range 2 { // second step: m and v mix, so the scale is visible despite Adam's invariance at t=1
			if err := o.Step(0.1, scale, []Grad{{"a", gt}}); err != nil {
				t.Fatal(err)
			}
			g[0] *= 2
		}
		p, _ := s.Get("a")
		return layers.Float64s(p)
	}
	g := []float64{3, 4}
	a := run(g, 0.5)
	if g[0] != 12 || g[1] != 4 { // 3 → 6 → 12 by the test itself only
		t.Errorf("gradient modified: %v", g)
	}
	b := run([]float64{1.5, 2}, 1)
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-15 {
			t.Errorf("scaled step θ[%d] = %v, rescaled gradient gives %v", i, a[i], b[i])
		}
	}
	// Non-finite gradients are named.
	g3 := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, float32(math.Inf(-1))}))
	if n, bad, v := GradNorm([]Grad{{"a", g1}, {"net/w", g3}}); !math.IsNaN(n) || bad != "net/w" || !math.IsInf(v, -1) {
		t.Errorf("GradNorm with -Inf = %v, %q, %v", n, bad, v)
	}
}

func BenchmarkAdamStep(b *testing.B) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		b.Run(dt.String(), func(b *testing.B) {
			// About the size of one RealNVP coupling MLP (64→256→256→64): 115k parameters in 6 tensors.
			shapes := map[string][]int{"w0": {64, 256}, "b0": {256}, "w1": {256, 256}, "b1": {256}, "w2": {256, 64}, "b2": {64}}
			s := layers.NewStore(dt, 0)
			var grads []Grad
			for _, n := range []string{"w0", "b0", "w1", "b1", "w2", "b2"} {
				s.Param(n, shapes[n], layers.Constant(0.1))
				g := tensor.New(tensor.WithShape(shapes[n]...), tensor.Of(dt))
				layers.SetData(g, make([]float64, g.Shape().TotalSize()))
				grads = append(grads, Grad{n, g})
			}
			o := NewAdam(s, AdamConfig{AdamW: true, WeightDecay: 0.01})
			if err := o.Step(1e-3, 1, grads); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(s.NumParams()))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := o.Step(1e-3, 0.5, grads); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSumSquares holds SumSquares to an independent sum: exactly on small integers (every partial sum is an
// integer below 2⁵³, so no order rounds), and within 1e-14 relative of a serial float64 sum on normal
// deviates (n ≤ 1001 terms of one sign: each order's rounding error is below n·2⁻⁵³ ≈ 1.1e-13 in the worst
// case and ~√n·2⁻⁵³ in practice), for lengths around the unrolling by four.
func TestSumSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1001} {
		ints, devs := make([]float64, n), make([]float64, n)
		var wantInt, wantDev float64
		for i := range ints {
			ints[i] = float64(rng.IntN(2001) - 1000)
			devs[i] = rng.NormFloat64()
			wantInt += ints[i] * ints[i]
			wantDev += devs[i] * devs[i]
		}
		d32 := make([]float32, n)
		for i, v := range ints {
			d32[i] = float32(v)
		}
		if got := SumSquares(tensor.New(tensor.WithShape(max(n, 1)), tensor.WithBacking(append(ints, make([]float64, 1-min(n, 1))...)))); got != wantInt {
			t.Errorf("n=%d float64 integers: %v, want %v", n, got, wantInt)
		}
		if got := SumSquares(tensor.New(tensor.WithShape(max(n, 1)), tensor.WithBacking(append(d32, make([]float32, 1-min(n, 1))...)))); got != wantInt {
			t.Errorf("n=%d float32 integers: %v, want %v", n, got, wantInt)
		}
		if n == 0 {
			continue
		}
		if got := SumSquares(tensor.New(tensor.WithShape(n), tensor.WithBacking(devs))); math.Abs(got-wantDev) > 1e-14*wantDev {
			t.Errorf("n=%d deviates: %.17g, serial sum %.17g", n, got, wantDev)
		}
	}
}
