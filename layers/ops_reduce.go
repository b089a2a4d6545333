package layers

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dropAxis returns shape without axis.
func dropAxis(shape []int, axis int) []int {
	out := make([]int, 0, len(shape)-1)
	out = append(out, shape[:axis]...)
	return append(out, shape[axis+1:]...)
}

// sumAxisOp sums over one axis (the result drops it). Its adjoint is expandAxisOp.
type sumAxisOp struct {
	in   []int
	axis int
}

func (op sumAxisOp) Arity() int    { return 1 }
func (op sumAxisOp) Type() hm.Type { return fnType(len(op.in)-1, len(op.in)) }
func (op sumAxisOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 1, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], op.in); err != nil {
		return nil, err
	}
	return tensor.Shape(dropAxis(op.in, op.axis)), nil
}
func (op sumAxisOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs("SumAxis", vals, prod(op.in))
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, dropAxis(op.in, op.axis))
	outer, n, inner := splitAxis(op.in, op.axis)
	if a.is32 {
		sumAxis(o32, a.f32[0], outer, n, inner)
	} else {
		sumAxis(o64, a.f64[0], outer, n, inner)
	}
	return out, nil
}
func (op sumAxisOp) ReturnsPtr() bool      { return true }
func (op sumAxisOp) CallsExtern() bool     { return false }
func (op sumAxisOp) OverwritesInput() int  { return -1 }
func (op sumAxisOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.sumAxis|%v|%d", op.in, op.axis) }
func (op sumAxisOp) Hashcode() uint32      { return hash32(op) }
func (op sumAxisOp) String() string        { return fmt.Sprintf("SumAxis(%d)", op.axis) }
func (op sumAxisOp) DiffWRT(int) []bool    { return []bool{true} }
func (op sumAxisOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(expandAxisOp(op), grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

func sumAxis[T float](dst, x []T, outer, n, inner int) {
	if inner == 1 {
		// Summing the last axis: one running sum per row, in the same order as the general loop.
		for o := range dst[:outer] {
			s := dst[o]
			for _, v := range x[o*n : (o+1)*n] {
				s += v
			}
			dst[o] = s
		}
		return
	}
	for o := 0; o < outer; o++ {
		d := dst[o*inner : (o+1)*inner]
		for i := 0; i < n; i++ {
			s := x[(o*n+i)*inner : (o*n+i+1)*inner]
			for r := range d {
				d[r] += s[r]
			}
		}
	}
}

// expandAxisOp repeats its input n = out[axis] times along a new axis (the materialised broadcast). Its
// adjoint is sumAxisOp; in is the shape of the output here.
type expandAxisOp struct {
	in   []int // the expanded (output) shape
	axis int
}

func (op expandAxisOp) Arity() int    { return 1 }
func (op expandAxisOp) Type() hm.Type { return fnType(len(op.in), len(op.in)-1) }
func (op expandAxisOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 1, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], dropAxis(op.in, op.axis)); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), op.in...)), nil
}
func (op expandAxisOp) Do(vals ...G.Value) (G.Value, error) {
	outer, n, inner := splitAxis(op.in, op.axis)
	a, err := getArgs("ExpandAxis", vals, outer*inner)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, op.in)
	if a.is32 {
		expandAxis(o32, a.f32[0], outer, n, inner)
	} else {
		expandAxis(o64, a.f64[0], outer, n, inner)
	}
	return out, nil
}
func (op expandAxisOp) ReturnsPtr() bool     { return true }
func (op expandAxisOp) CallsExtern() bool    { return false }
func (op expandAxisOp) OverwritesInput() int { return -1 }
func (op expandAxisOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.expandAxis|%v|%d", op.in, op.axis)
}
func (op expandAxisOp) Hashcode() uint32 { return hash32(op) }
func (op expandAxisOp) String() string {
	return fmt.Sprintf("ExpandAxis(%d,%d)", op.axis, op.in[op.axis])
}
func (op expandAxisOp) DiffWRT(int) []bool { return []bool{true} }
func (op expandAxisOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(sumAxisOp(op), grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

func expandAxis[T float](dst, x []T, outer, n, inner int) {
	if inner == 1 {
		// Expanding along the last axis: fill each row with its value.
		for o, v := range x[:outer] {
			d := dst[o*n : (o+1)*n]
			for i := range d {
				d[i] = v
			}
		}
		return
	}
	for o := 0; o < outer; o++ {
		s := x[o*inner : (o+1)*inner]
		for i := 0; i < n; i++ {
			copy(dst[(o*n+i)*inner:(o*n+i+1)*inner], s)
		}
	}
}

// SumAxis sums x over one axis; the result drops that axis (a scalar for a 1-D x). Gorgonia's own Sum is
// correct (checked in ops_test.go); this one exists because its gradient (a materialised broadcast whose
// gradient is SumAxis again) is closed under differentiation, which the kit's second-order ops rely on.
func SumAxis(x *G.Node, axis int) (*G.Node, error) {
	if err := checkNode("SumAxis", x, 1); err != nil {
		return nil, err
	}
	in := []int(x.Shape())
	if err := checkAxis("SumAxis", in, axis); err != nil {
		return nil, err
	}
	return G.ApplyOp(sumAxisOp{in: append([]int(nil), in...), axis: axis}, x)
}

// LogSumExp is the numerically stable log Σ exp(x) along one axis, for x of any rank; the result drops
// that axis (a scalar for a 1-D x). It replaces Gorgonia's LogSumExp, which is wrong on ≥2-D input.
// Rows that are all −∞ give −∞; a +∞ entry gives +∞. The gradient, expand(g)·exp(x − expand(out)), is
// built from kit and Gorgonia elementwise ops, so it differentiates again.
func LogSumExp(x *G.Node, axis int) (*G.Node, error) {
	if err := checkNode("LogSumExp", x, 1); err != nil {
		return nil, err
	}
	in := []int(x.Shape())
	if err := checkAxis("LogSumExp", in, axis); err != nil {
		return nil, err
	}
	return G.ApplyOp(lseOp{in: append([]int(nil), in...), axis: axis}, x)
}

type lseOp struct {
	in   []int
	axis int
}

func (op lseOp) Arity() int    { return 1 }
func (op lseOp) Type() hm.Type { return fnType(len(op.in)-1, len(op.in)) }
func (op lseOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes("LogSumExp", 1, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape("LogSumExp", 0, s[0], op.in); err != nil {
		return nil, err
	}
	return tensor.Shape(dropAxis(op.in, op.axis)), nil
}
func (op lseOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs("LogSumExp", vals, prod(op.in))
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, dropAxis(op.in, op.axis))
	outer, n, inner := splitAxis(op.in, op.axis)
	if a.is32 {
		lse(o32, a.f32[0], outer, n, inner)
	} else {
		lse(o64, a.f64[0], outer, n, inner)
	}
	return out, nil
}

// lse accumulates in float64 whatever T is.
func lse[T float](dst, x []T, outer, n, inner int) {
	for o := 0; o < outer; o++ {
		for r := 0; r < inner; r++ {
			base := o*n*inner + r
			m := math.Inf(-1)
			for i := 0; i < n; i++ {
				m = math.Max(m, float64(x[base+i*inner]))
			}
			if math.IsInf(m, 0) || math.IsNaN(m) {
				dst[o*inner+r] = T(m)
				continue
			}
			s := 0.0
			for i := 0; i < n; i++ {
				s += math.Exp(float64(x[base+i*inner]) - m)
			}
			dst[o*inner+r] = T(m + math.Log(s))
		}
	}
}

func (op lseOp) ReturnsPtr() bool      { return true }
func (op lseOp) CallsExtern() bool     { return false }
func (op lseOp) OverwritesInput() int  { return -1 }
func (op lseOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.lse|%v|%d", op.in, op.axis) }
func (op lseOp) Hashcode() uint32      { return hash32(op) }
func (op lseOp) String() string        { return fmt.Sprintf("LogSumExp(%d)", op.axis) }
func (op lseOp) DiffWRT(int) []bool    { return []bool{true} }
func (op lseOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	ex := expandAxisOp{in: op.in, axis: op.axis}
	outB, err := G.ApplyOp(ex, out)
	if err != nil {
		return nil, err
	}
	gB, err := G.ApplyOp(ex, grad)
	if err != nil {
		return nil, err
	}
	diff, err := G.Sub(in[0], outB)
	if err != nil {
		return nil, err
	}
	p, err := G.Exp(diff)
	if err != nil {
		return nil, err
	}
	gx, err := G.HadamardProd(gB, p)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx}, nil
}
