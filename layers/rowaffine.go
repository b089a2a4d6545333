package layers

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Per-row ops on tensors of any rank, for per-sample-and-channel modulation of feature maps (FiLM): a
// tensor of shape S is read as m rows of n = |S|/m consecutive entries, m the length of the row vector
// (for a (B, C, H, W) map and a (B·C) vector, one row per sample and channel). Unlike RowScale and
// RowBias they need no reshape of the map (a copy), and the affine map and its three gradients are one
// pass each. The set is closed under differentiation (rowAffine → rowAffine, rowDot, rowSum;
// rowDot → rowAffine; rowSum → rowBcast → rowSum), so second derivatives work through them.

// rowAffine returns x·s (+ b) row by row: out[r, j] = x[r, j]·s[r] + b[r]; b may be nil.
func rowAffine(x, s, b *G.Node) (*G.Node, error) {
	op := rowAffineOp{shape: append([]int(nil), x.Shape()...), m: s.Shape().TotalSize(), bias: b != nil}
	nodes := []*G.Node{x, s}
	if b != nil {
		nodes = append(nodes, b)
	}
	if err := checkRows(op.String(), op.shape, nodes[1:]...); err != nil {
		return nil, err
	}
	if err := sameDtype(op.String(), nodes...); err != nil {
		return nil, err
	}
	return G.ApplyOp(op, nodes...)
}

// checkRows checks that every vector is 1-D with a length m that divides the size of shape.
func checkRows(op string, shape []int, vs ...*G.Node) error {
	for _, v := range vs {
		m := v.Shape().TotalSize()
		if v.Dims() != 1 || m < 1 || prod(shape)%m != 0 || (len(vs) > 1 && m != vs[0].Shape().TotalSize()) {
			return fmt.Errorf("layers: %s: row vector of shape %s for a tensor of shape %s, want (m) with m dividing its size", op, shapeStr(v.Shape()), shapeStr(shape))
		}
	}
	return nil
}

type rowAffineOp struct {
	shape []int
	m     int
	bias  bool
}

func (op rowAffineOp) Arity() int {
	if op.bias {
		return 3
	}
	return 2
}
func (op rowAffineOp) Type() hm.Type {
	if op.bias {
		return fnType(len(op.shape), len(op.shape), 1, 1)
	}
	return fnType(len(op.shape), len(op.shape), 1)
}
func (op rowAffineOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), op.Arity(), ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], op.shape); err != nil {
		return nil, err
	}
	for i := 1; i < len(s); i++ {
		if err := checkShape(op.String(), i, s[i], []int{op.m}); err != nil {
			return nil, err
		}
	}
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op rowAffineOp) Do(vals ...G.Value) (G.Value, error) {
	sizes := []int{prod(op.shape), op.m, op.m}[:op.Arity()]
	a, err := getArgs(op.String(), vals, sizes...)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, op.shape)
	if a.is32 {
		rowAffineApply(o32, a.f32[0], a.f32[1], a.f32[2])
	} else {
		rowAffineApply(o64, a.f64[0], a.f64[1], a.f64[2])
	}
	return out, nil
}

// rowAffineApply sets dst = x·s + b row by row (b nil: no bias); the rows are len(x)/len(s) long.
func rowAffineApply[T float](dst, x, s, b []T) {
	n := len(x) / len(s)
	for r, c := range s {
		d, v := dst[r*n:(r+1)*n], x[r*n:(r+1)*n]
		var o T
		if b != nil {
			o = b[r]
		}
		for j := range d {
			d[j] = v[j]*c + o
		}
	}
}
func (op rowAffineOp) ReturnsPtr() bool     { return true }
func (op rowAffineOp) CallsExtern() bool    { return false }
func (op rowAffineOp) OverwritesInput() int { return -1 }
func (op rowAffineOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.rowAffine|%v|%d|%v", op.shape, op.m, op.bias)
}
func (op rowAffineOp) Hashcode() uint32 { return hash32(op) }
func (op rowAffineOp) String() string   { return "RowAffine" }
func (op rowAffineOp) DiffWRT(int) []bool {
	return []bool{true, true, true}[:op.Arity()]
}
func (op rowAffineOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	gx, err := rowAffine(grad, in[1], nil)
	if err != nil {
		return nil, err
	}
	gs, err := G.ApplyOp(rowReduceOp{shape: op.shape, m: op.m, dot: true}, grad, in[0])
	if err != nil {
		return nil, err
	}
	if !op.bias {
		return G.Nodes{gx, gs}, nil
	}
	gb, err := G.ApplyOp(rowReduceOp{shape: op.shape, m: op.m}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx, gs, gb}, nil
}

// rowReduceOp sums each row: of a (rowSum, arity 1) or of a ⊙ c (rowDot, arity 2); the result is (m).
type rowReduceOp struct {
	shape []int
	m     int
	dot   bool
}

func (op rowReduceOp) Arity() int {
	if op.dot {
		return 2
	}
	return 1
}
func (op rowReduceOp) Type() hm.Type {
	if op.dot {
		return fnType(1, len(op.shape), len(op.shape))
	}
	return fnType(1, len(op.shape))
}
func (op rowReduceOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), op.Arity(), ds)
	if err != nil {
		return nil, err
	}
	for i := range s {
		if err := checkShape(op.String(), i, s[i], op.shape); err != nil {
			return nil, err
		}
	}
	return tensor.Shape{op.m}, nil
}
func (op rowReduceOp) Do(vals ...G.Value) (G.Value, error) {
	sizes := []int{prod(op.shape), prod(op.shape)}[:op.Arity()]
	a, err := getArgs(op.String(), vals, sizes...)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, []int{op.m})
	if a.is32 {
		rowReduce(o32, a.f32[0], a.f32[1])
	} else {
		rowReduce(o64, a.f64[0], a.f64[1])
	}
	return out, nil
}

// rowReduce sets dst[r] = Σ_j a[r, j] (c nil) or Σ_j a[r, j]·c[r, j], rows of len(a)/len(dst).
func rowReduce[T float](dst, a, c []T) {
	n := len(a) / len(dst)
	for r := range dst {
		ar := a[r*n : (r+1)*n]
		if c != nil {
			dst[r] = dot(ar, c[r*n:(r+1)*n])
			continue
		}
		var s0, s1, s2, s3 T
		j := 0
		for ; j+4 <= len(ar); j += 4 {
			s0 += ar[j]
			s1 += ar[j+1]
			s2 += ar[j+2]
			s3 += ar[j+3]
		}
		for ; j < len(ar); j++ {
			s0 += ar[j]
		}
		dst[r] = (s0 + s1) + (s2 + s3)
	}
}
func (op rowReduceOp) ReturnsPtr() bool     { return true }
func (op rowReduceOp) CallsExtern() bool    { return false }
func (op rowReduceOp) OverwritesInput() int { return -1 }
func (op rowReduceOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.rowReduce|%v|%d|%v", op.shape, op.m, op.dot)
}
func (op rowReduceOp) Hashcode() uint32 { return hash32(op) }
func (op rowReduceOp) String() string {
	if op.dot {
		return "RowDot"
	}
	return "RowSum"
}
func (op rowReduceOp) DiffWRT(int) []bool { return []bool{true, true}[:op.Arity()] }
func (op rowReduceOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if op.dot {
		ga, err := rowAffine(in[1], grad, nil)
		if err != nil {
			return nil, err
		}
		gc, err := rowAffine(in[0], grad, nil)
		if err != nil {
			return nil, err
		}
		return G.Nodes{ga, gc}, nil
	}
	ga, err := G.ApplyOp(rowBcastOp{shape: op.shape, m: op.m}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{ga}, nil
}

// rowBcastOp repeats v (m) along each row of the given shape: the adjoint of rowSum.
type rowBcastOp struct {
	shape []int
	m     int
}

func (op rowBcastOp) Arity() int    { return 1 }
func (op rowBcastOp) Type() hm.Type { return fnType(len(op.shape), 1) }
func (op rowBcastOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 1, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], []int{op.m}); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op rowBcastOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs(op.String(), vals, op.m)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, op.shape)
	if a.is32 {
		rowBcast(o32, a.f32[0])
	} else {
		rowBcast(o64, a.f64[0])
	}
	return out, nil
}

func rowBcast[T float](dst, v []T) {
	n := len(dst) / len(v)
	for r, c := range v {
		fill(dst[r*n:(r+1)*n], c)
	}
}
func (op rowBcastOp) ReturnsPtr() bool     { return true }
func (op rowBcastOp) CallsExtern() bool    { return false }
func (op rowBcastOp) OverwritesInput() int { return -1 }
func (op rowBcastOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.rowBcast|%v|%d", op.shape, op.m)
}
func (op rowBcastOp) Hashcode() uint32   { return hash32(op) }
func (op rowBcastOp) String() string     { return "RowBcast" }
func (op rowBcastOp) DiffWRT(int) []bool { return []bool{true} }
func (op rowBcastOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(rowReduceOp{shape: op.shape, m: op.m}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// rowAffineELU returns ELU(x·s + b) row by row as one op: the affine map and the activation in one pass
// (a block of rows at a time, still in cache for the activation). Its gradient is that of the two ops it
// fuses: g_z = g·ELU'(z) from the output (eluGradOp), then rowAffine's (g_z·s, Σ g_z ⊙ x, Σ g_z), so it
// differentiates again like them.
func rowAffineELU(x, s, b *G.Node) (*G.Node, error) {
	op := rowAffineELUOp{shape: append([]int(nil), x.Shape()...), m: s.Shape().TotalSize()}
	if err := checkRows(op.String(), op.shape, s, b); err != nil {
		return nil, err
	}
	if err := sameDtype(op.String(), x, s, b); err != nil {
		return nil, err
	}
	return G.ApplyOp(op, x, s, b)
}

type rowAffineELUOp struct {
	shape []int
	m     int
}

func (op rowAffineELUOp) Arity() int    { return 3 }
func (op rowAffineELUOp) Type() hm.Type { return fnType(len(op.shape), len(op.shape), 1, 1) }
func (op rowAffineELUOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	return rowAffineOp{shape: op.shape, m: op.m, bias: true}.InferShape(ds...)
}
func (op rowAffineELUOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs(op.String(), vals, prod(op.shape), op.m, op.m)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, op.shape)
	if a.is32 {
		rowAffineELUApply(o32, a.f32[0], a.f32[1], a.f32[2])
	} else {
		rowAffineELUApply(o64, a.f64[0], a.f64[1], a.f64[2])
	}
	return out, nil
}

// rowAffineELUApply sets dst = ELU(x·s + b) row by row, in blocks of about 4096 entries.
func rowAffineELUApply[T float](dst, x, s, b []T) {
	n := len(x) / len(s)
	rb := max(1, 4096/max(n, 1))
	for r0 := 0; r0 < len(s); r0 += rb {
		r1 := min(len(s), r0+rb)
		d := dst[r0*n : r1*n]
		rowAffineApply(d, x[r0*n:r1*n], s[r0:r1], b[r0:r1])
		eluInPlace(d)
	}
}
func (op rowAffineELUOp) ReturnsPtr() bool     { return true }
func (op rowAffineELUOp) CallsExtern() bool    { return false }
func (op rowAffineELUOp) OverwritesInput() int { return -1 }
func (op rowAffineELUOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.rowAffineELU|%v|%d", op.shape, op.m)
}
func (op rowAffineELUOp) Hashcode() uint32   { return hash32(op) }
func (op rowAffineELUOp) String() string     { return "RowAffineELU" }
func (op rowAffineELUOp) DiffWRT(int) []bool { return []bool{true, true, true} }
func (op rowAffineELUOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	gz, err := G.ApplyOp(eluGradOp{shape: op.shape}, out, grad)
	if err != nil {
		return nil, err
	}
	return rowAffineOp{shape: op.shape, m: op.m, bias: true}.SymDiff(in, nil, gz)
}
