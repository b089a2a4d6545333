// Package layerstest checks Gorgonia gradients numerically. It is a normal package so that the tests of any
// package (layers itself included: it does not import layers) can use it.
//
// GradCheck compares the symbolic gradient (G.Grad + TapeMachine) of a scalar loss with central finite
// differences; SecondOrderCheck does the same one order up, for the gradient of ⟨∇loss, v⟩. Both also
// catch aliasing: the inputs are checked to be unchanged after every run, and the gradient graph is run
// twice and must give identical results. Failures runs a check against a recording testing.TB, to pin a
// known bug (the test fails when the bug goes away).
//
// # Second order in Gorgonia v0.9.18 (measured)
//
// G.Grad stores, in an unexported field (Node.deriv) of every node it differentiates, the node holding its
// derivative; a second G.Grad on the same graph reuses those nodes and silently returns a wrong result
// (for loss = Σx³ the gradient of Σ∇loss came out as 3x instead of 6x; the layers package doc, Gorgonia pitfall 2).
// What works:
//
//   - one G.Grad per graph (build the first-order graph twice if you need two losses), or
//   - clear Node.deriv on every node of the graph before each further G.Grad: layers.Grad does this, and
//     so do GradCheck and SecondOrderCheck (ClearDerivs, a copy of the ten lines, so this package needs no
//     import of layers). The earlier gradient nodes stay valid and keep their derivOf links, so the
//     TapeMachine keeps their values alive to the end of the run. Forces inside a loss (build calls
//     G.Grad, GradCheck differentiates again) are checked this way in layers' TestForcesThroughGraph.
//   - Read gradients from the nodes G.Grad returns (node.Value() after RunAll), not from x.Grad(): by the
//     TapeMachine's source, with BindDualValues it adds every derivative node of x, first and second
//     order alike, into x's dual value.
//   - A linear op has a constant gradient, and G.Grad refuses a cost that does not depend on a wrt node
//     ("Non Differentiable WRTs"): give second-order checks a nonlinear downstream (Σ w⊙tanh(op(x))).
//
// With the bookkeeping cleared, second order was FD-checked right through every op of the layers kit
// (Reshape, Roll, Narrow, Pad, PadPeriodic, Gather, ScatterReplace, MatMul, RowBias, SumAxis, LogSumExp,
// ELU, Swish) and through Gorgonia's Tanh, Square, Sigmoid, Exp, Add, Sub, HadamardProd, Sum (any axis),
// Mul (2-D), Transpose, Concat, BroadcastAdd and Max. It is wrong through G.Slice (first order right,
// second order off by O(1)), G.Reshape is wrong already at first order (it aliases its input, caught here
// as "input changed during the run"), and the second G.Grad through G.SoftMax panics inside Gorgonia.
// G.LogSumExp on a 2-D input fails at graph construction along either axis. The layers package's
// ops_gorgonia_test.go pins each of these.
package layerstest

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"rgflow/layers/tape"
)

// Step is the central-difference step h.
//
// Tolerances: the central difference (f(x+h) − f(x−h))/2h has truncation error h²·|f⁽³⁾|/6 ≈ 2·10⁻¹³ for
// O(1) derivatives and rounding error ≈ ε|f|/h ≈ 2·10⁻¹⁰·|f|; with the O(1)–O(10) losses of the tests the
// FD value is good to ~10⁻⁹, so a relative tolerance of 10⁻⁶ leaves three orders of margin while a wrong
// gradient (missing term, wrong sign, aliasing) is off by O(1).
const Step = 1e-6

// Build constructs a scalar loss from the input nodes in one graph.
type Build func(g *G.ExprGraph, in []*G.Node) (*G.Node, error)

// graph is one built graph with its inputs bound to host tensors.
type graph struct {
	g      *G.ExprGraph
	in     []*G.Node
	data   [][]float64 // backing arrays of the inputs' tensors
	master [][]float64 // the values the inputs must hold
	out    *G.Node
	grads  G.Nodes
	m      G.VM
}

func newGraph(t testing.TB, shapes [][]int, values [][]float64) *graph {
	t.Helper()
	if len(shapes) != len(values) {
		t.Fatalf("layerstest: %d shapes but %d value slices", len(shapes), len(values))
	}
	gr := &graph{g: G.NewGraph()}
	for i, s := range shapes {
		size := 1
		for _, d := range s {
			size *= d
		}
		if len(s) == 0 || size != len(values[i]) {
			t.Fatalf("layerstest: input %d: shape %v needs %d values, got %d", i, s, size, len(values[i]))
		}
		data := append([]float64(nil), values[i]...)
		tt := tensor.New(tensor.WithShape(s...), tensor.WithBacking(data))
		n := G.NewTensor(gr.g, tensor.Float64, len(s), G.WithShape(s...), G.WithName(fmt.Sprintf("in%d", i)), G.WithValue(tt))
		gr.in = append(gr.in, n)
		gr.data = append(gr.data, data)
		gr.master = append(gr.master, append([]float64(nil), values[i]...))
	}
	return gr
}

// run restores the inputs, runs the machine and checks that no input was modified.
func (gr *graph) run(t testing.TB) {
	t.Helper()
	for i := range gr.data {
		copy(gr.data[i], gr.master[i])
	}
	gr.m.Reset()
	if err := gr.m.RunAll(); err != nil {
		t.Fatalf("layerstest: run: %v", err)
	}
	for i := range gr.data {
		for k := range gr.data[i] {
			if gr.data[i][k] != gr.master[i][k] {
				t.Fatalf("layerstest: input %d element %d changed from %g to %g during the run (an op aliases or overwrites its input)",
					i, k, gr.master[i][k], gr.data[i][k])
			}
		}
	}
}

func scalarOf(t testing.TB, n *G.Node) float64 {
	t.Helper()
	v := n.Value()
	switch x := v.(type) {
	case *G.F64:
		return float64(*x)
	case tensor.Tensor:
		if x.Shape().TotalSize() == 1 {
			switch d := x.Data().(type) {
			case []float64:
				return d[0]
			case float64:
				return d
			}
		}
	}
	t.Fatalf("layerstest: loss %v is %T %v, want a float64 scalar", n, v, v)
	return 0
}

func valuesOf(t testing.TB, n *G.Node) []float64 {
	t.Helper()
	switch x := n.Value().(type) {
	case *G.F64:
		return []float64{float64(*x)}
	case tensor.Tensor:
		if x.Dtype() != tensor.Float64 {
			t.Fatalf("layerstest: %v has dtype %v, want float64", n, x.Dtype())
		}
		if d, ok := x.(*tensor.Dense); ok && d.IsView() {
			x = d.Materialize()
		}
		switch d := x.Data().(type) {
		case []float64:
			return append([]float64(nil), d...)
		case float64:
			return []float64{d}
		}
	}
	t.Fatalf("layerstest: cannot read %v (%T)", n, n.Value())
	return nil
}

// forward builds loss = build(in) alone and returns an evaluator of it at perturbed inputs.
// TraceExec makes every node keep a private copy of its value, so reading the loss after RunAll is safe.
func forward(t testing.TB, shapes [][]int, values [][]float64, build Build, extra func(gr *graph) *G.Node) *graph {
	t.Helper()
	gr := newGraph(t, shapes, values)
	loss, err := build(gr.g, gr.in)
	if err != nil {
		t.Fatalf("layerstest: build: %v", err)
	}
	if !loss.IsScalar() {
		t.Fatalf("layerstest: loss has shape %v, want a scalar", loss.Shape())
	}
	gr.out = loss
	if extra != nil {
		gr.out = extra(gr)
	}
	gr.m = tape.Must(gr.g, G.TraceExec())
	return gr
}

// fdGrad is the central-difference gradient of gr.out with respect to every input element.
func fdGrad(t testing.TB, gr *graph) [][]float64 {
	t.Helper()
	out := make([][]float64, len(gr.master))
	for i := range gr.master {
		out[i] = make([]float64, len(gr.master[i]))
		for k := range gr.master[i] {
			x0 := gr.master[i][k]
			gr.master[i][k] = x0 + Step
			gr.run(t)
			fp := scalarOf(t, gr.out)
			gr.master[i][k] = x0 - Step
			gr.run(t)
			fm := scalarOf(t, gr.out)
			gr.master[i][k] = x0
			out[i][k] = (fp - fm) / (2 * Step)
		}
	}
	return out
}

// compare reports components with |sym − fd| > tol·max(1, |sym|, |fd|).
func compare(t testing.TB, what string, sym, fd [][]float64, tol float64) {
	t.Helper()
	for i := range sym {
		if len(sym[i]) != len(fd[i]) {
			t.Errorf("layerstest: %s of input %d has %d values, want %d", what, i, len(sym[i]), len(fd[i]))
			continue
		}
		bad := 0
		worst := 0.0
		for k := range sym[i] {
			a, b := sym[i][k], fd[i][k]
			scale := math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
			e := math.Abs(a-b) / scale
			if math.IsNaN(a) || math.IsInf(a, 0) {
				e = math.Inf(1)
			}
			worst = math.Max(worst, e)
			if e > tol {
				if bad < 5 {
					t.Errorf("layerstest: %s input %d element %d: symbolic %.10g, finite difference %.10g (rel err %.2g > %.2g)",
						what, i, k, a, b, e, tol)
				}
				bad++
			}
		}
		if bad > 5 {
			t.Errorf("layerstest: %s input %d: %d of %d elements off (worst rel err %.2g)", what, i, bad, len(sym[i]), worst)
		}
		t.Logf("layerstest: %s input %d: %d elements, worst rel err %.2g", what, i, len(sym[i]), worst)
	}
}

// GradCheck builds loss = build(g, inputs) (a scalar node) for inputs of the given shapes and values
// (float64), computes the symbolic gradients with G.Grad + TapeMachine and compares them with central
// finite differences (step Step) elementwise: |sym − fd| ≤ tol·max(1, |sym|, |fd|). tol = 1e-6 suits
// float64 losses of order 1–100 (see Step). It also fails if a run modifies an input or if two runs of
// the gradient graph disagree. build may call G.Grad itself (a loss built from forces ∇ₓE): the
// derivative bookkeeping is cleared before the checker's own G.Grad, so this checks mixed second
// derivatives.
func GradCheck(t testing.TB, shapes [][]int, values [][]float64, build func(g *G.ExprGraph, in []*G.Node) (*G.Node, error), tol float64) {
	t.Helper()
	gr := newGraph(t, shapes, values)
	loss, err := build(gr.g, gr.in)
	if err != nil {
		t.Fatalf("layerstest: build: %v", err)
	}
	if !loss.IsScalar() {
		t.Fatalf("layerstest: loss has shape %v, want a scalar", loss.Shape())
	}
	// build may itself call G.Grad (a loss made of forces ∇ₓE): clear its bookkeeping first.
	if err := ClearDerivs(gr.g); err != nil {
		t.Fatal(err)
	}
	if gr.grads, err = G.Grad(loss, gr.in...); err != nil {
		t.Fatalf("layerstest: G.Grad: %v", err)
	}
	gr.m = tape.Must(gr.g)
	defer gr.m.Close()
	sym := runGrads(t, gr)

	fw := forward(t, shapes, values, build, nil)
	defer fw.m.Close()
	compare(t, "gradient", sym, fdGrad(t, fw), tol)
}

// runGrads runs gr twice and returns the gradient values, failing if the runs differ.
func runGrads(t testing.TB, gr *graph) [][]float64 {
	t.Helper()
	var first [][]float64
	for rep := 0; rep < 2; rep++ {
		gr.run(t)
		cur := make([][]float64, len(gr.grads))
		for i, n := range gr.grads {
			cur[i] = valuesOf(t, n)
		}
		if rep == 0 {
			first = cur
			continue
		}
		for i := range cur {
			for k := range cur[i] {
				if cur[i][k] != first[i][k] && !(math.IsNaN(cur[i][k]) && math.IsNaN(first[i][k])) {
					t.Fatalf("layerstest: gradient of input %d element %d is %g on the first run and %g on the second (state leaks between runs)",
						i, k, first[i][k], cur[i][k])
				}
			}
		}
	}
	return first
}

// dot builds s = Σ_i Σ grads[i] ⊙ v_i with v_i bound as extra input nodes.
func dot(gr *graph, grads G.Nodes, shapes [][]int, v [][]float64) (*G.Node, error) {
	var s *G.Node
	for i, gi := range grads {
		vt := tensor.New(tensor.WithShape(shapes[i]...), tensor.WithBacking(append([]float64(nil), v[i]...)))
		vn := G.NewTensor(gr.g, tensor.Float64, len(shapes[i]), G.WithShape(shapes[i]...), G.WithName(fmt.Sprintf("v%d", i)), G.WithValue(vt))
		p, err := G.HadamardProd(gi, vn)
		if err != nil {
			return nil, err
		}
		if p, err = G.Sum(p); err != nil {
			return nil, err
		}
		if s == nil {
			s = p
		} else if s, err = G.Add(s, p); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SecondOrderCheck checks d/dx ⟨∇_x loss, v⟩ (a Hessian–vector product, one result per input) against
// central finite differences of ⟨∇_x loss, v⟩ computed by a first-order graph, with the same tolerance rule
// as GradCheck. v has one slice per input, of the input's size. The second-order graph uses one graph and
// two G.Grad calls with the derivative bookkeeping cleared in between (see the package doc).
func SecondOrderCheck(t testing.TB, shapes [][]int, values, v [][]float64, build func(g *G.ExprGraph, in []*G.Node) (*G.Node, error), tol float64) {
	t.Helper()
	if len(v) != len(shapes) {
		t.Fatalf("layerstest: %d direction slices for %d inputs", len(v), len(shapes))
	}
	for i := range v {
		if len(v[i]) != len(values[i]) {
			t.Fatalf("layerstest: direction %d has %d values, input has %d", i, len(v[i]), len(values[i]))
		}
	}
	firstOrder := func(gr *graph) (*G.Node, error) {
		grads, err := G.Grad(gr.out, gr.in...)
		if err != nil {
			return nil, fmt.Errorf("first G.Grad: %w", err)
		}
		return dot(gr, grads, shapes, v)
	}

	// Symbolic: loss → ∇loss → s = ⟨∇loss, v⟩ → clear → ∇s, in one graph.
	gr := newGraph(t, shapes, values)
	loss, err := build(gr.g, gr.in)
	if err != nil {
		t.Fatalf("layerstest: build: %v", err)
	}
	gr.out = loss
	s, err := firstOrder(gr)
	if err != nil {
		t.Fatalf("layerstest: %v", err)
	}
	if err := ClearDerivs(gr.g); err != nil {
		t.Fatal(err)
	}
	if gr.grads, err = G.Grad(s, gr.in...); err != nil {
		t.Fatalf("layerstest: second G.Grad: %v", err)
	}
	gr.m = tape.Must(gr.g)
	defer gr.m.Close()
	sym := runGrads(t, gr)

	// Finite differences of s from a first-order graph.
	fw := forward(t, shapes, values, build, func(fg *graph) *G.Node {
		s, err := firstOrder(fg)
		if err != nil {
			t.Fatalf("layerstest: %v", err)
		}
		return s
	})
	defer fw.m.Close()
	compare(t, "second-order gradient", sym, fdGrad(t, fw), tol)
}

// ClearDerivs clears the derivative bookkeeping (the unexported Node.deriv) of every node of g, so that
// the next G.Grad differentiates afresh instead of reusing the derivative nodes of an earlier one. It is
// the same operation as in layers.Grad, duplicated here so layerstest does not import layers.
func ClearDerivs(g *G.ExprGraph) error {
	f, ok := reflect.TypeFor[G.Node]().FieldByName("deriv")
	if !ok || f.Type != reflect.TypeFor[*G.Node]() {
		return fmt.Errorf("layerstest: this Gorgonia version has no Node.deriv *Node field; second-order support needs a review")
	}
	for _, n := range g.AllNodes() {
		*(**G.Node)(unsafe.Add(unsafe.Pointer(n), f.Offset)) = nil
	}
	return nil
}
