package lattice

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

// The fused action's gradient op against central finite differences of the fused action itself (not of
// the host force it is built from), with an uneven output gradient (loss = Σ_b (b+1)·S_b), for φ⁴ and O(2).
// Tolerance 1e-6: layerstest's default for float64 losses of order 1–100.
func TestFusedActionGradFD(t *testing.T) {
	phi4, err := NewPhi4(4, -1, 0.7)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := NewO2(4, -2, 0.8)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, a := range []Action{phi4, o2} {
		const B = 3
		shape := []int{B, a.Channels(), a.Size(), a.Size()}
		x := randomField(rng, B*a.Channels()*a.Size()*a.Size(), 1)
		layerstest.GradCheck(t, [][]int{shape}, [][]float64{x}, func(g *G.ExprGraph, in []*G.Node) (*G.Node, error) {
			s := layers.NewScope(g, layers.NewStore(tensor.Float64, 0))
			S, err := a.Action(s, in[0])
			if err != nil {
				return nil, err
			}
			w := G.NewConstant(tensor.New(tensor.WithShape(B), tensor.WithBacking([]float64{1, 2, 3})), G.In(g))
			ws, err := G.HadamardProd(S, w)
			if err != nil {
				return nil, err
			}
			return G.Sum(ws)
		}, 1e-6)
	}
}

// A second derivative through the fused action fails when the graph is differentiated, naming the
// twice-differentiable form.
func TestFusedActionSecondOrderRefused(t *testing.T) {
	a, err := NewPhi4(4, -1, 0.7)
	if err != nil {
		t.Fatal(err)
	}
	g := G.NewGraph()
	s := layers.NewScope(g, layers.NewStore(tensor.Float64, 0))
	phi := s.Input("phi", 2, 1, 4, 4)
	S, err := a.Action(s, phi)
	if err != nil {
		t.Fatal(err)
	}
	tot, err := G.Sum(S)
	if err != nil {
		t.Fatal(err)
	}
	gr, err := layers.Grad(tot, phi)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := G.Square(gr[0])
	if err != nil {
		t.Fatal(err)
	}
	e, err := G.Sum(sq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layers.Grad(e, phi); err == nil || !strings.Contains(err.Error(), "ActionGraph") {
		t.Fatalf("second derivative through the fused action: error %v, want one naming ActionGraph", err)
	}
}

// GraphForm swaps in the elementary-op graph: the second derivative the fused op refuses builds, and the
// graph form's value equals the host Eval of every sample (independent formula); the host methods pass
// through unchanged. The relaxed Ising action has no fused op and comes back as it is.
func TestGraphFormIsElementaryGraph(t *testing.T) {
	a, err := NewPhi4(4, -1, 0.7)
	if err != nil {
		t.Fatal(err)
	}
	ga := GraphForm(a)
	if ga.Name() != a.Name() || ga.Size() != a.Size() || ga.Channels() != a.Channels() || ga.Z2() != a.Z2() {
		t.Fatal("GraphForm changed the action's description")
	}
	const B = 2
	x := randomField(rand.New(rand.NewPCG(3, 4)), B*16, 1)
	g := G.NewGraph()
	s := layers.NewScope(g, layers.NewStore(tensor.Float64, 0))
	phi := s.Input("phi", B, 1, 4, 4)
	S, err := ga.Action(s, phi)
	if err != nil {
		t.Fatal(err)
	}
	tot, err := G.Sum(S)
	if err != nil {
		t.Fatal(err)
	}
	gr, err := layers.Grad(tot, phi)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := G.Square(gr[0])
	if err != nil {
		t.Fatal(err)
	}
	e, err := G.Sum(sq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := layers.Grad(e, phi); err != nil {
		t.Fatalf("second derivative through the graph form: %v", err)
	}
	m := layers.MustNewTapeMachine(g)
	defer m.Close()
	if err := G.Let(phi, tensor.New(tensor.WithShape(B, 1, 4, 4), tensor.WithBacking(x))); err != nil {
		t.Fatal(err)
	}
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := S.Value().Data().([]float64)
	for b := range B {
		// 1e-12 relative: the graph sums the same terms in another order.
		if want := a.Eval(x[b*16 : (b+1)*16]); math.Abs(got[b]-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("sample %d: graph form S = %.15g, host Eval %.15g", b, got[b], want)
		}
	}
	ising, err := NewIsingRelaxed(4, 2.3)
	if err != nil {
		t.Fatal(err)
	}
	if GraphForm(ising) != Action(ising) {
		t.Error("GraphForm wrapped an action that has no fused form")
	}
}
