package layers

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Gorgonia v0.9.18 has no ELU and no Swish/SiLU; these are fused elementwise ops (one pass, one output
// allocation) with analytic derivatives. Every derivative is again an op with a SymDiff, so the
// activations can be differentiated twice (forces through a conditioner network).

// actKind selects the elementwise function of an actOp.
type actKind uint8

const (
	actELU     actKind = iota // x > 0 ? x : eˣ − 1
	actELUD1                  // x > 0 ? 1 : eˣ
	actELUD2                  // x > 0 ? 0 : eˣ (its own derivative)
	actSwish                  // x·σ(x)
	actSwishD1                // σ(x)·(1 + x·(1 − σ(x)))
)

func (k actKind) String() string {
	switch k {
	case actELU:
		return "ELU"
	case actELUD1:
		return "ELU'"
	case actELUD2:
		return "ELU''"
	case actSwish:
		return "Swish"
	case actSwishD1:
		return "Swish'"
	}
	return fmt.Sprintf("actKind(%d)", uint8(k))
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func (k actKind) eval(x float64) float64 {
	switch k {
	case actELU:
		if x > 0 {
			return x
		}
		return math.Expm1(x)
	case actELUD1:
		if x > 0 {
			return 1
		}
		return math.Exp(x)
	case actELUD2:
		if x > 0 {
			return 0
		}
		return math.Exp(x)
	case actSwish:
		return x * sigmoid(x)
	case actSwishD1:
		s := sigmoid(x)
		return s * (1 + x*(1-s))
	}
	panic("layers: unknown activation")
}

func applyAct[T float](dst, x []T, k actKind) {
	dst = dst[:len(x)]
	if x32, ok := any(x).([]float32); ok {
		applyAct32(any(dst).([]float32), x32, k)
		return
	}
	switch k {
	case actELU:
		copy(dst, x)
		eluInPlace(dst)
	case actSwish:
		for i, v := range x {
			dst[i] = v * T(sigmoid(float64(v)))
		}
	default:
		for i, v := range x {
			dst[i] = T(k.eval(float64(v)))
		}
	}
}

// applyAct32 is applyAct for float32 with the fast float32 exp and no data-dependent branches: every
// function here needs e^{−|x|} only, and the sign of x selects between two expressions of it.
func applyAct32(dst, x []float32, k actKind) {
	switch k {
	case actELU:
		copy(dst, x)
		eluInPlace(dst)
		return
	case actSwish, actSwishD1:
		done := swishVector(dst, x, k == actSwishD1)
		dst, x = dst[done:], x[done:]
	}
	for i, v := range x {
		b := math.Float32bits(v)
		e := exp32(math.Float32frombits(b | 0x80000000)) // e^{−|v|}
		neg := !(v > 0)                                  // as the reference: 0 takes the x ≤ 0 branch
		switch k {
		case actELUD1, actELUD2: // v > 0: 1 (D1) or 0 (D2); otherwise e^v
			var pos float32
			if k == actELUD1 {
				pos = 1
			}
			dst[i] = selectNeg(neg, e, pos)
		case actSwish, actSwishD1:
			// σ(v) = 1/(1+e) for v ≥ 0 and e/(1+e) for v < 0.
			sg := selectNeg(neg, e, 1) / (1 + e)
			if k == actSwish {
				dst[i] = v * sg
			} else {
				dst[i] = sg * (1 + v*(1-sg))
			}
		}
	}
}

// selectNeg returns a when neg, b otherwise, without a branch.
func selectNeg(neg bool, a, b float32) float32 {
	var m uint32
	if neg {
		m = ^uint32(0)
	}
	return math.Float32frombits(math.Float32bits(a)&m | math.Float32bits(b)&^m)
}

// ELU is the exponential linear unit with α = 1: x for x > 0, eˣ − 1 otherwise. It is C¹ at 0 (the second
// derivative jumps there).
func ELU(x *G.Node) (*G.Node, error) { return applyActNode("ELU", actELU, x) }

// Swish is x·σ(x) (also called SiLU).
func Swish(x *G.Node) (*G.Node, error) { return applyActNode("Swish", actSwish, x) }

func applyActNode(name string, k actKind, x *G.Node) (*G.Node, error) {
	if err := checkNode(name, x, 0); err != nil {
		return nil, err
	}
	return G.ApplyOp(actOp{k: k, shape: append([]int(nil), x.Shape()...)}, x)
}

type actOp struct {
	k     actKind
	shape []int
}

func (op actOp) Arity() int    { return 1 }
func (op actOp) Type() hm.Type { return fnType(len(op.shape), len(op.shape)) }
func (op actOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 1, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], op.shape); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op actOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs(op.k.String(), vals, prod(op.shape))
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, op.shape)
	if a.is32 {
		applyAct(o32, a.f32[0], op.k)
	} else {
		applyAct(o64, a.f64[0], op.k)
	}
	return out, nil
}
func (op actOp) ReturnsPtr() bool      { return true }
func (op actOp) CallsExtern() bool     { return false }
func (op actOp) OverwritesInput() int  { return -1 }
func (op actOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.act|%d|%v", op.k, op.shape) }
func (op actOp) Hashcode() uint32      { return hash32(op) }
func (op actOp) String() string        { return op.k.String() }
func (op actOp) DiffWRT(int) []bool    { return []bool{true} }
func (op actOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	x := in[0]
	var d *G.Node
	var err error
	switch op.k {
	case actELU:
		// One fused pass from the output y = ELU(x), ELU'(x) = min(y, 0) + 1, instead of ELU'(x) as a
		// tensor of its own and a product.
		gx, err := G.ApplyOp(eluGradOp{shape: op.shape}, out, grad)
		if err != nil {
			return nil, err
		}
		return G.Nodes{gx}, nil
	case actELUD1, actELUD2:
		d, err = G.ApplyOp(actOp{k: actELUD2, shape: op.shape}, x)
	case actSwish:
		d, err = G.ApplyOp(actOp{k: actSwishD1, shape: op.shape}, x)
	case actSwishD1:
		d, err = swishD2(x)
	}
	if err != nil {
		return nil, err
	}
	gx, err := G.HadamardProd(grad, d)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx}, nil
}

// swishD2 is Swish”(x) = σ(1 − σ)(2 + x(1 − 2σ)), from Gorgonia elementwise ops (all FD-checked to second
// order), so Swish has derivatives of every order.
func swishD2(x *G.Node) (*G.Node, error) {
	one, two := scalarLike(x, 1), scalarLike(x, 2)
	var err error
	do := func(f func(a, b *G.Node) (*G.Node, error), a, b *G.Node) *G.Node {
		if err != nil {
			return nil
		}
		var n *G.Node
		n, err = f(a, b)
		return n
	}
	s, err := G.Sigmoid(x)
	if err != nil {
		return nil, err
	}
	oneMinusS := do(G.Sub, one, s)         // 1 − σ
	a := do(G.HadamardProd, s, oneMinusS)  // σ(1 − σ)
	oneMinus2S := do(G.Sub, oneMinusS, s)  // 1 − 2σ
	b := do(G.HadamardProd, x, oneMinus2S) // x(1 − 2σ)
	c := do(G.Add, two, b)                 // 2 + x(1 − 2σ)
	r := do(G.HadamardProd, a, c)
	return r, err
}

// scalarLike is a constant of x's dtype.
func scalarLike(x *G.Node, v float64) *G.Node {
	if x.Dtype() == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

// eluGradOp is g·ELU'(x) computed from y = ELU(x) and g, both of x's shape: g·(min(y, 0) + 1) (1 for
// x > 0, e^x otherwise; a NaN y gives NaN). It is the backward pass of ELU, one pass over memory (eluGradTo). Its derivatives: with respect to g, eluGradOp again; with respect to y,
// u·g·[y < 0] (negMaskOp), which the chain through y = ELU(x) turns into u·g·e^x, the second derivative of ELU times u·g, for x < 0.
// At x = 0 exactly the second derivative is taken as 0 (the one-sided value from the right; ELU” jumps
// there).
type eluGradOp struct{ shape []int }

func (op eluGradOp) Arity() int    { return 2 }
func (op eluGradOp) Type() hm.Type { return fnType(len(op.shape), len(op.shape), len(op.shape)) }
func (op eluGradOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 2, ds)
	if err != nil {
		return nil, err
	}
	for i := range s {
		if err := checkShape(op.String(), i, s[i], op.shape); err != nil {
			return nil, err
		}
	}
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op eluGradOp) Do(vals ...G.Value) (G.Value, error) {
	n := prod(op.shape)
	a, err := getArgs(op.String(), vals, n, n)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, op.shape)
	if a.is32 {
		eluGradTo(o32, a.f32[1], a.f32[0])
	} else {
		eluGradTo(o64, a.f64[1], a.f64[0])
	}
	return out, nil
}
func (op eluGradOp) ReturnsPtr() bool      { return true }
func (op eluGradOp) CallsExtern() bool     { return false }
func (op eluGradOp) OverwritesInput() int  { return -1 }
func (op eluGradOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.eluGrad|%v", op.shape) }
func (op eluGradOp) Hashcode() uint32      { return hash32(op) }
func (op eluGradOp) String() string        { return "ELUGrad" }
func (op eluGradOp) DiffWRT(int) []bool    { return []bool{true, true} }
func (op eluGradOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	y, g := in[0], in[1]
	ug, err := G.HadamardProd(grad, g)
	if err != nil {
		return nil, err
	}
	gy, err := G.ApplyOp(negMaskOp{shape: op.shape}, y, ug)
	if err != nil {
		return nil, err
	}
	gg, err := G.ApplyOp(eluGradOp{shape: op.shape}, y, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gy, gg}, nil
}

// negMaskOp is a·[y < 0] elementwise (y and a of one shape; a NaN y gives NaN). It is differentiable in
// a only (the step in y has derivative 0 almost everywhere); its derivative there is negMaskOp again.
type negMaskOp struct{ shape []int }

func (op negMaskOp) Arity() int    { return 2 }
func (op negMaskOp) Type() hm.Type { return fnType(len(op.shape), len(op.shape), len(op.shape)) }
func (op negMaskOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return eluGradOp(op).InferShape(ds...)
}
func (op negMaskOp) Do(vals ...G.Value) (G.Value, error) {
	n := prod(op.shape)
	a, err := getArgs(op.String(), vals, n, n)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, op.shape)
	if a.is32 {
		negMask(o32, a.f32[0], a.f32[1])
	} else {
		negMask(o64, a.f64[0], a.f64[1])
	}
	return out, nil
}

func negMask[T float](dst, y, a []T) {
	for i, v := range y {
		switch {
		case v < 0:
			dst[i] = a[i]
		case v != v:
			dst[i] = v
		default:
			dst[i] = 0
		}
	}
}
func (op negMaskOp) ReturnsPtr() bool      { return true }
func (op negMaskOp) CallsExtern() bool     { return false }
func (op negMaskOp) OverwritesInput() int  { return -1 }
func (op negMaskOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.negMask|%v", op.shape) }
func (op negMaskOp) Hashcode() uint32      { return hash32(op) }
func (op negMaskOp) String() string        { return "NegMask" }
func (op negMaskOp) DiffWRT(int) []bool    { return []bool{false, true} }
func (op negMaskOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	ga, err := G.ApplyOp(negMaskOp{shape: op.shape}, in[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{nil, ga}, nil
}
