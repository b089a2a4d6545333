package layers_test

// Probes of Gorgonia v0.9.18 ops the kit sits next to (the package doc's "Gorgonia pitfalls"). Tests named ...Fine assert the op is
// right; tests named ...Broken pin a known bug and fail if it is ever fixed, so the notes can be updated.

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/layers/layerstest"
)

func TestGorgoniaSumAxisFine(t *testing.T) {
	// G.Sum over axis 1 (and 0) of a (B, N) matrix: first and second order.
	rng := rand.New(rand.NewPCG(1, 1))
	x := randVals(rng, 12, -2, 2)
	for _, axis := range []int{0, 1} {
		build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
			s, err := G.Sum(in[0], axis)
			if err != nil {
				return nil, err
			}
			return aliasLoss(g, in[0], s, 61)
		}
		layerstest.GradCheck(t, [][]int{{3, 4}}, [][]float64{x}, build, gradTol)
		layerstest.SecondOrderCheck(t, [][]int{{3, 4}}, [][]float64{x}, [][]float64{randVals(rng, 12, -1, 1)}, build, gradTol)
	}
	// (B, N, D) over the middle axis.
	x3 := randVals(rng, 24, -2, 2)
	layerstest.GradCheck(t, [][]int{{2, 3, 4}}, [][]float64{x3}, func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		s, err := G.Sum(in[0], 1)
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, in[0], s, 62)
	}, gradTol)
}

func TestGorgoniaMulFine(t *testing.T) {
	// G.Mul of two matrices, first and second order, both operands.
	rng := rand.New(rand.NewPCG(2, 2))
	shapes := [][]int{{4, 3}, {3, 5}}
	vals := [][]float64{randVals(rng, 12, -1, 1), randVals(rng, 15, -1, 1)}
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := G.Mul(in[0], in[1])
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, in[0], y, 63)
	}
	layerstest.GradCheck(t, shapes, vals, build, gradTol)
	layerstest.SecondOrderCheck(t, shapes, vals, [][]float64{randVals(rng, 12, -1, 1), randVals(rng, 15, -1, 1)}, build, gradTol)
}

func TestGorgoniaFloat32ElementwiseFine(t *testing.T) {
	// Exp, Tanh, Sigmoid, Log1p on float32 against float64 math, within float32 rounding (a few ulp,
	// 2⁻²³ ≈ 1.2e-7 relative; 1e-6 allows ~8 ulp).
	rng := rand.New(rand.NewPCG(3, 3))
	x := randVals(rng, 64, -5, 5)
	for _, c := range []struct {
		name string
		op   func(*G.Node) (*G.Node, error)
		f    func(float64) float64
	}{
		{"Exp", func(n *G.Node) (*G.Node, error) { return G.Exp(n) }, math.Exp},
		{"Tanh", func(n *G.Node) (*G.Node, error) { return G.Tanh(n) }, math.Tanh},
		{"Sigmoid", func(n *G.Node) (*G.Node, error) { return G.Sigmoid(n) }, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{"Softplus", func(n *G.Node) (*G.Node, error) { return G.Softplus(n) }, func(v float64) float64 { return math.Log1p(math.Exp(v)) }},
	} {
		// Round inputs to float32 first so only the op's own error is measured.
		want := make([]float64, len(x))
		for i, v := range x {
			want[i] = c.f(float64(float32(v)))
		}
		got := evalUnary(t, tensor.Float32, []int{64}, x, c.op)
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-6*math.Max(1, math.Abs(want[i])) {
				t.Errorf("%s float32 at %g: got %g, want %g", c.name, x[i], got[i], want[i])
				break
			}
		}
	}
}

func TestGorgoniaLogSumExpBroken(t *testing.T) {
	// G.LogSumExp on 2-D input (the package doc's "Gorgonia pitfalls"): measured here, along either axis it fails at graph
	// construction ("Failed to infer shape. Op: - false: Shape mismatch: (3, 4) and (3)"): its max is not
	// broadcast back before the subtraction. A loud failure, not a silent one; the kit's LogSumExp is the
	// replacement. Fails if Gorgonia's ever becomes right on both axes.
	rng := rand.New(rand.NewPCG(4, 4))
	x := randVals(rng, 12, -2, 2)
	right := 0
	for axis := 0; axis < 2; axis++ {
		want := evalUnary(t, tensor.Float64, []int{3, 4}, x, func(n *G.Node) (*G.Node, error) { return layers.LogSumExp(n, axis) })
		g := G.NewGraph()
		xn := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 4), G.WithName("x"), G.WithValue(layers.NewDense(tensor.Float64, []int{3, 4}, x)))
		y, err := G.LogSumExp(xn, axis)
		if err != nil {
			t.Logf("G.LogSumExp(x (3,4), %d) errors: %v", axis, err)
			continue
		}
		m := layers.MustNewTapeMachine(g)
		err = m.RunAll()
		m.Close()
		if err != nil {
			t.Logf("G.LogSumExp(x (3,4), %d) fails to run: %v", axis, err)
			continue
		}
		got := layers.Float64s(y.Value().(tensor.Tensor))
		same := len(got) == len(want)
		for i := 0; same && i < len(got); i++ {
			same = math.Abs(got[i]-want[i]) < 1e-9
		}
		if same {
			right++
		}
		t.Logf("G.LogSumExp(x (3,4), %d) = %.4f (shape %v), want %.4f", axis, got, y.Shape(), want)
	}
	if right == 2 {
		t.Errorf("G.LogSumExp is now right along both axes: update the package doc's pitfall list")
	}
}

func TestGorgoniaSliceDropsDimBroken(t *testing.T) {
	// A size-1 slice drops the dimension even with S(0, 1); Narrow keeps it.
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(3, 4), G.WithName("x"))
	s, err := G.Slice(x, G.S(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if s.Dims() == 2 {
		t.Errorf("G.Slice(x, S(0,1)) keeps the dimension now (%v): update the package doc's pitfall list", s.Shape())
	}
	n, err := layers.Narrow(x, 0, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Shape(); len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Errorf("Narrow shape %v, want (1,4)", got)
	}
}

// probe builds loss = aliasLoss(op(x)) for a (3,4) input.
func probe(op func(g *G.ExprGraph, x *G.Node) (*G.Node, error)) func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
	return func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := op(g, in[0])
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, in[0], y, 5)
	}
}

func TestGorgoniaSecondOrderFine(t *testing.T) {
	// First and second order through Transpose, Concat, BroadcastAdd (with a (4) operand broadcast along
	// axis 0) and Max along an axis, with the derivative bookkeeping cleared in between.
	rng := rand.New(rand.NewPCG(1, 9))
	x := randVals(rng, 12, -2, 2)
	v := randVals(rng, 12, -1, 1)
	for name, op := range map[string]func(g *G.ExprGraph, x *G.Node) (*G.Node, error){
		"Transpose": func(g *G.ExprGraph, x *G.Node) (*G.Node, error) { return G.Transpose(x, 1, 0) },
		"Concat":    func(g *G.ExprGraph, x *G.Node) (*G.Node, error) { return G.Concat(1, x, x) },
		"BroadcastAdd": func(g *G.ExprGraph, x *G.Node) (*G.Node, error) {
			s, err := G.Sum(x, 0) // (4), depends on x: the broadcast operand is differentiated too
			if err != nil {
				return nil, err
			}
			return G.BroadcastAdd(x, s, nil, []byte{0})
		},
		"Max": func(g *G.ExprGraph, x *G.Node) (*G.Node, error) { return G.Max(x, 1) },
	} {
		t.Run(name, func(t *testing.T) {
			layerstest.GradCheck(t, [][]int{{3, 4}}, [][]float64{x}, probe(op), gradTol)
			layerstest.SecondOrderCheck(t, [][]int{{3, 4}}, [][]float64{x}, [][]float64{v}, probe(op), gradTol)
		})
	}
}

func TestGorgoniaSliceSecondOrderBroken(t *testing.T) {
	// G.Slice (a plain range, no step): first order right, second order wrong by O(1) (the package doc's "Gorgonia pitfalls").
	// Narrow is the replacement.
	rng := rand.New(rand.NewPCG(1, 9))
	x := randVals(rng, 12, -2, 2)
	v := randVals(rng, 12, -1, 1)
	slice := probe(func(g *G.ExprGraph, x *G.Node) (*G.Node, error) { return G.Slice(x, nil, G.S(1, 3)) })
	layerstest.GradCheck(t, [][]int{{3, 4}}, [][]float64{x}, slice, gradTol)
	if len(layerstest.Failures(t, func(tb testing.TB) {
		layerstest.SecondOrderCheck(tb, [][]int{{3, 4}}, [][]float64{x}, [][]float64{v}, slice, gradTol)
	})) == 0 {
		t.Error("G.Slice second order is right now: update the package doc's pitfall list")
	}
	narrow := probe(func(g *G.ExprGraph, x *G.Node) (*G.Node, error) { return layers.Narrow(x, 1, 1, 2) })
	layerstest.SecondOrderCheck(t, [][]int{{3, 4}}, [][]float64{x}, [][]float64{v}, narrow, gradTol)
}

func TestGorgoniaSoftMaxSecondOrderBroken(t *testing.T) {
	// G.SoftMax: first order right; the second G.Grad panics inside Gorgonia ("softmax operator only
	// supports one input, got 3 instead", from the DiffWRT of its gradient op).
	rng := rand.New(rand.NewPCG(1, 9))
	x := randVals(rng, 12, -2, 2)
	sm := probe(func(g *G.ExprGraph, x *G.Node) (*G.Node, error) { return G.SoftMax(x) })
	layerstest.GradCheck(t, [][]int{{3, 4}}, [][]float64{x}, sm, gradTol)
	panicked := func() (p any) {
		defer func() { p = recover() }()
		layerstest.Failures(t, func(tb testing.TB) {
			layerstest.SecondOrderCheck(tb, [][]int{{3, 4}}, [][]float64{x}, [][]float64{randVals(rng, 12, -1, 1)}, sm, gradTol)
		})
		return nil
	}()
	if panicked == nil {
		t.Error("G.SoftMax second order no longer panics: check it and update the package doc's pitfall list")
	}
}
