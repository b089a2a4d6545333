package layers_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/layerstest"
)

// modulateRef is h·(1+γ) + β with γ, β (B, C) broadcast over the rest positions of each channel.
func modulateRef(h []float64, b, c, rest int, gamma, beta []float64) []float64 {
	y := make([]float64, len(h))
	for i := range y {
		bc := i / rest
		y[i] = h[i]*(1+gamma[bc]) + beta[bc]
	}
	return y
}

func TestModulate(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	for _, shape := range [][]int{{2, 3, 2, 2}, {3, 4}} {
		b, c := shape[0], shape[1]
		rest := size(shape[2:])
		vals := [][]float64{randVals(rng, size(shape), -2, 2), randVals(rng, b*c, -1, 1), randVals(rng, b*c, -1, 1)}
		shapes := [][]int{shape, {b, c}, {b, c}}
		got := evalNodes(t, tensor.Float64, shapes, vals, func(in []*G.Node) (*G.Node, error) { return layers.Modulate(in[0], in[1], in[2]) })
		want := modulateRef(vals[0], b, c, rest, vals[1], vals[2])
		compareVals(t, got, want, 1e-15) // one product and one sum, exact to an ulp
		got = evalNodes(t, tensor.Float32, shapes, vals, func(in []*G.Node) (*G.Node, error) { return layers.Modulate(in[0], in[1], in[2]) })
		compareVals(t, got, want, 1e-6) // float32: inputs and two operations rounded to 2⁻²⁴ each, |h(1+γ)| ≤ 4
		build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
			y, err := layers.Modulate(in[0], in[1], in[2])
			if err != nil {
				return nil, err
			}
			return aliasLoss(g, in[0], y, 31)
		}
		layerstest.GradCheck(t, shapes, vals, build, gradTol)
		v := [][]float64{randVals(rng, size(shape), -1, 1), randVals(rng, b*c, -1, 1), randVals(rng, b*c, -1, 1)}
		layerstest.SecondOrderCheck(t, shapes, vals, v, build, gradTol)
	}
}

func TestFiLM(t *testing.T) {
	const b, c, e = 3, 2, 4
	shape := []int{b, c, 2, 3}
	rng := rand.New(rand.NewPCG(8, 2))
	h := randVals(rng, size(shape), -2, 2)
	emb := randVals(rng, b*e, -1, 1)
	store := layers.NewStore(tensor.Float64, 1)
	film := func(in []*G.Node) (*G.Node, error) {
		return layers.FiLM(layers.NewScope(in[0].Graph(), store).Sub("film"), in[0], in[1])
	}
	shapes := [][]int{shape, {b, e}}

	// Identity at initialisation, exactly.
	got := evalNodes(t, tensor.Float64, shapes, [][]float64{h, emb}, film)
	for i := range h {
		if got[i] != h[i] {
			t.Fatalf("FiLM at initialisation changed element %d from %g to %g", i, h[i], got[i])
		}
	}
	if store.NumParams() != 2*c*e+2*c {
		t.Fatalf("FiLM has %d parameters, want 2C·E + 2C = %d", store.NumParams(), 2*c*e+2*c)
	}

	// With trained (perturbed) weights: γ = W[:C]·emb + b[:C], β = W[C:]·emb + b[C:], by hand.
	store.Perturb(rand.New(rand.NewPCG(2, 2)), 0.5)
	w, _ := store.Get("film/w")
	bb, _ := store.Get("film/b")
	wv, bv := layers.Float64s(w), layers.Float64s(bb)
	gamma, beta := make([]float64, b*c), make([]float64, b*c)
	for s := 0; s < b; s++ {
		for k := 0; k < c; k++ {
			g, be := bv[k], bv[c+k]
			for j := 0; j < e; j++ {
				g += wv[k*e+j] * emb[s*e+j]
				be += wv[(c+k)*e+j] * emb[s*e+j]
			}
			gamma[s*c+k], beta[s*c+k] = g, be
		}
	}
	got = evalNodes(t, tensor.Float64, shapes, [][]float64{h, emb}, film)
	compareVals(t, got, modulateRef(h, b, c, 6, gamma, beta), 1e-13) // sums of 4 products: a few ulp

	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := film(in)
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, in[0], y, 32)
	}
	vals := [][]float64{h, emb}
	layerstest.GradCheck(t, shapes, vals, build, gradTol)
	layerstest.SecondOrderCheck(t, shapes, vals, [][]float64{randVals(rng, len(h), -1, 1), randVals(rng, len(emb), -1, 1)}, build, gradTol)

	// (B, C) features.
	got = evalNodes(t, tensor.Float64, [][]int{{b, c}, {b, e}}, [][]float64{h[:b*c], emb}, film)
	compareVals(t, got, modulateRef(h[:b*c], b, c, 1, gamma, beta), 1e-13)
}

func TestFiLMErrors(t *testing.T) {
	g := G.NewGraph()
	s := layers.NewScope(g, layers.NewStore(tensor.Float64, 0))
	h := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 2, 2), G.WithName("h"))
	e := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 5), G.WithName("e"))
	gm := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 2), G.WithName("g"))
	if _, err := layers.FiLM(s, h, e); err == nil || !strings.Contains(err.Error(), "want (B, E) with B = 2") {
		t.Errorf("FiLM batch mismatch: %v", err)
	}
	if _, err := layers.Modulate(h, gm, gm); err == nil || !strings.Contains(err.Error(), "γ has shape (2,2), want (2, 3)") {
		t.Errorf("Modulate shape mismatch: %v", err)
	}
}
