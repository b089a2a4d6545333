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

// upConvCases: batch, channels in → out, coarse H×W. They cover the forward kernels' paths (8 output
// channels per block, narrow outputs with Cout ≤ 4, 8×8 maps over whole padded planes, odd and
// non-square sizes) and an input gradient into 1–4 channels (narrow as well).
var upConvCases = []struct{ b, cin, cout, h, w int }{
	{2, 3, 5, 4, 6},
	{3, 8, 9, 8, 8},
	{2, 2, 3, 5, 3},
	{1, 16, 16, 16, 16},
	{2, 1, 1, 1, 1},
}

// TestUpsampleConv2DMatchesGraph: UpsampleConv2D gives the values and the gradients (x, w and b, under a
// random weighting of the outputs) of Conv2DBias(Upsample2x(x), w, b) with zero padding, in every kernel
// mode: float64 to 1e-12 relative (the same products summed in another order: the weights of a phase are
// summed before they multiply), float32 to 1e-4 (float32 rounding of sums of up to 9·16 products of
// values of order 1, against the float64 graph).
func TestUpsampleConv2DMatchesGraph(t *testing.T) {
	for _, mode := range layers.ConvKernelModes() {
		for k, c := range upConvCases {
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				t.Run(fmt.Sprintf("%s/%d/%v", mode, k, dt), func(t *testing.T) {
					defer layers.UseConvKernels(mode)()
					rng := rand.New(rand.NewPCG(21, uint64(k)))
					shapes := [][]int{{c.b, c.cin, c.h, c.w}, {c.cout, c.cin, 3, 3}, {c.cout}}
					vals := [][]float64{randVals(rng, size(shapes[0]), -1, 1), randVals(rng, size(shapes[1]), -1, 1), randVals(rng, c.cout, -1, 1)}
					fused := func(in []*G.Node) (*G.Node, error) { return layers.UpsampleConv2D(in[0], in[1], in[2]) }
					graph := func(in []*G.Node) (*G.Node, error) {
						u, err := layers.Upsample2x(in[0])
						if err != nil {
							return nil, err
						}
						return layers.Conv2DBias(u, in[1], in[2], layers.ConvOpts{Pad: layers.Zero})
					}
					tol := 1e-12
					if dt == tensor.Float32 {
						tol = 1e-4
					}
					near := func(what string, got, want []float64) {
						t.Helper()
						if len(got) != len(want) {
							t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
						}
						for i := range want {
							if math.Abs(got[i]-want[i]) > tol*math.Max(1, math.Abs(want[i])) {
								t.Fatalf("%s[%d]: UpsampleConv2D %v, graph %v", what, i, got[i], want[i])
							}
						}
					}
					near("y", evalNodes(t, dt, shapes, vals, fused), evalNodes(t, tensor.Float64, shapes, vals, graph))
					cw := randVals(rng, c.b*c.cout*4*c.h*c.w, -1, 1)
					gf, gg := gradsOf(t, dt, shapes, vals, cw, fused), gradsOf(t, tensor.Float64, shapes, vals, cw, graph)
					for i := range gg {
						near(fmt.Sprintf("grad %d", i), gf[i], gg[i])
					}
				})
			}
		}
	}
}

// TestUpsampleConv2DGradCheck: the gradients of a nonlinear loss through UpsampleConv2D against central
// finite differences (float64; tolerance gradTol).
func TestUpsampleConv2DGradCheck(t *testing.T) {
	for _, mode := range layers.ConvKernelModes() {
		for k, c := range upConvCases[:3] {
			t.Run(fmt.Sprintf("%s/%d", mode, k), func(t *testing.T) {
				defer layers.UseConvKernels(mode)()
				rng := rand.New(rand.NewPCG(22, uint64(k)))
				shapes := [][]int{{c.b, c.cin, c.h, c.w}, {c.cout, c.cin, 3, 3}, {c.cout}}
				vals := [][]float64{randVals(rng, size(shapes[0]), -1, 1), randVals(rng, size(shapes[1]), -1, 1), randVals(rng, c.cout, -1, 1)}
				layerstest.GradCheck(t, shapes, vals, func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
					y, err := layers.UpsampleConv2D(in[0], in[1], in[2])
					if err != nil {
						return nil, err
					}
					if y, err = G.Tanh(y); err != nil {
						return nil, err
					}
					return wsum(g, y, "r", uint64(k))
				}, gradTol)
			})
		}
	}
}

// UpsampleConv2D refuses inputs that do not fit and a second derivative.
func TestUpsampleConv2DErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 3, 4, 4), G.WithName("x"))
	w := G.NewTensor(g, tensor.Float64, 4, G.WithShape(5, 3, 3, 3), G.WithName("w"))
	w5 := G.NewTensor(g, tensor.Float64, 4, G.WithShape(5, 3, 5, 5), G.WithName("w5"))
	b := G.NewTensor(g, tensor.Float64, 1, G.WithShape(5), G.WithName("b"))
	b4 := G.NewTensor(g, tensor.Float64, 1, G.WithShape(4), G.WithName("b4"))
	if _, err := layers.UpsampleConv2D(x, w5, b); err == nil {
		t.Error("5×5 kernel: no error")
	}
	if _, err := layers.UpsampleConv2D(x, w, b4); err == nil {
		t.Error("bias of the wrong size: no error")
	}
	y, err := layers.UpsampleConv2D(x, w, b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := G.Sum(y)
	if err != nil {
		t.Fatal(err)
	}
	gr, err := layers.Grad(s, x)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := G.Sum(gr[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layers.Grad(s2, w); err == nil {
		t.Error("second derivative: no error")
	}
}
