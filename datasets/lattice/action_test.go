package lattice

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// testAction is one action under test with the scale of random fields to draw for it.
type testAction struct {
	name  string
	a     Action
	scale float64
}

// testActions covers every constructor at several L (≥ 2 sizes each), in the regimes that matter.
func testActions(t testing.TB) []testAction {
	t.Helper()
	must := func(a Action, err error) Action {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tc := IsingTc()
	return []testAction{
		{"free L=4", must(NewFree(4, 0.5)), 1},
		{"free L=8", must(NewFree(8, 0.5)), 1},
		{"phi4 L=2", must(NewPhi4(2, -1, 0.7)), 1},
		{"phi4 L=4", must(NewPhi4(4, -4, 1.5)), 1},
		{"phi4 L=16", must(NewPhi4(16, 0.3, 0.2)), 1},
		{"phi4 AKS L=8", must(NewPhi4AKS(8, -4, 6.008)), 1},
		{"phi4 hopping L=8", must(NewPhi4Hopping(8, 0.2, 1.5)), 1},
		{"o2 L=4", must(NewO2(4, -2, 0.8)), 1},
		{"o2 L=8", must(NewO2(8, 1, 0)), 1},
		{"o2 hopping L=8", must(NewO2Hopping(8, 0.15, 1.145)), 1},
		{"ising L=2", must(NewIsingRelaxed(2, tc)), 3},
		{"ising L=4", must(NewIsingRelaxed(4, tc)), 6}, // scale 6: many |x| > 8 exercise the stable ln cosh
		{"ising L=8 T=1.5", must(NewIsingRelaxed(8, 1.5)), 3},
		// Even sizes that are not powers of two (the mixed-radix path of FFT2 for Ising L=12).
		{"free L=6", must(NewFree(6, 0.5)), 1},
		{"phi4 L=10", must(NewPhi4(10, -1, 0.5)), 1},
		{"o2 L=6", must(NewO2(6, -2, 0.8)), 1},
		{"ising L=6", must(NewIsingRelaxed(6, tc)), 3},
		{"ising L=12", must(NewIsingRelaxed(12, 1.5)), 3},
	}
}

func randomField(rng *rand.Rand, n int, scale float64) []float64 {
	f := make([]float64, n)
	for i := range f {
		f[i] = scale * rng.NormFloat64()
	}
	return f
}

// graphEval builds a graph for batch B at dtype dt, evaluates the action on fields and its gradient with
// respect to the input, and returns S per sample and ∂(Σ_b S_b)/∂φ flattened (B·C·L·L).
func graphEval(t *testing.T, a Action, dt tensor.Dtype, fields [][]float64) (S, grad []float64) {
	return graphEvalWith(t, a, a.Action, dt, fields)
}

// graphEvalWith is graphEval with the graph built by build (a.Action, or the φ⁴ actions' ActionGraph).
func graphEvalWith(t *testing.T, a Action, build func(*layers.Scope, *G.Node) (*G.Node, error), dt tensor.Dtype, fields [][]float64) (S, grad []float64) {
	t.Helper()
	B, C, L := len(fields), a.Channels(), a.Size()
	g := G.NewGraph()
	s := layers.NewScope(g, layers.NewStore(dt, 0))
	phi := s.Input("phi", B, C, L, L)
	out, err := build(s, phi)
	if err != nil {
		t.Fatalf("%s: Action: %v", a.Name(), err)
	}
	if sh := out.Shape(); len(sh) != 1 || sh[0] != B {
		t.Fatalf("%s: Action output shape %v, want (%d)", a.Name(), sh, B)
	}
	total, err := G.Sum(out)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := layers.Grad(total, phi)
	if err != nil {
		t.Fatal(err)
	}
	var flat []float64
	for _, f := range fields {
		flat = append(flat, f...)
	}
	in := tensor.New(tensor.WithShape(B, C, L, L), tensor.Of(dt))
	layers.SetData(in, flat)
	if err := G.Let(phi, in); err != nil {
		t.Fatal(err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatalf("%s: run: %v", a.Name(), err)
	}
	return layers.Float64s(out.Value().(tensor.Tensor)), layers.Float64s(grads[0].Value().(tensor.Tensor))
}

func TestActionGraphMatchesHost(t *testing.T) {
	// Tolerances: float64 1e-10 relative to max(|S|, V) (sums of V terms of O(1): rounding ~1e-15, seen
	// ≤ 3e-15); float32 1e-5 relative (eps 6e-8 accumulated over ≤ 512 terms: seen ≤ 4e-7). The input
	// gradient of the graph must equal −Force to the same tolerances, relative to max(1, max |F|).
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ta := range testActions(t) {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			tol := 1e-10
			if dt == tensor.Float32 {
				tol = 1e-5
			}
			a := ta.a
			n := a.Channels() * a.Size() * a.Size()
			const B = 3
			fields := make([][]float64, B)
			for b := range fields {
				fields[b] = randomField(rng, n, ta.scale)
				if dt == tensor.Float32 { // compare on the values the graph actually sees
					for i, v := range fields[b] {
						fields[b][i] = float64(float32(v))
					}
				}
			}
			builds := []func(*layers.Scope, *G.Node) (*G.Node, error){a.Action}
			if ga, ok := a.(interface {
				ActionGraph(*layers.Scope, *G.Node) (*G.Node, error)
			}); ok { // the fused op's reference: the graph of elementary ops
				builds = append(builds, ga.ActionGraph)
			}
			for _, build := range builds {
				S, grad := graphEvalWith(t, a, build, dt, fields)
				force := make([]float64, n)
				var worstS, worstF float64
				for b, f := range fields {
					want := a.Eval(f)
					scale := math.Max(math.Abs(want), float64(a.Size()*a.Size()))
					worstS = math.Max(worstS, math.Abs(S[b]-want)/scale)
					if math.Abs(S[b]-want) > tol*scale {
						t.Errorf("%s %v sample %d: graph S = %.15g, host S = %.15g (rel diff %.3g)",
							ta.name, dt, b, S[b], want, math.Abs(S[b]-want)/scale)
					}
					a.Force(force, f)
					fmax := 1.0
					for _, v := range force {
						fmax = math.Max(fmax, math.Abs(v))
					}
					var worst float64
					for i, v := range force {
						worst = math.Max(worst, math.Abs(grad[b*n+i]+v))
					}
					worstF = math.Max(worstF, worst/fmax)
					if worst > tol*fmax {
						t.Errorf("%s %v sample %d: max |∂S/∂φ (graph) + Force| = %.3g (max |F| %.3g)", ta.name, dt, b, worst, fmax)
					}
				}
				t.Logf("%-18s %v: max rel |S_graph − S_host| = %.2g, max rel |∇S_graph + F| = %.2g", ta.name, dt, worstS, worstF)
			}
		}
	}
}

func TestForceMatchesFiniteDifferences(t *testing.T) {
	// Central differences with step 1e-4: truncation h²·S'''/6 ~ 1e-8·O(10), rounding eps·|S|/h ~ 1e-10;
	// tolerance 1e-6 relative to max(1, max |F|).
	rng := rand.New(rand.NewPCG(3, 4))
	for _, ta := range testActions(t) {
		a := ta.a
		n := a.Channels() * a.Size() * a.Size()
		phi := randomField(rng, n, ta.scale)
		fdGrad := fd.Gradient(nil, a.Eval, phi, &fd.Settings{Formula: fd.Central, Step: 1e-4})
		force := make([]float64, n)
		a.Force(force, phi)
		fmax := 1.0
		for _, v := range force {
			fmax = math.Max(fmax, math.Abs(v))
		}
		for i := range force {
			if math.Abs(force[i]+fdGrad[i]) > 1e-6*fmax {
				t.Errorf("%s site %d: Force = %.10g, −∂S/∂φ by FD = %.10g", ta.name, i, force[i], -fdGrad[i])
				break
			}
		}
	}
}

func TestActionSymmetryAndMetadata(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, ta := range testActions(t) {
		a := ta.a
		n := a.Channels() * a.Size() * a.Size()
		phi := randomField(rng, n, ta.scale)
		neg := make([]float64, n)
		for i, v := range phi {
			neg[i] = -v
		}
		if !a.Z2() || a.Eval(phi) != a.Eval(neg) {
			t.Errorf("%s: Z2() = %v, S(φ) = %v, S(−φ) = %v", ta.name, a.Z2(), a.Eval(phi), a.Eval(neg))
		}
		// Translation invariance: shifting the field by one site along each axis leaves S unchanged.
		L := a.Size()
		sh := make([]float64, n)
		for c := range a.Channels() {
			for i := range L {
				for j := range L {
					sh[c*L*L+i*L+j] = phi[c*L*L+((i+1)%L)*L+(j+L-1)%L]
				}
			}
		}
		if !relClose(a.Eval(sh), a.Eval(phi), 1e-12) {
			t.Errorf("%s: S(shifted φ) = %v, S(φ) = %v", ta.name, a.Eval(sh), a.Eval(phi))
		}
		if len(a.Params()) == 0 || a.Name() == "" {
			t.Errorf("%s: empty Name or Params", ta.name)
		}
	}
}

func TestConstructorErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name string
		err  error
		want string // substring of the message
	}{}
	add := func(name string, err error, want string) {
		cases = append(cases, struct {
			name string
			err  error
			want string
		}{name, err, want})
	}
	e := func(_ any, err error) error { return err }
	add("phi4 L=7", e(NewPhi4(7, 1, 1)), "lattice: phi4: L=7 is odd (want an even L: 4, 6, 8, …)")
	add("phi4 L=0", e(NewPhi4(0, 1, 1)), "L=0 is too small")
	add("phi4 L=1", e(NewPhi4(1, 1, 1)), "L=1 is too small")
	add("phi4 L=-4", e(NewPhi4(-4, 1, 1)), "L=-4 is negative")
	add("phi4 lambda<0", e(NewPhi4(8, 1, -0.1)), "lambda=-0.1 is negative")
	add("phi4 m2 NaN", e(NewPhi4(8, nan, 1)), "m2=NaN is not a finite number")
	add("phi4 lambda Inf", e(NewPhi4(8, 1, inf)), "lambda=+Inf is not a finite number")
	add("phi4 lambda=0 m2<0", e(NewPhi4(8, -1, 0)), "needs m2 > 0")
	add("free m2=0", e(NewFree(8, 0)), "lattice: free: m2=0, want m2 > 0")
	add("free m2<0", e(NewFree(8, -0.5)), "m2=-0.5, want m2 > 0")
	add("free m2 NaN", e(NewFree(8, nan)), "m2=NaN is not a finite number")
	add("free L=13", e(NewFree(13, 1)), "lattice: free: L=13 is odd")
	add("aks L=5", e(NewPhi4AKS(5, -4, 6.975)), "L=5 is odd")
	add("aks lambda<0", e(NewPhi4AKS(8, -4, -1)), "lattice: phi4: lambdaA=-1 is negative")
	add("aks free tachyon", e(NewPhi4AKS(8, -4, 0)), "needs m2 > 0 (AKS m2A=-4, lambdaA=0)")
	add("aks NaN", e(NewPhi4AKS(8, nan, 1)), "m2A=NaN is not a finite number")
	add("hopping kappa=0", e(NewPhi4Hopping(8, 0, 1)), "kappa=0, want kappa > 0")
	add("hopping kappa<0", e(NewPhi4Hopping(8, -0.1, 1)), "kappa=-0.1, want kappa > 0")
	add("hopping lambdaH<0", e(NewPhi4Hopping(8, 0.1, -1)), "lambdaH=-1 is negative")
	add("hopping kappa Inf", e(NewPhi4Hopping(8, inf, 1)), "kappa=+Inf is not a finite number")
	add("hopping L=3", e(NewPhi4Hopping(3, 0.1, 1)), "L=3 is odd")
	add("hopping free tachyon", e(NewPhi4Hopping(8, 0.3, 0)), "needs m2 > 0")
	add("o2 L=9", e(NewO2(9, 1, 1)), "lattice: o2: L=9 is odd")
	add("o2 lambda<0", e(NewO2(8, 1, -1)), "lattice: o2: lambda=-1 is negative")
	add("o2 NaN", e(NewO2(8, 1, nan)), "lambda=NaN is not a finite number")
	add("o2 hopping kappa=0", e(NewO2Hopping(8, 0, 1.145)), "lattice: o2: kappa=0, want kappa > 0")
	add("o2 hopping NaN", e(NewO2Hopping(8, 0.15, nan)), "lambdaH=NaN is not a finite number")
	add("ising T=0", e(NewIsingRelaxed(8, 0)), "lattice: ising: T=0, want T > 0")
	add("ising T<0", e(NewIsingRelaxed(8, -2)), "T=-2, want T > 0")
	add("ising T NaN", e(NewIsingRelaxed(8, nan)), "T=NaN is not a finite number")
	add("ising T Inf", e(NewIsingRelaxed(8, inf)), "T=+Inf is not a finite number")
	add("ising L=5", e(NewIsingRelaxed(5, 2)), "lattice: ising: L=5 is odd")
	add("ising L=-8", e(NewIsingRelaxed(-8, 2)), "L=-8 is negative")
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %q does not contain %q", c.name, c.err, c.want)
		}
	}
	// Valid edge cases are accepted.
	for name, err := range map[string]error{
		"phi4 L=2":         e(NewPhi4(2, 1, 0)),
		"phi4 m2<0":        e(NewPhi4(4, -4, 1)),
		"hopping lambdaH0": e(NewPhi4Hopping(4, 0.2, 0)),
		"ising L=2":        e(NewIsingRelaxed(2, 1)),
		"phi4 L=6":         e(NewPhi4(6, 1, 1)),
		"free L=12":        e(NewFree(12, 1)),
		"aks L=20":         e(NewPhi4AKS(20, -4, 4.807)),
		"o2 L=10":          e(NewO2(10, 1, 1)),
		"ising L=6":        e(NewIsingRelaxed(6, 2)),
	} {
		if err != nil {
			t.Errorf("%s: unexpected error %v", name, err)
		}
	}
}

func TestGraphInputShapeErrors(t *testing.T) {
	for _, ta := range testActions(t)[:1] {
		g := G.NewGraph()
		s := layers.NewScope(g, layers.NewStore(tensor.Float64, 0))
		bad := s.Input("phi", 2, 1, 8, 4)
		if _, err := ta.a.Action(s, bad); err == nil || !strings.Contains(err.Error(), "want (B, 1, 4, 4)") {
			t.Errorf("%s: wrong shape accepted or unclear error: %v", ta.name, err)
		}
	}
	o, _ := NewO2(4, 1, 1)
	g := G.NewGraph()
	s := layers.NewScope(g, layers.NewStore(tensor.Float64, 0))
	if _, err := o.Action(s, s.Input("phi", 2, 1, 4, 4)); err == nil {
		t.Error("o2: one-channel input accepted")
	}
}

func ExampleNewO2Hopping() {
	// NeuralRG's O(2) default κ = 0.15, λ_H = 1.145 in the standard convention.
	a, _ := NewO2Hopping(8, 0.15, 1.145)
	p := a.Params()
	fmt.Printf("m2 = %.6f, lambda = %.6f, field scale √(2κ) = %.6f\n", p["m2"], p["lambda"], HoppingFieldScale(0.15))
	// Output: m2 = -12.600000, lambda = 12.722222, field scale √(2κ) = 0.547723
}

func TestGorgoniaSoftplusStillTruncates(t *testing.T) {
	// graphLnCosh avoids G.Softplus because Gorgonia v0.9.18 returns x unchanged for x > 16 (float64),
	// an error of log1p(e^{−x}) ≈ 1e-7 at x = 16. If this test fails, Gorgonia changed and the workaround
	// could be revisited (it stays correct either way).
	g := G.NewGraph()
	x := G.NewScalar(g, tensor.Float64, G.WithName("x"))
	y, err := G.Softplus(x)
	if err != nil {
		t.Fatal(err)
	}
	if err := G.Let(x, 16.5); err != nil {
		t.Fatal(err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := y.Value().Data().(float64)
	exact := 16.5 + math.Log1p(math.Exp(-16.5))
	if got != 16.5 || math.Abs(got-exact) < 1e-8 {
		t.Errorf("G.Softplus(16.5) = %.17g (exact %.17g): Gorgonia's truncation changed", got, exact)
	}
}
