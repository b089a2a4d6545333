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

// gradTol is the relative tolerance of the float64 finite-difference checks; layerstest.Step explains why
// 1e-6 leaves three orders of margin over the central-difference error for these O(1)–O(10) losses.
const gradTol = 1e-6

func randVals(rng *rand.Rand, n int, lo, hi float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float64()
	}
	return v
}

func size(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}

// weights returns a named input node of random values, of y's shape and dtype.
func weights(g *G.ExprGraph, y *G.Node, name string, seed uint64) *G.Node {
	rng := rand.New(rand.NewPCG(seed, 99))
	vals := randVals(rng, size(y.Shape()), -1, 1)
	t := tensor.New(tensor.WithShape(y.Shape()...), tensor.Of(y.Dtype()))
	layers.SetData(t, vals)
	return G.NewTensor(g, y.Dtype(), y.Dims(), G.WithShape(y.Shape()...), G.WithName(name), G.WithValue(t))
}

// wsum is Σ w⊙y for a random w.
func wsum(g *G.ExprGraph, y *G.Node, name string, seed uint64) (*G.Node, error) {
	p, err := G.HadamardProd(y, weights(g, y, name, seed))
	if err != nil {
		return nil, err
	}
	return G.Sum(p)
}

// aliasLoss is the realistic downstream used by every first-order check:
//
//	loss = Σ w₁⊙tanh(y + u) + Σ w₂⊙x²
//
// where u is a random tensor. G.Add is prone to work in place: if y aliased x, the addition would overwrite
// x, and both the x² term and the backward pass would see the corrupted values. tanh makes the loss
// nonlinear so second-order checks have something to check.
func aliasLoss(g *G.ExprGraph, x, y *G.Node, seed uint64) (*G.Node, error) {
	u := weights(g, y, "u", seed+1)
	z, err := G.Add(y, u)
	if err != nil {
		return nil, err
	}
	if z, err = G.Tanh(z); err != nil {
		return nil, err
	}
	a, err := wsum(g, z, "w1", seed+2)
	if err != nil {
		return nil, err
	}
	x2, err := G.Square(x)
	if err != nil {
		return nil, err
	}
	b, err := wsum(g, x2, "w2", seed+3)
	if err != nil {
		return nil, err
	}
	return G.Add(a, b)
}

// unaryCase is an op applied to one input.
type unaryCase struct {
	name  string
	shape []int
	op    func(x *G.Node) (*G.Node, error)
	ref   func(x []float64) []float64 // host reference of the forward
}

// checkUnary runs the first-order FD check, the float64 and float32 forward checks, and (when second is
// set) the second-order check of one op.
func checkUnary(t *testing.T, c unaryCase, second bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, uint64(len(c.name))))
	x := randVals(rng, size(c.shape), -2, 2)
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		y, err := c.op(in[0])
		if err != nil {
			return nil, err
		}
		return aliasLoss(g, in[0], y, 11)
	}
	t.Run("grad", func(t *testing.T) {
		layerstest.GradCheck(t, [][]int{c.shape}, [][]float64{x}, build, gradTol)
	})
	if c.ref != nil {
		want := c.ref(x)
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run("forward-"+dt.String(), func(t *testing.T) {
				got := evalUnary(t, dt, c.shape, x, c.op)
				// float64: exact index ops, ≤ a few ulp for the transcendental ones. float32: one rounding
				// of inputs and output, 2⁻²³ ≈ 1.2e-7 relative each, times the O(10) conditioning of the
				// sums in LogSumExp: 1e-5.
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				compareVals(t, got, want, tol)
			})
		}
	}
	if second {
		t.Run("second", func(t *testing.T) {
			v := randVals(rng, len(x), -1, 1)
			layerstest.SecondOrderCheck(t, [][]int{c.shape}, [][]float64{x}, [][]float64{v}, build, gradTol)
		})
	}
}

// evalUnary computes op(x) in a graph of dtype dt and returns it as float64.
func evalUnary(t *testing.T, dt tensor.Dtype, shape []int, x []float64, op func(*G.Node) (*G.Node, error)) []float64 {
	t.Helper()
	out := evalNodes(t, dt, [][]int{shape}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) { return op(in[0]) })
	return out
}

// evalNodes builds f(inputs) in a graph of dtype dt, runs it and returns the output values.
func evalNodes(t testing.TB, dt tensor.Dtype, shapes [][]int, vals [][]float64, f func(in []*G.Node) (*G.Node, error)) []float64 {
	t.Helper()
	g := G.NewGraph()
	var in []*G.Node
	for i, s := range shapes {
		tt := layers.NewDense(dt, s, vals[i])
		in = append(in, G.NewTensor(g, dt, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("x%d", i)), G.WithValue(tt)))
	}
	y, err := f(in)
	if err != nil {
		t.Fatal(err)
	}
	if y.Dtype() != dt {
		t.Fatalf("output dtype %v, want %v", y.Dtype(), dt)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return layers.Float64s(y.Value().(tensor.Tensor))
}

func compareVals(t testing.TB, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > tol*math.Max(1, math.Abs(want[i])) || math.IsNaN(got[i]) {
			t.Fatalf("element %d: got %.9g, want %.9g", i, got[i], want[i])
		}
	}
}

// unravel / ravel for row-major shapes.
func unravel(k int, s []int) []int {
	c := make([]int, len(s))
	for i := len(s) - 1; i >= 0; i-- {
		c[i] = k % s[i]
		k /= s[i]
	}
	return c
}

func ravel(c, s []int) int {
	k := 0
	for i := range s {
		k = k*s[i] + c[i]
	}
	return k
}

// axisRef is the host reference of out[..., i, ...] = x[..., a(i), ...] (0 where a(i) < 0).
func axisRef(in []int, axis, m int, a func(i int) int) func(x []float64) []float64 {
	return func(x []float64) []float64 {
		out := append([]int(nil), in...)
		out[axis] = m
		y := make([]float64, size(out))
		for j := range y {
			c := unravel(j, out)
			k := a(c[axis])
			if k < 0 {
				continue
			}
			c[axis] = k
			y[j] = x[ravel(c, in)]
		}
		return y
	}
}

func mod(a, n int) int { return ((a % n) + n) % n }

func TestReshape(t *testing.T) {
	checkUnary(t, unaryCase{
		name: "Reshape", shape: []int{2, 3, 4},
		op:  func(x *G.Node) (*G.Node, error) { return layers.Reshape(x, 6, 4) },
		ref: func(x []float64) []float64 { return append([]float64(nil), x...) },
	}, true)
}

func TestRoll(t *testing.T) {
	in := []int{3, 4, 5}
	for _, c := range []struct{ axis, shift int }{{0, 1}, {1, -5}, {2, 7}, {2, 0}, {1, 2}} {
		t.Run(fmt.Sprintf("axis%d_shift%d", c.axis, c.shift), func(t *testing.T) {
			n := in[c.axis]
			checkUnary(t, unaryCase{
				name: "Roll", shape: in,
				op:  func(x *G.Node) (*G.Node, error) { return layers.Roll(x, c.axis, c.shift) },
				ref: axisRef(in, c.axis, n, func(i int) int { return mod(i-c.shift, n) }),
			}, true)
		})
	}
}

func TestRollLongRuns(t *testing.T) {
	// A long last axis switches the kernels to run-copy mode; check it against the reference too.
	in := []int{2, 3, 40}
	checkUnary(t, unaryCase{
		name: "RollRuns", shape: in,
		op:  func(x *G.Node) (*G.Node, error) { return layers.Roll(x, 1, 1) },
		ref: axisRef(in, 1, 3, func(i int) int { return mod(i-1, 3) }),
	}, true)
}

func TestNarrow(t *testing.T) {
	in := []int{3, 4, 5}
	for _, c := range []struct{ axis, start, length int }{{0, 1, 1}, {1, 1, 2}, {2, 0, 5}, {2, 4, 1}} {
		t.Run(fmt.Sprintf("axis%d_%d_%d", c.axis, c.start, c.length), func(t *testing.T) {
			checkUnary(t, unaryCase{
				name: "Narrow", shape: in,
				op: func(x *G.Node) (*G.Node, error) {
					y, err := layers.Narrow(x, c.axis, c.start, c.length)
					if err == nil && y.Dims() != 3 {
						return nil, fmt.Errorf("Narrow dropped a dimension: %v", y.Shape())
					}
					return y, err
				},
				ref: axisRef(in, c.axis, c.length, func(i int) int { return c.start + i }),
			}, c.axis == 1)
		})
	}
}

func TestPad(t *testing.T) {
	in := []int{2, 4, 3}
	for _, c := range []struct {
		axis, before, after int
		periodic            bool
	}{{2, 2, 1, false}, {0, 0, 3, false}, {1, 1, 1, true}, {1, 5, 6, true}, {2, 2, 0, true}} {
		t.Run(fmt.Sprintf("axis%d_%d_%d_%v", c.axis, c.before, c.after, c.periodic), func(t *testing.T) {
			n := in[c.axis]
			ref := axisRef(in, c.axis, n+c.before+c.after, func(i int) int {
				k := i - c.before
				if c.periodic {
					return mod(k, n)
				}
				if k < 0 || k >= n {
					return -1
				}
				return k
			})
			op := func(x *G.Node) (*G.Node, error) { return layers.Pad(x, c.axis, c.before, c.after) }
			if c.periodic {
				op = func(x *G.Node) (*G.Node, error) { return layers.PadPeriodic(x, c.axis, c.before, c.after) }
			}
			checkUnary(t, unaryCase{name: "Pad", shape: in, op: op, ref: ref}, c.periodic && c.before == 5)
		})
	}
}

func TestLogSumExp(t *testing.T) {
	lseRef := func(in []int, axis int) func(x []float64) []float64 {
		return func(x []float64) []float64 {
			out := append(append([]int(nil), in[:axis]...), in[axis+1:]...)
			y := make([]float64, size(out))
			for j := range y {
				c := unravel(j, out)
				full := append(append(append([]int(nil), c[:axis]...), 0), c[axis:]...)
				s := 0.0
				for i := 0; i < in[axis]; i++ {
					full[axis] = i
					s += math.Exp(x[ravel(full, in)])
				}
				y[j] = math.Log(s)
			}
			return y
		}
	}
	for _, c := range []struct {
		in   []int
		axis int
	}{{[]int{3, 4, 5}, 0}, {[]int{3, 4, 5}, 1}, {[]int{3, 4, 5}, 2}, {[]int{6, 4}, 1}} {
		t.Run(fmt.Sprintf("%v_axis%d", c.in, c.axis), func(t *testing.T) {
			checkUnary(t, unaryCase{
				name: "LogSumExp", shape: c.in,
				op:  func(x *G.Node) (*G.Node, error) { return layers.LogSumExp(x, c.axis) },
				ref: lseRef(c.in, c.axis),
			}, c.axis == 1)
		})
	}
	t.Run("vector", func(t *testing.T) {
		// 1-D input: the result is a scalar.
		rng := rand.New(rand.NewPCG(3, 3))
		x := randVals(rng, 7, -2, 2)
		layerstest.GradCheck(t, [][]int{{7}}, [][]float64{x}, func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
			y, err := layers.LogSumExp(in[0], 0)
			if err != nil {
				return nil, err
			}
			return G.Mul(y, y)
		}, gradTol)
	})
}

func TestLogSumExpExtremes(t *testing.T) {
	// Stability: huge entries, and rows that are all −∞.
	inf := math.Inf(1)
	x := []float64{1000, 1000, -inf, -inf, 0, -1e4}
	got := evalUnary(t, tensor.Float64, []int{3, 2}, x, func(x *G.Node) (*G.Node, error) { return layers.LogSumExp(x, 1) })
	want := []float64{1000 + math.Ln2, -inf, 0}
	for i := range want {
		if got[i] != want[i] && math.Abs(got[i]-want[i]) > 1e-12*math.Abs(want[i]) {
			t.Errorf("row %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestSumAxis(t *testing.T) {
	in := []int{3, 4, 5}
	checkUnary(t, unaryCase{
		name: "SumAxis", shape: in,
		op: func(x *G.Node) (*G.Node, error) { return layers.SumAxis(x, 1) },
		ref: func(x []float64) []float64 {
			y := make([]float64, 15)
			for k, v := range x {
				c := unravel(k, in)
				y[c[0]*5+c[2]] += v
			}
			return y
		},
	}, true)
}

func TestActivations(t *testing.T) {
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	elementwise := func(f func(float64) float64) func([]float64) []float64 {
		return func(x []float64) []float64 {
			y := make([]float64, len(x))
			for i, v := range x {
				y[i] = f(v)
			}
			return y
		}
	}
	checkUnary(t, unaryCase{
		name: "ELU", shape: []int{4, 5}, op: layers.ELU,
		ref: elementwise(func(v float64) float64 {
			if v > 0 {
				return v
			}
			return math.Exp(v) - 1
		}),
	}, true)
	checkUnary(t, unaryCase{
		name: "Swish", shape: []int{4, 5}, op: layers.Swish,
		ref: elementwise(func(v float64) float64 { return v * sig(v) }),
	}, true)
}

func TestActivationsThirdOrderGraph(t *testing.T) {
	// Swish'' is built from Gorgonia ops and ELU'' is its own derivative: a third G.Grad must build.
	for _, f := range []func(*G.Node) (*G.Node, error){layers.ELU, layers.Swish} {
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float64, 1, G.WithShape(3), G.WithName("x"), G.WithValue(tensor.New(tensor.WithBacking([]float64{-1, 0.5, 2}))))
		y, err := f(x)
		if err != nil {
			t.Fatal(err)
		}
		cost, _ := G.Sum(y)
		for order := 1; order <= 3; order++ {
			gr, err := layers.Grad(cost, x)
			if err != nil {
				t.Fatalf("order %d: %v", order, err)
			}
			if cost, err = G.Sum(gr[0]); err != nil {
				t.Fatal(err)
			}
		}
		m := layers.MustNewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		m.Close()
	}
}

// blockIndex lists, for a (B,C,L,L) field, the flat indices of every k×k block as rows of a
// (B·blocks, C·k·k) matrix: row b·nb + blk, column c·k² + di·k + dj.
func blockIndex(B, C, L, k int) []int {
	nb := (L / k) * (L / k)
	idx := make([]int, 0, B*C*L*L)
	for b := 0; b < B; b++ {
		for blk := 0; blk < nb; blk++ {
			bi, bj := blk/(L/k), blk%(L/k)
			for c := 0; c < C; c++ {
				for di := 0; di < k; di++ {
					for dj := 0; dj < k; dj++ {
						idx = append(idx, ((b*C+c)*L+bi*k+di)*L+bj*k+dj)
					}
				}
			}
		}
	}
	return idx
}

func gatherRef(idx []int) func(x []float64) []float64 {
	return func(x []float64) []float64 {
		y := make([]float64, len(idx))
		for j, k := range idx {
			y[j] = x[k]
		}
		return y
	}
}

func TestGather(t *testing.T) {
	in := []int{3, 2, 4, 4}
	idx := blockIndex(3, 2, 4, 2) // permutation, batch-periodic (compact table)
	checkUnary(t, unaryCase{
		name: "GatherBlocks", shape: in,
		op:  func(x *G.Node) (*G.Node, error) { return layers.Gather(x, idx, 3*4, 2*4) },
		ref: gatherRef(idx),
	}, true)
	// An irregular subset with repeats (full table; the gradient accumulates).
	rng := rand.New(rand.NewPCG(5, 5))
	sub := make([]int, 30)
	for i := range sub {
		sub[i] = rng.IntN(size(in))
	}
	sub[1] = sub[0]
	checkUnary(t, unaryCase{
		name: "GatherRepeats", shape: in,
		op:  func(x *G.Node) (*G.Node, error) { return layers.Gather(x, sub, 5, 6) },
		ref: gatherRef(sub),
	}, true)
	// A batch-periodic subset with a repeat inside each batch entry (compact table, not injective).
	var per []int
	for b := 0; b < 3; b++ {
		for _, k := range []int{3, 3, 0, 31, 17} {
			per = append(per, b*32+k)
		}
	}
	checkUnary(t, unaryCase{
		name: "GatherPeriodicRepeats", shape: in,
		op:  func(x *G.Node) (*G.Node, error) { return layers.Gather(x, per, 3, 5) },
		ref: gatherRef(per),
	}, false)
}

func TestScatterReplace(t *testing.T) {
	xs := []int{3, 1, 4, 4}
	// Replace the 2×2 blocks at even block positions: 2 blocks per sample → y (6, 4).
	all := blockIndex(3, 1, 4, 2)
	var idx []int
	for row := 0; row < 12; row++ {
		if row%4 == 0 || row%4 == 3 {
			idx = append(idx, all[row*4:row*4+4]...)
		}
	}
	ys := []int{6, 4}
	for _, c := range []struct {
		name string
		idx  []int
		ys   []int
	}{{"blocks", idx, ys}, {"all", all, []int{12, 4}}, {"irregular", []int{47, 0, 5, 6, 20}, []int{5}}} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 9))
			x := randVals(rng, size(xs), -2, 2)
			y := randVals(rng, size(c.ys), -2, 2)
			build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
				out, err := layers.ScatterReplace(in[0], in[1], c.idx)
				if err != nil {
					return nil, err
				}
				// y is also used after the scatter, to catch aliasing of the second input.
				l, err := aliasLoss(g, in[0], out, 21)
				if err != nil {
					return nil, err
				}
				y2, err := G.Square(in[1])
				if err != nil {
					return nil, err
				}
				l2, err := wsum(g, y2, "wy", 31)
				if err != nil {
					return nil, err
				}
				return G.Add(l, l2)
			}
			shapes := [][]int{xs, c.ys}
			layerstest.GradCheck(t, shapes, [][]float64{x, y}, build, gradTol)
			v := [][]float64{randVals(rng, len(x), -1, 1), randVals(rng, len(y), -1, 1)}
			layerstest.SecondOrderCheck(t, shapes, [][]float64{x, y}, v, build, gradTol)

			want := append([]float64(nil), x...)
			for j, k := range c.idx {
				want[k] = y[j]
			}
			for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
				got := evalNodes(t, dt, shapes, [][]float64{x, y}, func(in []*G.Node) (*G.Node, error) {
					return layers.ScatterReplace(in[0], in[1], c.idx)
				})
				tol := 0.0
				if dt == tensor.Float32 {
					tol = 1e-7 // one float32 rounding of each input
				}
				compareVals(t, got, want, tol)
			}
		})
	}
}

func TestGatherScatterRoundTrip(t *testing.T) {
	// The block layer's pattern: gather every block, transform, scatter back = identity for the identity map.
	xs := []int{2, 2, 4, 4}
	idx := blockIndex(2, 2, 4, 2)
	rng := rand.New(rand.NewPCG(1, 2))
	x := randVals(rng, size(xs), -1, 1)
	got := evalNodes(t, tensor.Float32, [][]int{xs}, [][]float64{x}, func(in []*G.Node) (*G.Node, error) {
		rows, err := layers.Gather(in[0], idx, 8, 8)
		if err != nil {
			return nil, err
		}
		return layers.ScatterReplace(in[0], rows, idx)
	})
	compareVals(t, got, x, 1e-7)
}

func TestGradClearsDerivs(t *testing.T) {
	// Pins Gorgonia pitfall 2 (package doc) and the fix: for loss = Σ x³, ∇loss = 3x², and the gradient of
	// Σ ∇loss is 6x. A second plain G.Grad returns a wrong value silently; layers.Grad returns 6x.
	for _, fixed := range []bool{false, true} {
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float64, 1, G.WithShape(3), G.WithName("x"), G.WithValue(tensor.New(tensor.WithBacking([]float64{1, 2, 3}))))
		x3, _ := G.Cube(x)
		loss, _ := G.Sum(x3)
		g1, err := G.Grad(loss, x)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := G.Sum(g1[0])
		var g2 G.Nodes
		if fixed {
			g2, err = layers.Grad(s, x)
		} else {
			g2, err = G.Grad(s, x)
		}
		if err != nil {
			t.Fatal(err)
		}
		m := layers.MustNewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		got := layers.Float64s(g2[0].Value().(tensor.Tensor))
		m.Close()
		want := []float64{6, 12, 18}
		if !fixed {
			// The bug: measured [3 6 9] = 3x, neither 6x nor the first-order 3x². If this starts passing
			// with the right answer, Gorgonia changed and the package doc's pitfall list needs an update.
			if got[0] == 6 && got[1] == 12 && got[2] == 18 {
				t.Errorf("plain second G.Grad is now right (%v): update the package doc's pitfall list", got)
			}
			continue
		}
		compareVals(t, got, want, 1e-12)
	}
}

func TestForcesThroughGraph(t *testing.T) {
	// The later use case: a loss made of forces F = ∇ₓE(x; w, b) with E = Σ c⊙Swish(x·w + b), trained by
	// the gradient with respect to w, b (and x): mixed second derivatives through MatMul, RowBias, Swish,
	// Gather and Roll, with the first G.Grad inside the graph. b is one bias per row of x·w (RowBias).
	rng := rand.New(rand.NewPCG(8, 8))
	shapes := [][]int{{2, 1, 4, 4}, {4, 3}, {8}}
	vals := [][]float64{randVals(rng, 32, -1, 1), randVals(rng, 12, -1, 1), randVals(rng, 8, -1, 1)}
	idx := blockIndex(2, 1, 4, 2)
	build := func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
		r, err := layers.Roll(in[0], 3, 1)
		if err != nil {
			return nil, err
		}
		rows, err := layers.Gather(r, idx, 8, 4)
		if err != nil {
			return nil, err
		}
		h, err := layers.MatMul(rows, in[1])
		if err != nil {
			return nil, err
		}
		if h, err = layers.RowBias(h, in[2]); err != nil {
			return nil, err
		}
		if h, err = layers.Swish(h); err != nil {
			return nil, err
		}
		e, err := wsum(g, h, "c", 71)
		if err != nil {
			return nil, err
		}
		f, err := layers.Grad(e, in[0])
		if err != nil {
			return nil, err
		}
		f2, err := G.Square(f[0])
		if err != nil {
			return nil, err
		}
		return wsum(g, f2, "d", 72)
	}
	layerstest.GradCheck(t, shapes, vals, build, gradTol)
}

func TestOpErrors(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 3), G.WithName("x"))
	x32 := G.NewTensor(g, tensor.Float32, 1, G.WithShape(3), G.WithName("x32"))
	y := G.NewTensor(g, tensor.Float64, 1, G.WithShape(2), G.WithName("y"))
	xi := G.NewTensor(g, tensor.Int, 2, G.WithShape(2, 3), G.WithName("xi"))
	cases := []struct {
		name string
		f    func() (*G.Node, error)
		want string
	}{
		{"reshape size", func() (*G.Node, error) { return layers.Reshape(x, 4, 2) }, "Reshape: x has shape (2,3) (6 elements), cannot reshape to (4,2)"},
		{"roll axis", func() (*G.Node, error) { return layers.Roll(x, 4, 1) }, "Roll: axis 4 out of range for shape (2,3)"},
		{"roll neg axis", func() (*G.Node, error) { return layers.Roll(x, -1, 1) }, "Roll: axis -1 out of range"},
		{"narrow range", func() (*G.Node, error) { return layers.Narrow(x, 1, 2, 2) }, "Narrow: range [2,4) out of bounds for axis 1 of shape (2,3)"},
		{"narrow empty", func() (*G.Node, error) { return layers.Narrow(x, 1, 0, 0) }, "Narrow: range [0,0)"},
		{"pad negative", func() (*G.Node, error) { return layers.Pad(x, 0, -1, 0) }, "Pad: negative padding"},
		{"pad axis", func() (*G.Node, error) { return layers.PadPeriodic(x, 2, 1, 1) }, "PadPeriodic: axis 2 out of range"},
		{"row bias dtype", func() (*G.Node, error) { return layers.RowBias(x, x32) }, "no implicit promotion"},
		{"lse axis", func() (*G.Node, error) { return layers.LogSumExp(x, 2) }, "LogSumExp: axis 2 out of range"},
		{"gather range", func() (*G.Node, error) { return layers.Gather(x, []int{0, 6}, 2) }, "Gather: index 6 (position 1) out of range for shape (2,3)"},
		{"gather neg", func() (*G.Node, error) { return layers.Gather(x, []int{-1, 0}, 2) }, "Gather: index -1 (position 0)"},
		{"gather size", func() (*G.Node, error) { return layers.Gather(x, []int{0, 1, 2}, 2) }, "Gather: output shape (2) has 2 elements but 3 indices"},
		{"scatter repeat", func() (*G.Node, error) { return layers.ScatterReplace(x, y, []int{1, 1}) }, "ScatterReplace: index 1 repeated (position 1)"},
		{"scatter size", func() (*G.Node, error) { return layers.ScatterReplace(x, y, []int{1}) }, "ScatterReplace: y has shape (2) (2 elements) but 1 indices"},
		{"scatter range", func() (*G.Node, error) { return layers.ScatterReplace(x, y, []int{1, 9}) }, "ScatterReplace: index 9 (position 1) out of range"},
		{"int dtype", func() (*G.Node, error) { return layers.ELU(xi) }, "ELU: xi has dtype int"},
		{"sum axis", func() (*G.Node, error) { return layers.SumAxis(x, 3) }, "SumAxis: axis 3 out of range"},
	}
	for _, c := range cases {
		n, err := c.f()
		if err == nil {
			t.Errorf("%s: no error (got node %v)", c.name, n)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "layers: ") {
			t.Errorf("%s: error %q, want it to contain %q", c.name, err, c.want)
		}
	}
}

func TestDistinctOpsNotMerged(t *testing.T) {
	// Two applications differing only in a parameter must stay two nodes (WriteHash covers every parameter).
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(2, 3), G.WithName("x"))
	pairs := [][2]func() (*G.Node, error){
		{func() (*G.Node, error) { return layers.Roll(x, 1, 1) }, func() (*G.Node, error) { return layers.Roll(x, 1, 2) }},
		{func() (*G.Node, error) { return layers.Gather(x, []int{0, 1}, 2) }, func() (*G.Node, error) { return layers.Gather(x, []int{1, 0}, 2) }},
		{func() (*G.Node, error) { return layers.Pad(x, 1, 1, 0) }, func() (*G.Node, error) { return layers.PadPeriodic(x, 1, 1, 0) }},
		{func() (*G.Node, error) { return layers.Reshape(x, 3, 2) }, func() (*G.Node, error) { return layers.Reshape(x, 6) }},
		{func() (*G.Node, error) { return layers.ELU(x) }, func() (*G.Node, error) { return layers.Swish(x) }},
	}
	for i, p := range pairs {
		a, err := p[0]()
		if err != nil {
			t.Fatal(err)
		}
		b, err := p[1]()
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			t.Errorf("pair %d: merged into one node %v", i, a)
		}
	}
	// And identical applications are merged (harmless: same value).
	a, _ := layers.Roll(x, 0, 1)
	b, _ := layers.Roll(x, 0, 3) // shift 3 ≡ 1 mod 2
	if a != b {
		t.Logf("equal rolls not merged (fine, just slower)")
	}
}
