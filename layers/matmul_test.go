package layers

import (
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"

	"rgflow/layers/layerstest"
)

// MatMul and its transposed forms, first and second order, against finite differences (layerstest's
// tolerances), through a downstream that is not linear (tanh) so that second derivatives are not zero.
func TestMatMulGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	rv := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	for _, kind := range []mmKind{mmNN, mmNT, mmTN} {
		var as, bs []int
		switch kind {
		case mmNN:
			as, bs = []int{3, 4}, []int{4, 13}
		case mmNT:
			as, bs = []int{3, 13}, []int{5, 13}
		case mmTN:
			as, bs = []int{4, 3}, []int{4, 13}
		}
		shapes := [][]int{as, bs}
		vals := [][]float64{rv(as[0] * as[1]), rv(bs[0] * bs[1])}
		build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
			c, err := applyFMMul(kind, in[0], in[1])
			if err != nil {
				return nil, err
			}
			th, err := G.Tanh(c)
			if err != nil {
				return nil, err
			}
			return G.Sum(th)
		}
		layerstest.GradCheck(t, shapes, vals, build, 1e-6)
		layerstest.SecondOrderCheck(t, shapes, vals, [][]float64{rv(len(vals[0])), rv(len(vals[1]))}, build, 1e-6)
	}
}

func TestMatMulShapeErrors(t *testing.T) {
	g := G.NewGraph()
	a := G.NewMatrix(g, G.Float64, G.WithShape(3, 4), G.WithName("a"))
	b := G.NewMatrix(g, G.Float64, G.WithShape(5, 6), G.WithName("b"))
	if _, err := MatMul(a, b); err == nil {
		t.Error("MatMul accepted (3,4)·(5,6)")
	}
}
