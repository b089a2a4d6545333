package layers

import (
	"fmt"
	"reflect"
	"unsafe"

	G "gorgonia.org/gorgonia"
)

// Grad is G.Grad made safe to call more than once on one graph (Gorgonia pitfall 2 in the package doc).
//
// G.Grad records, in an unexported field of every node it differentiates, the node holding that node's
// derivative, and a later G.Grad on the same graph silently reuses it: the gradient of a second loss, or the
// gradient of a gradient, comes out as the first gradient. Grad clears that field on every node of the
// graph first and then calls G.Grad. The nodes returned by earlier calls stay valid and keep their values
// (they are still the derivatives of what they were built for), so
//
//	g1, _ := layers.Grad(loss, x)          // ∇loss
//	s := Σ g1[0] ⊙ v
//	hv, _ := layers.Grad(s, x)             // H·v, correct through every op of the kit but one
//
// The exception is the fused RealNVP, whose backward node has no derivative: Grad returns an error for a
// cost that depends on it instead of the silently wrong result G.Grad gives (see the package doc's table of
// second-order safe ops).
//
// works in one graph and one TapeMachine. Read gradients from the returned nodes (node.Value() after
// RunAll), not from x.Grad(): with BindDualValues the machine adds every derivative node of x into x's dual
// value, first and second order alike.
//
// The field is reached through reflection + unsafe, which is sound for the pinned Gorgonia v0.9.18; if the
// field ever disappears Grad returns an error instead of guessing (TestGradClearsDerivs pins it).
func Grad(cost *G.Node, wrt ...*G.Node) (G.Nodes, error) {
	if cost == nil || cost.Graph() == nil {
		return nil, fmt.Errorf("layers: Grad: cost node is nil or not in a graph")
	}
	if err := checkSecondOrder(cost); err != nil {
		return nil, err
	}
	if err := clearDerivs(cost.Graph()); err != nil {
		return nil, err
	}
	return G.Grad(cost, wrt...)
}

// checkSecondOrder refuses a cost that depends on the backward node of an op that has no derivative of its
// own (the fused RealNVP's): G.Grad would treat that node as a constant and return a silently wrong
// gradient (measured: the Hessian-vector product off by O(1), TestSecondOrderTable).
func checkSecondOrder(cost *G.Node) error {
	g := cost.Graph()
	seen := map[int64]bool{}
	stack := []*G.Node{cost}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n.ID()] {
			continue
		}
		seen[n.ID()] = true
		switch n.Op().(type) {
		case *nvpGradOp, *resGradOp:
			return fmt.Errorf("layers: Grad: %v depends on the backward pass of a fused RealNVP (%v), which has no derivative of its own; "+
				"build the flow with RealNVP.Unfused (models: engine graph, rgflow --engine graph) for objectives that differentiate twice", cost.Name(), n.Name())
		}
		it := g.From(n.ID())
		for it.Next() {
			if c, ok := it.Node().(*G.Node); ok {
				stack = append(stack, c)
			}
		}
	}
	return nil
}

// clearDerivs sets Node.deriv to nil on every node of g.
func clearDerivs(g *G.ExprGraph) error {
	f, ok := reflect.TypeFor[G.Node]().FieldByName("deriv")
	if !ok || f.Type != reflect.TypeFor[*G.Node]() {
		return fmt.Errorf("layers: Grad: this Gorgonia version has no Node.deriv *Node field; second-order support needs a review")
	}
	for _, n := range g.AllNodes() {
		*(**G.Node)(unsafe.Add(unsafe.Pointer(n), f.Offset)) = nil
	}
	return nil
}
