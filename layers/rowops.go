package layers

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Row ops act on feature-major (M, N) matrices — one row per feature, one column per sample or block —
// with a per-row vector. They follow the op-kit contract of ops.go.

// RowBias is x (M, N) + b (M) broadcast along the columns, without materialising the broadcast. Its
// gradients are g with respect to x and Σ_n g with respect to b.
func RowBias(x, b *G.Node) (*G.Node, error) {
	return applyRowOp(rowOp{add: true}, x, b)
}

// RowScale is x (M, N) ⊙ s (M) broadcast along the columns. Its gradients are RowScale(g, s) with respect
// to x and Σ_n g ⊙ x with respect to s.
func RowScale(x, s *G.Node) (*G.Node, error) {
	return applyRowOp(rowOp{}, x, s)
}

func applyRowOp(op rowOp, x, v *G.Node) (*G.Node, error) {
	name := op.String()
	if err := checkNode(name, x, 2); err != nil {
		return nil, err
	}
	if err := checkNode(name, v, 1); err != nil {
		return nil, err
	}
	if err := sameDtype(name, x, v); err != nil {
		return nil, err
	}
	xs, vs := []int(x.Shape()), []int(v.Shape())
	if len(xs) != 2 || len(vs) != 1 || vs[0] != xs[0] {
		return nil, fmt.Errorf("layers: %s: x has shape %s and the row vector %s, want (M,N) and (M)", name, shapeStr(xs), shapeStr(vs))
	}
	op.m, op.n = xs[0], xs[1]
	return G.ApplyOp(op, x, v)
}

type rowOp struct {
	add  bool
	m, n int
}

func (op rowOp) Arity() int    { return 2 }
func (op rowOp) Type() hm.Type { return fnType(2, 2, 1) }
func (op rowOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 2, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 0, s[0], []int{op.m, op.n}); err != nil {
		return nil, err
	}
	if err := checkShape(op.String(), 1, s[1], []int{op.m}); err != nil {
		return nil, err
	}
	return tensor.Shape{op.m, op.n}, nil
}
func (op rowOp) Do(vals ...G.Value) (G.Value, error) {
	d, err := argData(op.String(), 2, vals)
	if err != nil {
		return nil, err
	}
	out := newValue(dtypeOf(d[0]), []int{op.m, op.n})
	switch x := d[0].(type) {
	case []float64:
		rowApply(outData(out).([]float64), x, d[1].([]float64), op.n, op.add)
	case []float32:
		rowApply(outData(out).([]float32), x, d[1].([]float32), op.n, op.add)
	}
	return out, nil
}

func rowApply[T float](dst, x, v []T, n int, add bool) {
	for r, c := range v {
		d, s := dst[r*n:(r+1)*n], x[r*n:(r+1)*n]
		if add {
			for j := range d {
				d[j] = s[j] + c
			}
		} else {
			for j := range d {
				d[j] = s[j] * c
			}
		}
	}
}

func (op rowOp) ReturnsPtr() bool     { return true }
func (op rowOp) CallsExtern() bool    { return false }
func (op rowOp) OverwritesInput() int { return -1 }
func (op rowOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.%s|%d|%d", op.String(), op.m, op.n)
}
func (op rowOp) Hashcode() uint32 { return hash32(op) }
func (op rowOp) String() string {
	if op.add {
		return "RowBias"
	}
	return "RowScale"
}
func (op rowOp) DiffWRT(int) []bool { return []bool{true, true} }
func (op rowOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if op.add {
		gb, err := SumAxis(grad, 1)
		if err != nil {
			return nil, err
		}
		return G.Nodes{grad, gb}, nil
	}
	gx, err := RowScale(grad, in[1])
	if err != nil {
		return nil, err
	}
	gxs, err := G.HadamardProd(grad, in[0])
	if err != nil {
		return nil, err
	}
	gs, err := SumAxis(gxs, 1)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx, gs}, nil
}
