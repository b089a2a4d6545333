package layers_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/layerstest"
)

// gradsOf evaluates the gradients of Σ c ⊙ f(in) with respect to every input, in a graph of dtype dt.
func gradsOf(t *testing.T, dt tensor.Dtype, shapes [][]int, vals [][]float64, c []float64, f func(in []*G.Node) (*G.Node, error)) [][]float64 {
	t.Helper()
	g := G.NewGraph()
	var in []*G.Node
	for i, s := range shapes {
		in = append(in, G.NewTensor(g, dt, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("x%d", i)), G.WithValue(layers.NewDense(dt, s, vals[i]))))
	}
	y, err := f(in)
	if err != nil {
		t.Fatal(err)
	}
	cn := G.NewTensor(g, dt, y.Dims(), G.WithShape(y.Shape()...), G.WithName("c"), G.WithValue(layers.NewDense(dt, y.Shape(), c)))
	p, err := G.HadamardProd(y, cn)
	if err != nil {
		t.Fatal(err)
	}
	cost, err := G.Sum(p)
	if err != nil {
		t.Fatal(err)
	}
	gr, err := layers.Grad(cost, in...)
	if err != nil {
		t.Fatal(err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(gr))
	for i, n := range gr {
		out[i] = layers.Float64s(n.Value().(tensor.Tensor))
	}
	return out
}

// The fused backward passes of ELU (one pass from the output) and of the FiLM modulation (per-row
// affine map, its row dot products and row sums, on the 4-D map in place) against the gradients written
// out by hand, in float64 and float32, on a (3, 5, 7, 7) map: 49 positions per row, so every vector
// kernel also runs its tail.
func TestFusedBackwardAgainstFormulas(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 1))
	shape := []int{3, 5, 7, 7}
	n, rows := size(shape), 15
	x := randVals(rng, n, -3, 3)
	x[0], x[1] = -30, 1e-3 // deep in the exponential tail; just above 0
	c := randVals(rng, n, -1, 1)
	gamma, beta := randVals(rng, rows, -1, 1), randVals(rng, rows, -1, 1)
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		// float64: a few roundings of O(1) terms, sums of 49 terms: 1e-13. float32: inputs rounded to
		// 2⁻²⁴ relative, the exp to 2 ulp, sums of 49 products of O(1) terms: 1e-5 relative to max(1, |g|).
		tol := 1e-13
		if dt == tensor.Float32 {
			tol = 1e-5
		}
		t.Run("ELU-"+dt.String(), func(t *testing.T) {
			got := gradsOf(t, dt, [][]int{shape}, [][]float64{x}, c, func(in []*G.Node) (*G.Node, error) { return layers.ELU(in[0]) })
			want := make([]float64, n)
			for i, v := range x {
				d := 1.0
				if v <= 0 {
					d = math.Exp(v)
				}
				want[i] = c[i] * d
			}
			compareVals(t, got[0], want, tol)
		})
		t.Run("Modulate-"+dt.String(), func(t *testing.T) {
			got := gradsOf(t, dt, [][]int{shape, {3, 5}, {3, 5}}, [][]float64{x, gamma, beta}, c,
				func(in []*G.Node) (*G.Node, error) { return layers.Modulate(in[0], in[1], in[2]) })
			gh, gg, gb := make([]float64, n), make([]float64, rows), make([]float64, rows)
			for i := range x {
				r := i / 49
				gh[i] = c[i] * (1 + gamma[r])
				gg[r] += c[i] * x[i]
				gb[r] += c[i]
			}
			compareVals(t, got[0], gh, tol)
			compareVals(t, got[1], gg, tol*10) // sums of 49 terms of size ≤ 3
			compareVals(t, got[2], gb, tol*10)
		})
	}
}

// ModulateELU (FiLM's modulation and ELU fused into one op, as the CNN uses them) against the formula
// ELU(h·(1+γ)+β): values in float64 and float32, its gradients against the hand-written ones in both
// dtypes, and finite differences to first and second order.
func TestModulateELU(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 2))
	shape := []int{3, 5, 7, 7}
	n, rows := size(shape), 15
	h := randVals(rng, n, -3, 3)
	c := randVals(rng, n, -1, 1)
	gamma, beta := randVals(rng, rows, -1, 1), randVals(rng, rows, -1, 1)
	shapes := [][]int{shape, {3, 5}, {3, 5}}
	vals := [][]float64{h, gamma, beta}
	z := make([]float64, n)
	want := make([]float64, n)
	for i := range h {
		r := i / 49
		z[i] = h[i]*(1+gamma[r]) + beta[r]
		want[i] = z[i]
		if z[i] <= 0 {
			want[i] = math.Expm1(z[i])
		}
	}
	op := func(in []*G.Node) (*G.Node, error) { return layers.ModulateELU(in[0], in[1], in[2]) }
	compareVals(t, evalNodes(t, tensor.Float64, shapes, vals, op), want, 1e-14) // a product, a sum and expm1: a few ulp
	// float32: inputs, the affine map and the exp rounded to 2⁻²⁴ relative each, |z| ≤ 7: 1e-6.
	compareVals(t, evalNodes(t, tensor.Float32, shapes, vals, op), want, 1e-6)
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		got := gradsOf(t, dt, shapes, vals, c, op)
		gh, gg, gb := make([]float64, n), make([]float64, rows), make([]float64, rows)
		for i := range h {
			r := i / 49
			gz := c[i]
			if z[i] <= 0 {
				gz *= math.Exp(z[i])
			}
			gh[i] = gz * (1 + gamma[r])
			gg[r] += gz * h[i]
			gb[r] += gz
		}
		// As in TestFusedBackwardAgainstFormulas; float32 also carries the rounding of z into e^z.
		tol := 1e-13
		if dt == tensor.Float32 {
			tol = 1e-5
		}
		compareVals(t, got[0], gh, tol)
		compareVals(t, got[1], gg, tol*10)
		compareVals(t, got[2], gb, tol*10)
	}
	small := []int{2, 3, 2, 2}
	sv := [][]float64{randVals(rng, 24, -2, 2), randVals(rng, 6, -1, 1), randVals(rng, 6, -1, 1)}
	ss := [][]int{small, {2, 3}, {2, 3}}
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := op(in)
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, in[0], y, 33)
	}
	layerstest.GradCheck(t, ss, sv, build, gradTol)
	dir := [][]float64{randVals(rng, 24, -1, 1), randVals(rng, 6, -1, 1), randVals(rng, 6, -1, 1)}
	layerstest.SecondOrderCheck(t, ss, sv, dir, build, gradTol)
}

// The CNN with FiLM conditioning and elu runs the fused FiLMELU op: its gradients with respect to the
// field and the embedding against finite differences, to first and second order.
func TestCNNFusedFiLMELUGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 1))
	shape := []int{2, 1, 3, 3}
	const e = 2
	net := layers.CNN{In: 1, Out: 1, Hidden: []int{2, 2}, Kernel: 3, Activation: "elu"}
	store := trained(t, net, shape, make([]float64, 2*e), e, 10)
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := net.ApplyCond(layers.NewScope(g, store).Sub("cnn"), in[0], in[1])
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, in[0], y, 62)
	}
	shapes := [][]int{shape, {2, e}}
	vals := [][]float64{randVals(rng, size(shape), -1, 1), randVals(rng, 2*e, -1, 1)}
	layerstest.GradCheck(t, shapes, vals, build, gradTol)
	layerstest.SecondOrderCheck(t, shapes, vals, [][]float64{randVals(rng, size(shape), -1, 1), randVals(rng, 2*e, -1, 1)}, build, gradTol)
}
