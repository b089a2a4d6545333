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
	"rgflow/layers/layerstest"
)

// TestGroupNormAct: the fused op equals the graph GroupNormalize → Modulate → Swish (values to 1e-12 in
// float64: the same arithmetic in another order), and its gradients with respect to every input agree
// with central finite differences (tolerance 1e-6, the kit's), with and without FiLM and swish, on
// (B, C, H, W) and (B, C) inputs.
func TestGroupNormAct(t *testing.T) {
	// {2, 4, 9, 8}: planes of 72 ≥ gnVecMin, the vector-kernel passes (with tails).
	for _, shape := range [][]int{{2, 4, 3, 2}, {3, 6}, {2, 4, 9, 8}} {
		for _, film := range []bool{false, true} {
			for _, act := range []bool{false, true} {
				b, c := shape[0], shape[1]
				rng := rand.New(rand.NewPCG(uint64(len(shape)), 9))
				shapes := [][]int{shape, {c}, {c}}
				vals := [][]float64{randVals(rng, size(shape), -2, 2), randVals(rng, c, 0.5, 1.5), randVals(rng, c, -0.5, 0.5)}
				if film {
					shapes = append(shapes, []int{b * c}, []int{b * c})
					vals = append(vals, randVals(rng, b*c, -0.5, 0.5), randVals(rng, b*c, -0.5, 0.5))
				}
				fused := func(in []*G.Node) (*G.Node, error) {
					var g, be *G.Node
					if film {
						g, be = in[3], in[4]
					}
					return layers.GroupNormAct(in[0], 2, 0, in[1], in[2], g, be, act)
				}
				graph := func(in []*G.Node) (*G.Node, error) {
					y, err := layers.GroupNormalize(in[0], 2, 0, in[1], in[2])
					if err != nil {
						return nil, err
					}
					if film {
						gr, err := layers.Reshape(in[3], b, c)
						if err != nil {
							return nil, err
						}
						br, err := layers.Reshape(in[4], b, c)
						if err != nil {
							return nil, err
						}
						if y, err = layers.Modulate(y, gr, br); err != nil {
							return nil, err
						}
					}
					if act {
						return layers.Swish(y)
					}
					return y, nil
				}
				compareVals(t, evalNodes(t, tensor.Float64, shapes, vals, fused), evalNodes(t, tensor.Float64, shapes, vals, graph), 1e-12)
				layerstest.GradCheck(t, shapes, vals, func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
					y, err := fused(in)
					if err != nil {
						return nil, err
					}
					return weightedSum(y, 7)
				}, 1e-6)
			}
		}
	}
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 4, 2, 2), G.WithName("x"))
	sc := G.NewTensor(g, tensor.Float64, 1, G.WithShape(4), G.WithName("s"))
	if _, err := layers.GroupNormAct(x, 3, 0, sc, sc, nil, nil, true); err == nil || !strings.Contains(err.Error(), "do not divide") {
		t.Errorf("3 groups of 4 channels: %v", err)
	}
	if _, err := layers.GroupNormAct(x, 2, 0, sc, sc, sc, nil, true); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("γ without β: %v", err)
	}
}

// TestGroupNormActFloat32: in float32, on a (3, 4, 5, 7) map (35 positions per plane, 70 per group: the
// unrolled sums of the statistics and of the backward pass run their tails too) and a (2, 4, 9, 9) map (81
// positions per plane: the vector-kernel passes and their tails), the fused op's output and
// its gradients with respect to every input match the unfused graph evaluated in float64 to 2e-4 relative
// (float32 rounding, about 1e-7 per operation, accumulated over sums of up to 105 terms and the swish).
func TestGroupNormActFloat32(t *testing.T) {
	// planes of 35 (plain loops), 81 (the vector passes: 80 in whole vectors, a tail of 1) and 256 values
	for _, shape := range [][]int{{3, 4, 5, 7}, {2, 4, 9, 9}, {2, 4, 16, 16}} {
		testGroupNormActFloat32(t, shape)
	}
}

func testGroupNormActFloat32(t *testing.T, shape []int) {
	b, c := shape[0], shape[1]
	rng := rand.New(rand.NewPCG(5, 17))
	shapes := [][]int{shape, {c}, {c}, {b * c}, {b * c}}
	vals := [][]float64{randVals(rng, size(shape), -2, 3), randVals(rng, c, 0.5, 1.5), randVals(rng, c, -0.5, 0.5),
		randVals(rng, b*c, -0.5, 0.5), randVals(rng, b*c, -0.5, 0.5)}
	fused := func(in []*G.Node) (*G.Node, error) {
		return layers.GroupNormAct(in[0], 2, 0, in[1], in[2], in[3], in[4], true)
	}
	graph := func(in []*G.Node) (*G.Node, error) {
		y, err := layers.GroupNormalize(in[0], 2, 0, in[1], in[2])
		if err != nil {
			return nil, err
		}
		gr, err := layers.Reshape(in[3], b, c)
		if err != nil {
			return nil, err
		}
		br, err := layers.Reshape(in[4], b, c)
		if err != nil {
			return nil, err
		}
		if y, err = layers.Modulate(y, gr, br); err != nil {
			return nil, err
		}
		return layers.Swish(y)
	}
	const tol = 2e-4
	near := func(what string, got, want []float64) {
		t.Helper()
		for i := range want {
			if math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
				t.Fatalf("%s[%d]: float32 fused %v, float64 graph %v", what, i, got[i], want[i])
			}
		}
	}
	near("y", evalNodes(t, tensor.Float32, shapes, vals, fused), evalNodes(t, tensor.Float64, shapes, vals, graph))
	cw := randVals(rng, size(shape), -1, 1)
	g32, g64 := gradsOf(t, tensor.Float32, shapes, vals, cw, fused), gradsOf(t, tensor.Float64, shapes, vals, cw, graph)
	for i := range g64 {
		near(fmt.Sprintf("grad %d", i), g32[i], g64[i])
	}
}

// TestUNetFusedEqualsUnfused: the U-Net with the fused GroupNormAct gives the same output and the same
// parameter gradients as the unfused graph (float64, 1e-10 relative: sums in another order).
func TestUNetFusedEqualsUnfused(t *testing.T) {
	var outs [2][]float64
	var grads [2][][]float64
	for k, unfused := range []bool{false, true} {
		u := tinyUNet("film", "conv", "nearest")
		u.Unfused = unfused
		store := layers.NewStore(tensor.Float64, 3)
		g := G.NewGraph()
		s := layers.NewScope(g, store)
		rng := rand.New(rand.NewPCG(5, 5))
		x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 2, 4, 4), G.WithName("x"),
			G.WithValue(layers.NewDense(tensor.Float64, []int{2, 2, 4, 4}, randVals(rng, 64, -1, 1))))
		tn := G.NewTensor(g, tensor.Float64, 1, G.WithShape(2), G.WithName("t"),
			G.WithValue(layers.NewDense(tensor.Float64, []int{2}, []float64{0.3, 0.8})))
		y, err := u.Apply(s, x, tn)
		if err != nil {
			t.Fatal(err)
		}
		loss, err := weightedSum(y, 5)
		if err != nil {
			t.Fatal(err)
		}
		store.Perturb(rand.New(rand.NewPCG(9, 9)), 0.3)
		_, params := s.Params()
		gs, err := layers.Grad(loss, params...)
		if err != nil {
			t.Fatal(err)
		}
		m := layers.MustNewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		outs[k] = layers.ValueFloats(y.Value())
		for _, gn := range gs {
			grads[k] = append(grads[k], layers.ValueFloats(gn.Value()))
		}
		m.Close()
	}
	for i := range outs[0] {
		if math.Abs(outs[0][i]-outs[1][i]) > 1e-10*math.Max(1, math.Abs(outs[1][i])) {
			t.Fatalf("output %d: fused %v, unfused %v", i, outs[0][i], outs[1][i])
		}
	}
	for p := range grads[0] {
		for i := range grads[0][p] {
			a, b := grads[0][p][i], grads[1][p][i]
			if math.Abs(a-b) > 1e-10*math.Max(1, math.Abs(b)) {
				t.Fatalf("parameter %d element %d: fused gradient %v, unfused %v", p, i, a, b)
			}
		}
	}
}

// TestConcatChannels: the values are those of Gorgonia's Concat along axis 1 (exactly: copies), and the
// gradient agrees with finite differences.
func TestConcatChannels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 7))
	shapes := [][]int{{2, 3, 2, 3}, {2, 2, 2, 3}}
	vals := [][]float64{randVals(rng, 36, -1, 1), randVals(rng, 24, -1, 1)}
	got := evalNodes(t, tensor.Float64, shapes, vals, func(in []*G.Node) (*G.Node, error) { return layers.ConcatChannels(in[0], in[1]) })
	want := evalNodes(t, tensor.Float64, shapes, vals, func(in []*G.Node) (*G.Node, error) { return G.Concat(1, in[0], in[1]) })
	compareVals(t, got, want, 0)
	layerstest.GradCheck(t, shapes, vals, func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := layers.ConcatChannels(in[0], in[1])
		if err != nil {
			return nil, err
		}
		return weightedSum(y, 4)
	}, 1e-6)
}
