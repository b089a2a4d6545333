package layerstest_test

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers/layerstest"
)

func record(t *testing.T, f func(tb testing.TB)) []string { return layerstest.Failures(t, f) }

func randVals(seed uint64, n int) []float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	v := make([]float64, n)
	for i := range v {
		v[i] = 2*rng.Float64() - 1
	}
	return v
}

// powOp is c·xᵖ elementwise; its derivative is powOp{c·p, p−1}, except that the derivative built at
// nesting level `bad` is scaled by badFactor: a controllable wrong gradient (level 0) or a right gradient
// with a wrong Hessian (level 1).
type powOp struct {
	c         float64
	p, bad    int
	badFactor float64
}

func (op powOp) Arity() int { return 1 }
func (op powOp) Type() hm.Type {
	a := G.TensorType{Dims: 1, Of: hm.TypeVariable('a')}
	return hm.NewFnType(a, a)
}
func (op powOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return ds[0].(tensor.Shape).Clone(), nil
}
func (op powOp) Do(v ...G.Value) (G.Value, error) {
	x := v[0].Data().([]float64)
	out := make([]float64, len(x))
	for i, xi := range x {
		out[i] = op.c * math.Pow(xi, float64(op.p))
	}
	return tensor.New(tensor.WithShape(len(out)), tensor.WithBacking(out)), nil
}
func (op powOp) ReturnsPtr() bool      { return true }
func (op powOp) CallsExtern() bool     { return false }
func (op powOp) OverwritesInput() int  { return -1 }
func (op powOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "pow%v", op) }
func (op powOp) Hashcode() uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}
func (op powOp) String() string     { return fmt.Sprintf("%g·x^%d", op.c, op.p) }
func (op powOp) DiffWRT(int) []bool { return []bool{true} }
func (op powOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	c := op.c * float64(op.p)
	if op.bad == 0 {
		c *= op.badFactor
	}
	d, err := G.ApplyOp(powOp{c: c, p: op.p - 1, bad: op.bad - 1, badFactor: op.badFactor}, in[0])
	if err != nil {
		return nil, err
	}
	gx, err := G.HadamardProd(grad, d)
	return G.Nodes{gx}, err
}

func powLoss(op powOp) func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
	return func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := G.ApplyOp(op, in[0])
		if err != nil {
			return nil, err
		}
		return G.Sum(y)
	}
}

func TestGradCheckPasses(t *testing.T) {
	shapes := [][]int{{3, 4}}
	vals := [][]float64{randVals(1, 12)}
	good := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := G.Tanh(in[0])
		if err != nil {
			return nil, err
		}
		if y, err = G.HadamardProd(y, y); err != nil {
			return nil, err
		}
		return G.Sum(y)
	}
	layerstest.GradCheck(t, shapes, vals, good, 1e-6)
	layerstest.SecondOrderCheck(t, shapes, vals, [][]float64{randVals(2, 12)}, good, 1e-6)
	layerstest.SecondOrderCheck(t, [][]int{{5}}, [][]float64{randVals(3, 5)}, [][]float64{randVals(4, 5)},
		powLoss(powOp{c: 1, p: 3, bad: -1}), 1e-6)
}

func TestGradCheckCatchesWrongGradient(t *testing.T) {
	errs := record(t, func(tb testing.TB) {
		layerstest.GradCheck(tb, [][]int{{5}}, [][]float64{randVals(3, 5)}, powLoss(powOp{c: 1, p: 2, bad: 0, badFactor: 0.999}), 1e-6)
	})
	if len(errs) == 0 {
		t.Fatal("a gradient 0.1 % off passed")
	}
	if !strings.Contains(errs[0], "finite difference") {
		t.Errorf("unexpected report %q", errs[0])
	}
}

func TestSecondOrderCheckCatchesWrongHessian(t *testing.T) {
	op := powOp{c: 1, p: 3, bad: 1, badFactor: 1.001}
	vals := [][]float64{randVals(3, 5)}
	// First order is right...
	layerstest.GradCheck(t, [][]int{{5}}, vals, powLoss(op), 1e-6)
	// ...second order is 0.1 % off and must be caught.
	errs := record(t, func(tb testing.TB) {
		layerstest.SecondOrderCheck(tb, [][]int{{5}}, vals, [][]float64{randVals(4, 5)}, powLoss(op), 1e-6)
	})
	if len(errs) == 0 {
		t.Fatal("a Hessian 0.1 % off passed")
	}
}

func TestGradCheckCatchesReshapeAliasing(t *testing.T) {
	// Gorgonia pitfall 1 (layers package doc): G.Reshape aliases its input and an in-place op downstream corrupts it.
	// If this test starts failing, Gorgonia's Reshape no longer corrupts this graph: update the pitfall list in the layers package doc.
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		r, err := G.Reshape(in[0], tensor.Shape{6, 2})
		if err != nil {
			return nil, err
		}
		e, err := G.Exp(r)
		if err != nil {
			return nil, err
		}
		s, err := G.Add(r, e)
		if err != nil {
			return nil, err
		}
		sq, err := G.Square(in[0])
		if err != nil {
			return nil, err
		}
		a, err := G.Sum(s)
		if err != nil {
			return nil, err
		}
		b, err := G.Sum(sq)
		if err != nil {
			return nil, err
		}
		return G.Add(a, b)
	}
	errs := record(t, func(tb testing.TB) {
		layerstest.GradCheck(tb, [][]int{{3, 4}}, [][]float64{randVals(5, 12)}, build, 1e-6)
	})
	if len(errs) == 0 {
		t.Skip("G.Reshape + in-place Add did not corrupt this graph (aliasing is graph-dependent)")
	}
	t.Logf("caught: %s", errs[0])
}

func TestGradCheckValidatesArguments(t *testing.T) {
	errs := record(t, func(tb testing.TB) {
		layerstest.GradCheck(tb, [][]int{{2, 2}}, [][]float64{{1, 2, 3}}, nil, 1e-6)
	})
	if len(errs) != 1 || !strings.Contains(errs[0], "needs 4 values, got 3") {
		t.Errorf("got %q", errs)
	}
}
