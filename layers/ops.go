package layers

// The safe op kit: custom Gorgonia ops that replace the library's broken or aliasing ones
// (listed under "Gorgonia pitfalls" in the package doc).
//
// Every op here follows the same contract:
//   - it implements G.Op and G.SDOp and is applied with G.ApplyOp;
//   - every parameter (shapes, axes, index tables) goes into WriteHash, so Gorgonia's node de-duplication
//     only merges truly identical applications;
//   - Do returns a freshly allocated value and never writes to its inputs (OverwritesInput() = -1), so no
//     later in-place op can corrupt an input through an alias;
//   - the gradient is built in SymDiff out of other ops of this kit (or Gorgonia's elementwise ops, which are
//     second-order correct), so the gradient graph is itself differentiable: second order works once the
//     derivative bookkeeping is cleared between G.Grad calls (see Grad);
//   - float32 and float64 are both supported; user errors (bad axis, out-of-range index, size mismatch) are
//     returned with the op name and the offending shape, never panicked.

import (
	"fmt"
	"strings"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// shapeStr formats a shape as "(2,3,4)".
func shapeStr(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// typeOfDims is the Hindley–Milner type of a value with d dimensions (a bare dtype for d = 0).
func typeOfDims(d int) hm.Type {
	if d == 0 {
		return hm.TypeVariable('a')
	}
	return G.TensorType{Dims: d, Of: hm.TypeVariable('a')}
}

// fnType builds the type of an op with inputs of the given ranks and an output of rank out.
func fnType(out int, in ...int) hm.Type {
	ts := make([]hm.Type, 0, len(in)+1)
	for _, d := range in {
		ts = append(ts, typeOfDims(d))
	}
	ts = append(ts, typeOfDims(out))
	return hm.NewFnType(ts...)
}

// checkNode validates that x is a float32/float64 node of rank ≥ minRank.
func checkNode(op string, x *G.Node, minRank int) error {
	if x == nil {
		return fmt.Errorf("layers: %s: nil node", op)
	}
	dt := x.Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return fmt.Errorf("layers: %s: %v has dtype %v, want float32 or float64", op, x.Name(), dt)
	}
	if x.Dims() < minRank {
		return fmt.Errorf("layers: %s: %v has shape %s, want at least %d dimensions", op, x.Name(), shapeStr(x.Shape()), minRank)
	}
	return nil
}

// checkAxis validates axis against shape.
func checkAxis(op string, shape []int, axis int) error {
	if axis < 0 || axis >= len(shape) {
		return fmt.Errorf("layers: %s: axis %d out of range for shape %s", op, axis, shapeStr(shape))
	}
	return nil
}

// splitAxis returns the products of the dimensions before and after axis.
func splitAxis(shape []int, axis int) (outer, n, inner int) {
	outer, inner = 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	return outer, shape[axis], inner
}

func prod(s []int) int {
	p := 1
	for _, d := range s {
		p *= d
	}
	return p
}

// valueData returns the contiguous backing data of a float tensor or scalar value ([]float32 or []float64).
// Views (for example from Gorgonia's Slice) are materialised first, so the data is always in row-major order.
func valueData(v G.Value) (any, error) {
	switch t := v.(type) {
	case *tensor.Dense:
		if t.IsView() {
			m, ok := t.Materialize().(*tensor.Dense)
			if !ok {
				return nil, fmt.Errorf("layers: cannot materialise view %v", t.Shape())
			}
			t = m
		}
		// Float32s/Float64s return the backing slice without the reflection (and allocation) of Data().
		if !t.IsScalar() {
			switch t.Dtype() {
			case tensor.Float64:
				return t.Float64s(), nil
			case tensor.Float32:
				return t.Float32s(), nil
			}
		}
		switch d := t.Data().(type) {
		case []float64, []float32:
			return d, nil
		case float64:
			return []float64{d}, nil
		case float32:
			return []float32{d}, nil
		}
		return nil, fmt.Errorf("layers: unsupported tensor data %T", t.Data())
	case *G.F64:
		return []float64{float64(*t)}, nil
	case *G.F32:
		return []float32{float32(*t)}, nil
	}
	return nil, fmt.Errorf("layers: unsupported value %T", v)
}

// newValue allocates a zeroed value of the given dtype and shape (a scalar for an empty shape).
func newValue(dt tensor.Dtype, shape []int) G.Value { return newValueIn(nil, dt, shape) }

// newValueIn is newValue drawing tensors from an arena (nil: allocated afresh).
func newValueIn(ar *Arena, dt tensor.Dtype, shape []int) G.Value {
	if len(shape) == 0 {
		if dt == tensor.Float32 {
			return G.NewF32(0)
		}
		return G.NewF64(0)
	}
	return ar.dense(dt, shape)
}

// outData is the writable data of a value made by newValue.
func outData(v G.Value) any {
	switch t := v.(type) {
	case *tensor.Dense:
		switch t.Dtype() { // the typed accessors do not box the slice (Data does, allocating)
		case tensor.Float32:
			return t.Float32s()
		case tensor.Float64:
			return t.Float64s()
		}
		return t.Data()
	case *G.F64:
		return unsafe.Slice((*float64)(t), 1)
	case *G.F32:
		return unsafe.Slice((*float32)(t), 1)
	}
	panic(fmt.Sprintf("layers: outData: unexpected %T", v))
}

// dtypeOf returns the float dtype of a data slice from valueData.
func dtypeOf(d any) tensor.Dtype {
	if _, ok := d.([]float32); ok {
		return tensor.Float32
	}
	return tensor.Float64
}

// argData fetches the data of the inputs of a Do call, checking the count and that all share one dtype.
// It boxes each slice into an interface (a few small allocations per call); the kit's hot ops use
// getArgs/newOut instead, which allocate nothing but the output.
func argData(op string, n int, vals []G.Value) ([]any, error) {
	if len(vals) != n {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want %d", op, len(vals), n)
	}
	out := make([]any, n)
	for i, v := range vals {
		d, err := valueData(v)
		if err != nil {
			return nil, fmt.Errorf("layers: %s: input %d: %w", op, i, err)
		}
		out[i] = d
		if i > 0 && dtypeOf(d) != dtypeOf(out[0]) {
			return nil, fmt.Errorf("layers: %s: input %d has dtype %v, input 0 has %v", op, i, dtypeOf(d), dtypeOf(out[0]))
		}
	}
	return out, nil
}

// floatArgs holds the inputs of a Do call as typed slices, without boxing them into interfaces (the hot
// ops allocate nothing but their output). Exactly one of f64 / f32 is filled, according to is32.
type floatArgs struct {
	is32 bool
	f64  [3][]float64
	f32  [3][]float32
}

// getArgs fetches up to three float inputs of one dtype, checking the count and each input's size.
func getArgs(op string, vals []G.Value, sizes ...int) (a floatArgs, err error) {
	if len(vals) != len(sizes) {
		return a, fmt.Errorf("layers: %s: got %d inputs, want %d", op, len(vals), len(sizes))
	}
	for i, v := range vals {
		var n int
		switch t := v.(type) {
		case *tensor.Dense:
			if t.IsView() {
				m, ok := t.Materialize().(*tensor.Dense)
				if !ok {
					return a, fmt.Errorf("layers: %s: input %d: cannot materialise view %v", op, i, t.Shape())
				}
				t = m
			}
			switch t.Dtype() {
			case tensor.Float64:
				a.f64[i] = t.Float64s()
				n = len(a.f64[i])
			case tensor.Float32:
				a.f32[i] = t.Float32s()
				n = len(a.f32[i])
				if i == 0 {
					a.is32 = true
				}
			default:
				return a, fmt.Errorf("layers: %s: input %d has dtype %v, want float32 or float64", op, i, t.Dtype())
			}
		case *G.F64:
			a.f64[i] = []float64{float64(*t)}
			n = 1
		case *G.F32:
			a.f32[i] = []float32{float32(*t)}
			n = 1
			if i == 0 {
				a.is32 = true
			}
		default:
			return a, fmt.Errorf("layers: %s: input %d: unsupported value %T", op, i, v)
		}
		if (a.f32[i] != nil) != a.is32 {
			return a, fmt.Errorf("layers: %s: input %d has a different dtype from input 0", op, i)
		}
		if n != sizes[i] {
			return a, fmt.Errorf("layers: %s: input %d has %d elements, want %d", op, i, n, sizes[i])
		}
	}
	return a, nil
}

// newOut allocates a zeroed output of the args' dtype and returns it with its typed data.
func newOut(is32 bool, shape []int) (G.Value, []float64, []float32) {
	return newOutIn(nil, is32, shape)
}

// newOutIn is newOut drawing tensors from an arena (nil: allocated afresh).
func newOutIn(ar *Arena, is32 bool, shape []int) (G.Value, []float64, []float32) {
	return outIn(ar, is32, shape, true)
}

// newOutDirtyIn is newOutIn for an op that writes every element of its output: a tensor reused from the
// arena keeps the values of its last use instead of being cleared first (a pass over memory saved; the
// gathers, scatters and reshapes between the RG levels clear and rewrite megabytes per step otherwise).
func newOutDirtyIn(ar *Arena, is32 bool, shape []int) (G.Value, []float64, []float32) {
	return outIn(ar, is32, shape, false)
}

func outIn(ar *Arena, is32 bool, shape []int, zero bool) (G.Value, []float64, []float32) {
	if is32 {
		if len(shape) == 0 {
			v := G.NewF32(0)
			return v, nil, unsafe.Slice((*float32)(v), 1)
		}
		t := ar.take(tensor.Float32, shape, zero)
		return t, nil, t.Float32s()
	}
	if len(shape) == 0 {
		v := G.NewF64(0)
		return v, unsafe.Slice((*float64)(v), 1), nil
	}
	t := ar.take(tensor.Float64, shape, zero)
	return t, t.Float64s(), nil
}

// sameDtype checks that all nodes share x's dtype.
func sameDtype(op string, nodes ...*G.Node) error {
	for _, n := range nodes[1:] {
		if n.Dtype() != nodes[0].Dtype() {
			return fmt.Errorf("layers: %s: %v has dtype %v but %v has %v (no implicit promotion)", op, n.Name(), n.Dtype(), nodes[0].Name(), nodes[0].Dtype())
		}
	}
	return nil
}

// nodeShapes returns the shapes the op's InferShape receives.
func nodeShapes(op string, want int, ds []G.DimSizer) ([]tensor.Shape, error) {
	if len(ds) != want {
		return nil, fmt.Errorf("layers: %s: got %d inputs, want %d", op, len(ds), want)
	}
	s, err := G.DimSizersToShapes(ds)
	if err != nil {
		return nil, fmt.Errorf("layers: %s: %w", op, err)
	}
	return s, nil
}

func checkShape(op string, i int, got, want []int) error {
	if len(got) != len(want) {
		return fmt.Errorf("layers: %s: input %d has shape %s, want %s", op, i, shapeStr(got), shapeStr(want))
	}
	for k := range got {
		if got[k] != want[k] {
			return fmt.Errorf("layers: %s: input %d has shape %s, want %s", op, i, shapeStr(got), shapeStr(want))
		}
	}
	return nil
}

// Reshape copies x into a new node of the given shape (same total size). Use it instead of G.Reshape and
// G.Ravel, which alias their input (Gorgonia pitfall 1 in the package doc). Its gradient is the reshape back.
func Reshape(x *G.Node, shape ...int) (*G.Node, error) { return reshapeIn(nil, x, shape...) }

// reshapeIn is Reshape with its output (and its gradient's) drawn from an arena.
func reshapeIn(ar *Arena, x *G.Node, shape ...int) (*G.Node, error) {
	if err := checkNode("Reshape", x, 0); err != nil {
		return nil, err
	}
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("layers: Reshape: non-positive dimension in target shape %s", shapeStr(shape))
		}
	}
	in := []int(x.Shape())
	if prod(in) != prod(shape) {
		return nil, fmt.Errorf("layers: Reshape: %v has shape %s (%d elements), cannot reshape to %s (%d elements)",
			x.Name(), shapeStr(in), prod(in), shapeStr(shape), prod(shape))
	}
	return G.ApplyOp(reshapeOp{in: append([]int(nil), in...), out: append([]int(nil), shape...), ar: ar}, x)
}

// Roll is numpy.roll along one axis, periodic: out[..., i, ...] = x[..., (i-shift) mod n, ...]. Any shift,
// negative or larger than the axis, is allowed. Its gradient is the roll by -shift.
func Roll(x *G.Node, axis, shift int) (*G.Node, error) {
	if err := checkNode("Roll", x, 1); err != nil {
		return nil, err
	}
	in := []int(x.Shape())
	if err := checkAxis("Roll", in, axis); err != nil {
		return nil, err
	}
	n := in[axis]
	s := ((shift % n) + n) % n
	a := make([]int, n)
	for i := range a {
		a[i] = (i - s + n) % n
	}
	m := newAxisMap(fmt.Sprintf("Roll(axis=%d,shift=%d)", axis, s), in, axis, a)
	return G.ApplyOp(mapOp{m: m}, x)
}

// Narrow keeps indices [start, start+length) along axis. Unlike Gorgonia's Slice, the result keeps every
// dimension (a length of 1 stays 1). Its gradient pads the removed part with zeros.
func Narrow(x *G.Node, axis, start, length int) (*G.Node, error) {
	return narrowIn(nil, x, axis, start, length)
}

// narrowIn is Narrow with its output (and its gradient's) drawn from an arena.
func narrowIn(ar *Arena, x *G.Node, axis, start, length int) (*G.Node, error) {
	if err := checkNode("Narrow", x, 1); err != nil {
		return nil, err
	}
	in := []int(x.Shape())
	if err := checkAxis("Narrow", in, axis); err != nil {
		return nil, err
	}
	if start < 0 || length <= 0 || start+length > in[axis] {
		return nil, fmt.Errorf("layers: Narrow: range [%d,%d) out of bounds for axis %d of shape %s",
			start, start+length, axis, shapeStr(in))
	}
	a := make([]int, length)
	for i := range a {
		a[i] = start + i
	}
	m := newAxisMap(fmt.Sprintf("Narrow(axis=%d,start=%d,len=%d)", axis, start, length), in, axis, a)
	return G.ApplyOp(mapOp{m: m, ar: ar}, x)
}

// Pad adds before and after zeros along axis (every dimension is kept). Its gradient narrows back.
func Pad(x *G.Node, axis, before, after int) (*G.Node, error) {
	return pad("Pad", x, axis, before, after, false)
}

// PadPeriodic is Pad with periodic wrap-around instead of zeros: the new entries before the start are the
// last `before` entries along axis, those after the end the first `after` entries (repeated as often as
// needed when before or after exceed the axis length). Its gradient adds the wrapped parts back.
func PadPeriodic(x *G.Node, axis, before, after int) (*G.Node, error) {
	return pad("PadPeriodic", x, axis, before, after, true)
}

func pad(op string, x *G.Node, axis, before, after int, periodic bool) (*G.Node, error) {
	if err := checkNode(op, x, 1); err != nil {
		return nil, err
	}
	in := []int(x.Shape())
	if err := checkAxis(op, in, axis); err != nil {
		return nil, err
	}
	if before < 0 || after < 0 {
		return nil, fmt.Errorf("layers: %s: negative padding (%d, %d) on axis %d of shape %s", op, before, after, axis, shapeStr(in))
	}
	n := in[axis]
	a := make([]int, before+n+after)
	for i := range a {
		k := i - before
		switch {
		case periodic:
			a[i] = ((k % n) + n) % n
		case k < 0 || k >= n:
			a[i] = -1
		default:
			a[i] = k
		}
	}
	m := newAxisMap(fmt.Sprintf("%s(axis=%d,before=%d,after=%d)", op, axis, before, after), in, axis, a)
	return G.ApplyOp(mapOp{m: m}, x)
}
