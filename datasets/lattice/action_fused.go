package lattice

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
	"rgflow/layers"
)

// The φ⁴ action (and O(N)) as one Gorgonia op: S per sample from the host formulas (Eval, in float64 for
// either dtype), and its gradient as one op from the host force, ∂S/∂φ = −Force(φ). The graph of elementary
// ops (ActionGraph: shifts, differences, squares, sums — about fifteen nodes forward and twice as many
// backward, each allocating a (B, C, L, L) tensor every run) is the reference that tests compare the
// fused op with, values and gradients. The fused op is differentiable once: a second derivative through
// it fails when the graph is differentiated, naming ActionGraph.

// phi4Op maps phi (B, C, L, L) to S (B).
type phi4Op struct{ p *phi4Core }

func tensorType(d int) hm.Type { return G.TensorType{Dims: d, Of: hm.TypeVariable('a')} }

func (op phi4Op) Arity() int    { return 1 }
func (op phi4Op) Type() hm.Type { return hm.NewFnType(tensorType(4), tensorType(1)) }
func (op phi4Op) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := phi4Shape(op.p, ds, 1)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[0]}, nil
}

func (op phi4Op) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("lattice: %s: fused action: %d inputs, want 1", op.p.name, len(vals))
	}
	phi, ok := vals[0].(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("lattice: %s: fused action: input is a %T, want a tensor", op.p.name, vals[0])
	}
	B, n := phi.Shape()[0], op.p.C*op.p.L*op.p.L
	out := tensor.New(tensor.WithShape(B), tensor.Of(phi.Dtype()))
	switch phi.Dtype() {
	case tensor.Float64:
		x, o := phi.Float64s(), out.Float64s()
		for b := range B {
			o[b] = op.p.Eval(x[b*n : (b+1)*n])
		}
	case tensor.Float32:
		x, o := phi.Float32s(), out.Float32s()
		buf := make([]float64, n)
		for b := range B {
			for i, v := range x[b*n : (b+1)*n] {
				buf[i] = float64(v)
			}
			o[b] = float32(op.p.Eval(buf))
		}
	default:
		return nil, fmt.Errorf("lattice: %s: fused action: dtype %v, want float32 or float64", op.p.name, phi.Dtype())
	}
	return out, nil
}

func (op phi4Op) ReturnsPtr() bool      { return false }
func (op phi4Op) CallsExtern() bool     { return false }
func (op phi4Op) OverwritesInput() int  { return -1 }
func (op phi4Op) WriteHash(h hash.Hash) { op.p.writeHash(h, "S") }
func (op phi4Op) Hashcode() uint32      { return hashOf(op) }
func (op phi4Op) String() string        { return op.p.name + "Action" }
func (op phi4Op) DiffWRT(int) []bool    { return []bool{true} }
func (op phi4Op) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(phi4GradOp(op), in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// phi4GradOp maps (phi (B, C, L, L), g (B)) to g_b·∂S/∂φ for each sample b.
type phi4GradOp struct{ p *phi4Core }

func (op phi4GradOp) Arity() int { return 2 }
func (op phi4GradOp) Type() hm.Type {
	return hm.NewFnType(tensorType(4), tensorType(1), tensorType(4))
}
func (op phi4GradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := phi4Shape(op.p, ds, 2)
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

func (op phi4GradOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("lattice: %s: fused action gradient: %d inputs, want 2", op.p.name, len(vals))
	}
	phi, ok1 := vals[0].(*tensor.Dense)
	g, ok2 := vals[1].(*tensor.Dense)
	if !ok1 || !ok2 || phi.Dtype() != g.Dtype() {
		return nil, fmt.Errorf("lattice: %s: fused action gradient: inputs %T, %T, want two tensors of one dtype", op.p.name, vals[0], vals[1])
	}
	B, n := phi.Shape()[0], op.p.C*op.p.L*op.p.L
	if g.Shape().TotalSize() != B {
		return nil, fmt.Errorf("lattice: %s: fused action gradient: %d output gradients for %d samples", op.p.name, g.Shape().TotalSize(), B)
	}
	out := tensor.New(tensor.WithShape(phi.Shape().Clone()...), tensor.Of(phi.Dtype()))
	f := make([]float64, n)
	switch phi.Dtype() {
	case tensor.Float64:
		x, gv, o := phi.Float64s(), g.Float64s(), out.Float64s()
		for b := range B {
			op.p.Force(f, x[b*n:(b+1)*n])
			ob := o[b*n : (b+1)*n]
			for i, v := range f {
				ob[i] = -gv[b] * v
			}
		}
	case tensor.Float32:
		x, gv, o := phi.Float32s(), g.Float32s(), out.Float32s()
		buf := make([]float64, n)
		for b := range B {
			for i, v := range x[b*n : (b+1)*n] {
				buf[i] = float64(v)
			}
			op.p.Force(f, buf)
			ob, gb := o[b*n:(b+1)*n], -float64(gv[b])
			for i, v := range f {
				ob[i] = float32(gb * v)
			}
		}
	default:
		return nil, fmt.Errorf("lattice: %s: fused action gradient: dtype %v, want float32 or float64", op.p.name, phi.Dtype())
	}
	return out, nil
}

func (op phi4GradOp) ReturnsPtr() bool      { return false }
func (op phi4GradOp) CallsExtern() bool     { return false }
func (op phi4GradOp) OverwritesInput() int  { return -1 }
func (op phi4GradOp) WriteHash(h hash.Hash) { op.p.writeHash(h, "dS") }
func (op phi4GradOp) Hashcode() uint32      { return hashOf(op) }
func (op phi4GradOp) String() string        { return "∇" + op.p.name + "Action" }
func (op phi4GradOp) DiffWRT(int) []bool    { return []bool{true, false} } // so that SymDiff can refuse by name
func (op phi4GradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("lattice: %s: the fused action is differentiable once; build the action with ActionGraph for second derivatives", op.p.name)
}

// phi4Shape checks the input shapes of the fused ops: phi (B, C, L, L) first, then (for the gradient) g (B).
func phi4Shape(p *phi4Core, ds []G.DimSizer, n int) (tensor.Shape, error) {
	if len(ds) != n {
		return nil, fmt.Errorf("lattice: %s: fused action: %d inputs, want %d", p.name, len(ds), n)
	}
	ss, err := G.DimSizersToShapes(ds)
	if err != nil {
		return nil, fmt.Errorf("lattice: %s: fused action: %w", p.name, err)
	}
	sh := ss[0]
	if len(sh) != 4 || sh[1] != p.C || sh[2] != p.L || sh[3] != p.L {
		return nil, fmt.Errorf("lattice: %s: fused action: input shape %v, want (B, %d, %d, %d)", p.name, []int(sh), p.C, p.L, p.L)
	}
	if n == 2 && ss[1].TotalSize() != sh[0] {
		return nil, fmt.Errorf("lattice: %s: fused action gradient: %v output gradients for a batch of %d", p.name, []int(ss[1]), sh[0])
	}
	return sh, nil
}

func (p *phi4Core) writeHash(h hash.Hash, what string) {
	fmt.Fprintf(h, "rgflow.lattice.%s|%s|C=%d|L=%d|m2=%x|lambda=%x", p.name, what, p.C, p.L, p.m2, p.lambda)
}

func hashOf(op G.Op) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// GraphForm returns a with its graph form built from elementary ops (ActionGraph) where a has one besides
// its fused op, and a itself otherwise. It is what `--engine graph` trains with: the whole step as the graph
// of elementary ops that every fused kernel is checked against. Only Action differs; Eval, Force and the
// rest are a's.
func GraphForm(a Action) Action {
	if g, ok := a.(graphFormer); ok {
		return graphAction{base: a, g: g}
	}
	return a
}

type graphFormer interface {
	ActionGraph(s *layers.Scope, phi *G.Node) (*G.Node, error)
}

// graphAction is an Action whose graph form is its elementary-op graph.
type graphAction struct {
	base Action
	g    graphFormer
}

func (a graphAction) Name() string               { return a.base.Name() }
func (a graphAction) Channels() int              { return a.base.Channels() }
func (a graphAction) Size() int                  { return a.base.Size() }
func (a graphAction) Params() map[string]float64 { return a.base.Params() }
func (a graphAction) Z2() bool                   { return a.base.Z2() }
func (a graphAction) Eval(phi []float64) float64 { return a.base.Eval(phi) }
func (a graphAction) Force(dst, phi []float64)   { a.base.Force(dst, phi) }
func (a graphAction) Action(s *layers.Scope, phi *G.Node) (*G.Node, error) {
	return a.g.ActionGraph(s, phi)
}
