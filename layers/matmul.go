package layers

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MatMul is the 2-D product A·B for the feature-major layout (short-by-long products such as
// W (out, in) · x (in, N)), computed with the kernels of fastmath.go on the calling goroutine. Its gradients
// are the transposed products A·Bᵀ and Aᵀ·B, themselves ops of this family, so it differentiates to any
// order. Use it where G.Mul would hand gonum a matrix it splits into goroutines.
func MatMul(a, b *G.Node) (*G.Node, error) { return applyFMMul(mmNN, a, b) }

// mmKind selects C = A·B, A·Bᵀ or Aᵀ·B.
type mmKind uint8

const (
	mmNN mmKind = iota
	mmNT
	mmTN
)

var mmNames = [...]string{"MatMul", "MatMulNT", "MatMulTN"}

func applyFMMul(kind mmKind, a, b *G.Node) (*G.Node, error) {
	name := mmNames[kind]
	if err := checkNode(name, a, 2); err != nil {
		return nil, err
	}
	if err := checkNode(name, b, 2); err != nil {
		return nil, err
	}
	if err := sameDtype(name, a, b); err != nil {
		return nil, err
	}
	as, bs := a.Shape(), b.Shape()
	if a.Dims() != 2 || b.Dims() != 2 {
		return nil, fmt.Errorf("layers: %s: shapes %s and %s, want two matrices", name, shapeStr(as), shapeStr(bs))
	}
	op := fmMulOp{kind: kind, a: []int{as[0], as[1]}, b: []int{bs[0], bs[1]}}
	var ok bool
	switch kind {
	case mmNN:
		op.m, op.n, op.k, ok = as[0], bs[1], as[1], as[1] == bs[0]
	case mmNT:
		op.m, op.n, op.k, ok = as[0], bs[0], as[1], as[1] == bs[1]
	case mmTN:
		op.m, op.n, op.k, ok = as[1], bs[1], as[0], as[0] == bs[0]
	}
	if !ok {
		return nil, fmt.Errorf("layers: %s: shapes %s and %s do not multiply", name, shapeStr(as), shapeStr(bs))
	}
	return G.ApplyOp(op, a, b)
}

// fmMulOp (feature-major product) computes the (m, n) product with inner dimension k.
type fmMulOp struct {
	kind    mmKind
	a, b    []int
	m, n, k int
}

func (op fmMulOp) Arity() int    { return 2 }
func (op fmMulOp) Type() hm.Type { return fnType(2, 2, 2) }
func (op fmMulOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 2, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], op.a); err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 1, s[1], op.b); err != nil {
		return nil, err
	}
	return tensor.Shape{op.m, op.n}, nil
}
func (op fmMulOp) Do(vals ...G.Value) (G.Value, error) {
	d, err := argData(op.String(), 2, vals)
	if err != nil {
		return nil, err
	}
	out := newValue(dtypeOf(d[0]), []int{op.m, op.n})
	switch a := d[0].(type) {
	case []float32:
		fmMulInto(op, outData(out).([]float32), a, d[1].([]float32))
	case []float64:
		fmMulInto(op, outData(out).([]float64), a, d[1].([]float64))
	}
	return out, nil
}

func fmMulInto[T float](op fmMulOp, c, a, b []T) {
	switch op.kind {
	case mmNN:
		mulABSet(op.m, op.n, op.k, a, b, c)
	case mmNT:
		mulABt(op.m, op.k, op.n, a, b, c) // c is zero: accumulating sets it
	case mmTN:
		mulAtB(op.k, op.n, op.m, a, b, c)
	}
}

func (op fmMulOp) ReturnsPtr() bool     { return true }
func (op fmMulOp) CallsExtern() bool    { return false }
func (op fmMulOp) OverwritesInput() int { return -1 }
func (op fmMulOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.%s|%v|%v", op.String(), op.a, op.b)
}
func (op fmMulOp) Hashcode() uint32   { return hash32(op) }
func (op fmMulOp) String() string     { return mmNames[op.kind] }
func (op fmMulOp) DiffWRT(int) []bool { return []bool{true, true} }
func (op fmMulOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	a, b := in[0], in[1]
	type pair struct {
		kind mmKind
		x, y *G.Node
	}
	var da, db pair
	switch op.kind {
	case mmNN: // C = A·B: dA = g·Bᵀ, dB = Aᵀ·g
		da, db = pair{mmNT, grad, b}, pair{mmTN, a, grad}
	case mmNT: // C = A·Bᵀ: dA = g·B, dB = gᵀ·A
		da, db = pair{mmNN, grad, b}, pair{mmTN, grad, a}
	case mmTN: // C = Aᵀ·B: dA = B·gᵀ, dB = A·g
		da, db = pair{mmNT, b, grad}, pair{mmNN, a, grad}
	}
	ga, err := applyFMMul(da.kind, da.x, da.y)
	if err != nil {
		return nil, err
	}
	gb, err := applyFMMul(db.kind, db.x, db.y)
	if err != nil {
		return nil, err
	}
	return G.Nodes{ga, gb}, nil
}
