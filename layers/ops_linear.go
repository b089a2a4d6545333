package layers

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Affine is x·w + b for x (N, in), w (in, out), b (out), as one fused op: the output is filled with b and
// the GEMM accumulates onto it (β = 1), so there is no separate bias pass and no intermediate (N, out)
// tensor. The backward pass uses transposed GEMM flags instead of materialised transposes:
// ∂x = g·wᵀ, ∂w = xᵀ·g, ∂b = Σ_rows g; these are ops of the kit again, so Affine is second-order safe.
// It runs on the BLAS Gorgonia uses (G.Use / G.WhichBLAS). BenchmarkAffine compares it with G.Mul +
// BiasAdd (forward + backward, pure-Go BLAS): the CPU time is the same within noise where the GEMM
// dominates and up to ~10 % lower for many rows and few features (16384×2→10), with 18–22 % fewer bytes
// and ~50 fewer allocations per step, because there is no separate (N, out) product tensor. (It is the op the brief called Linear; that name belongs to the parameterised layer
// in mlp.go, which can call Affine.)
func Affine(x, w, b *G.Node) (*G.Node, error) {
	for _, n := range []*G.Node{x, w} {
		if err := checkNode("Affine", n, 2); err != nil {
			return nil, err
		}
	}
	if err := checkNode("Affine", b, 1); err != nil {
		return nil, err
	}
	if err := sameDtype("Affine", x, w, b); err != nil {
		return nil, err
	}
	xs, ws, bs := []int(x.Shape()), []int(w.Shape()), []int(b.Shape())
	if len(xs) != 2 || len(ws) != 2 || len(bs) != 1 || xs[1] != ws[0] || ws[1] != bs[0] {
		return nil, fmt.Errorf("layers: Affine: x %s, w %s, b %s; want (N,in), (in,out), (out)", shapeStr(xs), shapeStr(ws), shapeStr(bs))
	}
	return G.ApplyOp(linearOp{n: xs[0], in: xs[1], out: ws[1]}, x, w, b)
}

type linearOp struct{ n, in, out int }

func (op linearOp) Arity() int    { return 3 }
func (op linearOp) Type() hm.Type { return fnType(2, 2, 2, 1) }
func (op linearOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes("Affine", 3, ds)
	if err != nil {
		return nil, err
	}
	for i, want := range [][]int{{op.n, op.in}, {op.in, op.out}, {op.out}} {
		if err := checkShape("Affine", i, s[i], want); err != nil {
			return nil, err
		}
	}
	return tensor.Shape{op.n, op.out}, nil
}
func (op linearOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs("Affine", vals, op.n*op.in, op.in*op.out, op.out)
	if err != nil {
		return nil, err
	}
	out, c64, c32 := newOut(a.is32, []int{op.n, op.out})
	bl := G.WhichBLAS()
	if a.is32 {
		addRows(c32, nil, a.f32[2])
		bl.Sgemm(blas.NoTrans, blas.NoTrans, op.n, op.out, op.in, 1, a.f32[0], op.in, a.f32[1], op.out, 1, c32, op.out)
	} else {
		addRows(c64, nil, a.f64[2])
		bl.Dgemm(blas.NoTrans, blas.NoTrans, op.n, op.out, op.in, 1, a.f64[0], op.in, a.f64[1], op.out, 1, c64, op.out)
	}
	return out, nil
}
func (op linearOp) ReturnsPtr() bool     { return true }
func (op linearOp) CallsExtern() bool    { return false }
func (op linearOp) OverwritesInput() int { return -1 }
func (op linearOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.linear|%d|%d|%d", op.n, op.in, op.out)
}
func (op linearOp) Hashcode() uint32   { return hash32(op) }
func (op linearOp) String() string     { return "Affine" }
func (op linearOp) DiffWRT(int) []bool { return []bool{true, true, true} }
func (op linearOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	x, w := in[0], in[1]
	gx, err := matMul(grad, w, false, true) // (N,out)·(in,out)ᵀ
	if err != nil {
		return nil, err
	}
	gw, err := matMul(x, grad, true, false) // (N,in)ᵀ·(N,out)
	if err != nil {
		return nil, err
	}
	gb, err := G.ApplyOp(sumAxisOp{in: []int{op.n, op.out}, axis: 0}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx, gw, gb}, nil
}

// matMul is op(a)·op(b) with op = transpose where the flag is set, by one GEMM with transposition flags.
func matMul(a, b *G.Node, tA, tB bool) (*G.Node, error) {
	op := matMulOp{a: append([]int(nil), a.Shape()...), b: append([]int(nil), b.Shape()...), tA: tA, tB: tB}
	if len(op.a) != 2 || len(op.b) != 2 {
		return nil, fmt.Errorf("layers: matMul: shapes %s and %s, want matrices", shapeStr(op.a), shapeStr(op.b))
	}
	if _, k1, _ := op.dims(); op.inner2() != k1 {
		return nil, fmt.Errorf("layers: matMul: %s%s · %s%s: inner dimensions differ",
			shapeStr(op.a), tick(tA), shapeStr(op.b), tick(tB))
	}
	return G.ApplyOp(op, a, b)
}

func tick(t bool) string {
	if t {
		return "ᵀ"
	}
	return ""
}

type matMulOp struct {
	a, b   []int
	tA, tB bool
}

// dims returns (m, k, n) of op(a) (m×k) · op(b) (k×n).
func (op matMulOp) dims() (m, k, n int) {
	m, k = op.a[0], op.a[1]
	if op.tA {
		m, k = k, m
	}
	n = op.b[1]
	if op.tB {
		n = op.b[0]
	}
	return m, k, n
}

func (op matMulOp) inner2() int {
	if op.tB {
		return op.b[1]
	}
	return op.b[0]
}

func (op matMulOp) Arity() int    { return 2 }
func (op matMulOp) Type() hm.Type { return fnType(2, 2, 2) }
func (op matMulOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes("matMul", 2, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape("matMul", 0, s[0], op.a); err != nil {
		return nil, err
	}
	if err := checkShape("matMul", 1, s[1], op.b); err != nil {
		return nil, err
	}
	m, _, n := op.dims()
	return tensor.Shape{m, n}, nil
}
func (op matMulOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs("matMul", vals, prod(op.a), prod(op.b))
	if err != nil {
		return nil, err
	}
	m, k, n := op.dims()
	out, c64, c32 := newOut(a.is32, []int{m, n})
	ta, tb := blas.NoTrans, blas.NoTrans
	if op.tA {
		ta = blas.Trans
	}
	if op.tB {
		tb = blas.Trans
	}
	bl := G.WhichBLAS()
	if a.is32 {
		bl.Sgemm(ta, tb, m, n, k, 1, a.f32[0], op.a[1], a.f32[1], op.b[1], 0, c32, n)
	} else {
		bl.Dgemm(ta, tb, m, n, k, 1, a.f64[0], op.a[1], a.f64[1], op.b[1], 0, c64, n)
	}
	return out, nil
}
func (op matMulOp) ReturnsPtr() bool     { return true }
func (op matMulOp) CallsExtern() bool    { return false }
func (op matMulOp) OverwritesInput() int { return -1 }
func (op matMulOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.matMul|%v|%v|%v|%v", op.a, op.b, op.tA, op.tB)
}
func (op matMulOp) Hashcode() uint32   { return hash32(op) }
func (op matMulOp) String() string     { return "A" + tick(op.tA) + "×B" + tick(op.tB) }
func (op matMulOp) DiffWRT(int) []bool { return []bool{true, true} }
func (op matMulOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	a, b, g := in[0], in[1], grad
	var ga, gb *G.Node
	var err error
	switch {
	case !op.tA && !op.tB: // C = A·B: ∂A = G·Bᵀ, ∂B = Aᵀ·G
		if ga, err = matMul(g, b, false, true); err == nil {
			gb, err = matMul(a, g, true, false)
		}
	case !op.tA && op.tB: // C = A·Bᵀ: ∂A = G·B, ∂B = Gᵀ·A
		if ga, err = matMul(g, b, false, false); err == nil {
			gb, err = matMul(g, a, true, false)
		}
	case op.tA && !op.tB: // C = Aᵀ·B: ∂A = B·Gᵀ, ∂B = A·G
		if ga, err = matMul(b, g, false, true); err == nil {
			gb, err = matMul(a, g, false, false)
		}
	default: // C = Aᵀ·Bᵀ: ∂A = Bᵀ·Gᵀ, ∂B = Gᵀ·Aᵀ
		if ga, err = matMul(b, g, true, true); err == nil {
			gb, err = matMul(g, a, true, true)
		}
	}
	if err != nil {
		return nil, err
	}
	return G.Nodes{ga, gb}, nil
}
