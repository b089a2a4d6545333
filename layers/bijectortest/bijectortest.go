// Package bijectortest is the conformance suite every rgflow bijector passes (the project's testing pattern):
// identity at initialisation, round trips both ways, ldj_F(x) + ldj_I(F(x)) = 0, the log-det against
// log|det| of a finite-difference Jacobian (for D ≤ 64), finite outputs and a non-zero gradient for every
// parameter. A new bijector gets the whole suite by one call to Run.
package bijectortest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
)

// Case is one bijector under test.
type Case struct {
	Name     string
	Bijector layers.Bijector
	// Shape is the input shape including the batch, e.g. (3, 1, 8, 8) or (5, 4); batch ≥ 2.
	Shape []int
	Dtype tensor.Dtype
	Seed  uint64
	// WeightScale is the standard deviation of the random perturbation added to every parameter for the
	// non-identity checks (default 0.3).
	WeightScale float64
	// NotIdentityAtInit is set for bijectors that are not meant to start as the identity.
	NotIdentityAtInit bool
}

// Tolerances: round trips are exact up to rounding; 1e-10 (float64) and 1e-4 (float32) leave room for
// the error growth through tens of couplings (measured when the suite was written). The Jacobian log-det is compared to central
// differences with step 1e-5: truncation error O(h²)·|f”'| ≈ 1e-9 per entry, so 1e-6 on log|det|.
func roundTripTol(dt tensor.Dtype) float64 {
	if dt == tensor.Float32 {
		return 1e-4
	}
	return 1e-10
}

const jacobianTol = 1e-6

// Run executes every check on c.
func Run(t *testing.T, c Case) {
	t.Helper()
	if c.WeightScale == 0 {
		c.WeightScale = 0.3
	}
	if c.Dtype == (tensor.Dtype{}) {
		c.Dtype = tensor.Float64
	}
	rng := rand.New(rand.NewPCG(c.Seed, 77))
	store := layers.NewStore(c.Dtype, c.Seed)
	x := roundTo(c.Dtype, randomInput(rng, c.Shape))

	// Identity at initialisation.
	z, ld, err := forward(c, store, x)
	if err != nil {
		t.Fatalf("%s: forward: %v", c.Name, err)
	}
	if !c.NotIdentityAtInit {
		if d := maxAbsDiff(z, x); d != 0 {
			t.Errorf("%s: not the identity at initialisation: max|F(x)−x| = %g", c.Name, d)
		}
		if m := maxAbs(ld); m != 0 {
			t.Errorf("%s: log-det at initialisation is %g, want 0", c.Name, m)
		}
	}
	if store.Len() == 0 {
		t.Logf("%s: bijector has no parameters", c.Name)
	}
	store.Perturb(rand.New(rand.NewPCG(c.Seed, 2)), c.WeightScale)

	tol := roundTripTol(c.Dtype)
	// x → z → x.
	z, ldF, err := forward(c, store, x)
	if err != nil {
		t.Fatalf("%s: forward: %v", c.Name, err)
	}
	checkFinite(t, c.Name+": F(x)", z)
	checkFinite(t, c.Name+": ldj_F(x)", ldF)
	if maxAbsDiff(z, x) == 0 && !c.NotIdentityAtInit && store.Len() > 0 {
		t.Errorf("%s: still the identity after perturbing the weights: the test would not see a wrong inverse", c.Name)
	}
	x2, ldI, err := inverse(c, store, z)
	if err != nil {
		t.Fatalf("%s: inverse: %v", c.Name, err)
	}
	if d := maxAbsDiff(x2, x) / (1 + maxAbs(x)); d > tol {
		t.Errorf("%s: round trip x→z→x: relative error %g > %g", c.Name, d, tol)
	}
	for i := range ldF {
		if d := math.Abs(ldF[i]+ldI[i]) / (1 + math.Abs(ldF[i])); d > tol {
			t.Errorf("%s: sample %d: ldj_F(x) + ldj_I(F(x)) = %g + %g (relative %g > %g)", c.Name, i, ldF[i], ldI[i], d, tol)
			break
		}
	}
	// z → x → z.
	zr := roundTo(c.Dtype, randomInput(rng, c.Shape))
	xr, _, err := inverse(c, store, zr)
	if err != nil {
		t.Fatalf("%s: inverse: %v", c.Name, err)
	}
	checkFinite(t, c.Name+": F⁻¹(z)", xr)
	zr2, _, err := forward(c, store, xr)
	if err != nil {
		t.Fatalf("%s: forward: %v", c.Name, err)
	}
	if d := maxAbsDiff(zr2, zr) / (1 + maxAbs(zr)); d > tol {
		t.Errorf("%s: round trip z→x→z: relative error %g > %g", c.Name, d, tol)
	}

	// Log-det against a finite-difference Jacobian, one sample at a time.
	d := len(x) / c.Shape[0]
	if d <= 64 && c.Dtype == tensor.Float64 {
		checkJacobian(t, c, store, x[:d], ldF[0])
	}
	checkGradients(t, c, store, x)
}

func randomInput(rng *rand.Rand, shape []int) []float64 {
	n := 1
	for _, s := range shape {
		n *= s
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// roundTo rounds v to the dtype's precision, so that exact comparisons with graph outputs are fair.
func roundTo(dt tensor.Dtype, v []float64) []float64 {
	if dt == tensor.Float32 {
		for i, x := range v {
			v[i] = float64(float32(x))
		}
	}
	return v
}

// run builds a graph applying the bijector in one direction to in (shape), runs it and returns the output
// and log-det values.
func run(c Case, store *layers.Store, shape []int, in []float64, inv bool) ([]float64, []float64, error) {
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	xn := s.Input("x", shape...)
	var out, ld *G.Node
	var err error
	if inv {
		out, ld, err = c.Bijector.Inverse(s, xn)
	} else {
		out, ld, err = c.Bijector.Forward(s, xn)
	}
	if err != nil {
		return nil, nil, err
	}
	if got, want := ld.Shape(), shape[0]; ld.Dims() != 1 || got[0] != want {
		return nil, nil, fmt.Errorf("log-det has shape %v, want (%d)", got, want)
	}
	if !slices.Equal(out.Shape(), shape) {
		return nil, nil, fmt.Errorf("output has shape %v, want %v", out.Shape(), shape)
	}
	m, err := layers.NewTapeMachine(g)
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	if err := G.Let(xn, layers.NewDense(store.Dtype(), shape, in)); err != nil {
		return nil, nil, err
	}
	if err := m.RunAll(); err != nil {
		return nil, nil, err
	}
	return layers.Float64s(out.Value().(tensor.Tensor)), layers.Float64s(ld.Value().(tensor.Tensor)), nil
}

func forward(c Case, store *layers.Store, x []float64) ([]float64, []float64, error) {
	return run(c, store, c.Shape, x, false)
}

func inverse(c Case, store *layers.Store, z []float64) ([]float64, []float64, error) {
	return run(c, store, c.Shape, z, true)
}

func checkJacobian(t *testing.T, c Case, store *layers.Store, x0 []float64, want float64) {
	t.Helper()
	shape := append([]int{1}, c.Shape[1:]...)
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	xn := s.Input("x", shape...)
	out, _, err := c.Bijector.Forward(s, xn)
	if err != nil {
		t.Fatalf("%s: jacobian graph: %v", c.Name, err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	d := len(x0)
	f := func(y, x []float64) {
		if err := G.Let(xn, layers.NewDense(store.Dtype(), shape, x)); err != nil {
			panic(err)
		}
		if err := m.RunAll(); err != nil {
			panic(err)
		}
		copy(y, layers.Float64s(out.Value().(tensor.Tensor)))
		m.Reset()
	}
	jac := mat.NewDense(d, d, nil)
	fd.Jacobian(jac, f, x0, &fd.JacobianSettings{Formula: fd.Central, Step: 1e-5})
	var lu mat.LU
	lu.Factorize(jac)
	logDet, _ := lu.LogDet()
	if math.Abs(logDet-want) > jacobianTol*(1+math.Abs(want)) {
		t.Errorf("%s: log-det %.12g, finite-difference Jacobian gives %.12g (diff %g)", c.Name, want, logDet, want-logDet)
	}
}

func checkGradients(t *testing.T, c Case, store *layers.Store, x []float64) {
	t.Helper()
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	xn := s.Input("x", c.Shape...)
	z, ld, err := c.Bijector.Forward(s, xn)
	if err != nil {
		t.Fatalf("%s: gradient graph: %v", c.Name, err)
	}
	names, params := s.Params()
	if len(params) == 0 {
		return
	}
	// loss = Σ w ⊙ z + Σ ldj with fixed random w, so every parameter that moves z or the log-det matters.
	rng := rand.New(rand.NewPCG(c.Seed, 3))
	w := G.NewConstant(layers.NewDense(store.Dtype(), c.Shape, randomInput(rng, c.Shape)), G.WithName("bijectortest/w"))
	wz, err := G.HadamardProd(w, z)
	if err != nil {
		t.Fatal(err)
	}
	sz, err := G.Sum(wz)
	if err != nil {
		t.Fatal(err)
	}
	sl, err := G.Sum(ld)
	if err != nil {
		t.Fatal(err)
	}
	loss, err := G.Add(sz, sl)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := layers.Grad(loss, params...)
	if err != nil {
		t.Fatalf("%s: layers.Grad: %v", c.Name, err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := G.Let(xn, layers.NewDense(store.Dtype(), c.Shape, x)); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatalf("%s: gradient run: %v", c.Name, err)
	}
	for i, gr := range grads {
		v := layers.Float64s(gr.Value().(tensor.Tensor))
		checkFinite(t, c.Name+": gradient of "+names[i], v)
		if maxAbs(v) == 0 {
			t.Errorf("%s: parameter %s has an all-zero gradient", c.Name, names[i])
		}
	}
}

func checkFinite(t *testing.T, what string, v []float64) {
	t.Helper()
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Errorf("%s: entry %d is %g", what, i, x)
			return
		}
	}
}

func maxAbsDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func maxAbs(a []float64) float64 {
	m := 0.0
	for _, x := range a {
		m = max(m, math.Abs(x))
	}
	return m
}
