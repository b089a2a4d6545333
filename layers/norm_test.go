package layers_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/layerstest"
)

// groupNormRef is the textbook formula, written out per sample and group with two-pass statistics.
func groupNormRef(x []float64, shape []int, groups int, eps float64, scale, bias []float64) []float64 {
	b, c := shape[0], shape[1]
	hw := size(shape[2:])
	cg := c / groups
	y := make([]float64, len(x))
	for s := 0; s < b; s++ {
		for g := 0; g < groups; g++ {
			var mean, v float64
			for ch := g * cg; ch < (g+1)*cg; ch++ {
				for k := 0; k < hw; k++ {
					mean += x[(s*c+ch)*hw+k]
				}
			}
			n := float64(cg * hw)
			mean /= n
			for ch := g * cg; ch < (g+1)*cg; ch++ {
				for k := 0; k < hw; k++ {
					d := x[(s*c+ch)*hw+k] - mean
					v += d * d
				}
			}
			v /= n
			for ch := g * cg; ch < (g+1)*cg; ch++ {
				for k := 0; k < hw; k++ {
					i := (s*c+ch)*hw + k
					y[i] = scale[ch]*(x[i]-mean)/math.Sqrt(v+eps) + bias[ch]
				}
			}
		}
	}
	return y
}

func TestGroupNormForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		shape  []int
		groups int
	}{
		{[]int{3, 4, 3, 2}, 2},
		{[]int{2, 6, 2, 2}, 3},
		{[]int{2, 4, 2, 3}, 1}, // LayerNorm
		{[]int{2, 4, 2, 2}, 4}, // InstanceNorm
		{[]int{3, 6}, 2},       // (B, C)
	} {
		c := tc.shape[1]
		x := randVals(rng, size(tc.shape), -3, 5) // an offset mean, so centring matters
		scale := randVals(rng, c, 0.5, 2)
		bias := randVals(rng, c, -1, 1)
		want := groupNormRef(x, tc.shape, tc.groups, 1e-5, scale, bias)
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			got := evalNodes(t, dt, [][]int{tc.shape, {c}, {c}}, [][]float64{x, scale, bias}, func(in []*G.Node) (*G.Node, error) {
				return layers.GroupNormalize(in[0], tc.groups, 0, in[1], in[2])
			})
			// float64: a few roundings in sums of ≤ 24 terms, ≤ 1e-13 relative. float32: inputs, sums and
			// the inverse square root each rounded to 2⁻²⁴ ≈ 6e-8, times O(10) conditioning of the
			// centred values (|x| ≤ 5 over a spread ≈ 2): 1e-5.
			tol := 1e-12
			if dt == tensor.Float32 {
				tol = 1e-5
			}
			compareVals(t, got, want, tol)
		}
	}
}

func TestGroupNormGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		shape  []int
		groups int
	}{
		{[]int{2, 4, 2, 3}, 2},
		{[]int{3, 4}, 2},
	} {
		c := tc.shape[1]
		vals := [][]float64{randVals(rng, size(tc.shape), -2, 2), randVals(rng, c, 0.5, 2), randVals(rng, c, -1, 1)}
		shapes := [][]int{tc.shape, {c}, {c}}
		build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
			// A large ε would hide a missing variance term; 0.01 keeps it visible (σ² ≈ 1.3) and the
			// second derivatives moderate.
			y, err := layers.GroupNormalize(in[0], tc.groups, 0.01, in[1], in[2])
			if err != nil {
				return nil, err
			}
			return aliasLoss(g, in[0], y, 21)
		}
		layerstest.GradCheck(t, shapes, vals, build, gradTol)
		v := [][]float64{randVals(rng, len(vals[0]), -1, 1), randVals(rng, c, -1, 1), randVals(rng, c, -1, 1)}
		layerstest.SecondOrderCheck(t, shapes, vals, v, build, gradTol)
	}
}

func TestGroupNormLayer(t *testing.T) {
	// At initialisation (scale 1, bias 0) the layer is the bare normalisation: every group has mean 0
	// and variance σ²/(σ²+ε) (checked against the reference with unit scale and zero bias).
	shape := []int{2, 4, 3, 3}
	rng := rand.New(rand.NewPCG(5, 6))
	x := randVals(rng, size(shape), -1, 3)
	store := layers.NewStore(tensor.Float64, 1)
	got := evalNodes(t, tensor.Float64, [][]int{shape}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) {
		s := layers.NewScope(in[0].Graph(), store)
		return layers.GroupNorm{Groups: 2}.Apply(s.Sub("gn"), in[0])
	})
	want := groupNormRef(x, shape, 2, layers.DefaultGroupNormEps, []float64{1, 1, 1, 1}, []float64{0, 0, 0, 0})
	compareVals(t, got, want, 1e-12) // float64 roundings only, see TestGroupNormForward
	if sc, ok := store.Get("gn/scale"); !ok || sc.Shape()[0] != 4 {
		t.Fatalf("gn/scale missing or of the wrong shape")
	}
	if _, ok := store.Get("gn/bias"); !ok {
		t.Fatalf("gn/bias missing")
	}
}

func TestGroupNormErrors(t *testing.T) {
	g := G.NewGraph()
	x4 := G.NewTensor(g, tensor.Float64, 4, G.WithShape(2, 6, 2, 2), G.WithName("x4"))
	x2 := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 3), G.WithName("x2"))
	x3 := G.NewTensor(g, tensor.Float64, 3, G.WithShape(2, 3, 4), G.WithName("x3"))
	bad := G.NewTensor(g, tensor.Float64, 1, G.WithShape(5), G.WithName("bad"))
	for _, tc := range []struct {
		name string
		f    func() (*G.Node, error)
		want string
	}{
		{"groups", func() (*G.Node, error) { return layers.GroupNormalize(x4, 4, 0, nil, nil) }, "4 groups do not divide 6"},
		{"zero groups", func() (*G.Node, error) { return layers.GroupNormalize(x4, 0, 0, nil, nil) }, "0 groups"},
		{"rank", func() (*G.Node, error) { return layers.GroupNormalize(x3, 1, 0, nil, nil) }, "want (B, C) or (B, C, H, W)"},
		{"singleton", func() (*G.Node, error) { return layers.GroupNormalize(x2, 3, 0, nil, nil) }, "holds 1 value"},
		{"eps", func() (*G.Node, error) { return layers.GroupNormalize(x4, 2, -1, nil, nil) }, "eps -1"},
		{"scale", func() (*G.Node, error) { return layers.GroupNormalize(x4, 2, 0, bad, nil) }, "scale has shape (5)"},
	} {
		_, err := tc.f()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestGorgoniaInverseSqrtGradBroken(t *testing.T) {
	// G.InverseSqrt's gradient is built as −g/(2y³) where d(x^−½)/dx = −y³/2 needs −g·y³/2: wrong by a
	// factor y⁶. GroupNormalize uses Inverse(Sqrt(·)) instead, checked here to first and second order.
	rng := rand.New(rand.NewPCG(3, 4))
	x := randVals(rng, 6, 0.5, 2)
	v := randVals(rng, 6, -1, 1)
	invSqrt := probe(func(g *G.ExprGraph, x *G.Node) (*G.Node, error) { return G.InverseSqrt(x) })
	if len(layerstest.Failures(t, func(tb testing.TB) {
		layerstest.GradCheck(tb, [][]int{{6}}, [][]float64{x}, invSqrt, gradTol)
	})) == 0 {
		t.Error("G.InverseSqrt's gradient is right now: GroupNormalize could use it")
	}
	both := probe(func(g *G.ExprGraph, x *G.Node) (*G.Node, error) {
		s, err := G.Sqrt(x)
		if err != nil {
			return nil, err
		}
		return G.Inverse(s)
	})
	layerstest.GradCheck(t, [][]int{{6}}, [][]float64{x}, both, gradTol)
	layerstest.SecondOrderCheck(t, [][]int{{6}}, [][]float64{x}, [][]float64{v}, both, gradTol)
}

func TestSumAxisLast(t *testing.T) {
	// The last-axis fast paths of SumAxis and of its gradient (the expand), which GroupNorm relies on.
	in := []int{3, 2, 5}
	checkUnary(t, unaryCase{
		name: "SumAxisLast", shape: in,
		op: func(x *G.Node) (*G.Node, error) { return layers.SumAxis(x, 2) },
		ref: func(x []float64) []float64 {
			y := make([]float64, 6)
			for k, v := range x {
				y[k/5] += v
			}
			return y
		},
	}, true)
}
