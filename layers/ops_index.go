package layers

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"slices"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// indexMap is a fixed linear index map from an input of shape in to an output of shape out:
//
//	out.flat[o·outStride + j] = in.flat[o·inStride + tab[j]]   (0 where tab[j] < 0)
//
// for every slab o < outer. Roll, Narrow, Pad, PadPeriodic, Gather and the masks of ScatterReplace are all
// index maps; the adjoint of the gather is the scatter-add with the same table, and the adjoint of that is
// the gather again, so gradients of any order stay inside this one pair of ops. Tables are built once, at
// graph construction, and shared by the forward and backward ops; they are never mutated.
type indexMap struct {
	name                       string
	in, out                    []int
	outer, inStride, outStride int
	tab                        []int32  // len outStride; -1 = zero
	runs                       []idxRun // contiguous-run form of tab, used when runs are long
	hasZero                    bool     // some tab entry is -1
	injective                  bool     // no input index appears twice (scatter can assign instead of add)
	covering                   bool     // injective, and every input index of a slab appears (a permutation)
	key                        uint64   // FNV-64 of everything above, for WriteHash
}

// idxRun is a contiguous piece of a table: out[dst+t] = in[src+t] for t < n (src < 0: zeros).
type idxRun struct{ dst, src, n int32 }

// minRunMean is the mean run length from which copying runs beats the per-element loop. Measured on a
// roll by 1 of 65536 float32 (runs of L−1 and 1): at mean 8 (L = 16) the per-element loop takes 40 µs and
// the runs 60–90 µs; at mean 16 (L = 32) 62 µs against 28 µs.
const minRunMean = 16

// newIndexMap builds a map; tab has one entry per output element of a slab. It panics on inconsistent
// arguments: callers validate user input first.
func newIndexMap(name string, in, out []int, outer int, tab []int) *indexMap {
	inSize, outSize := prod(in), prod(out)
	if outer <= 0 || inSize%outer != 0 || outSize%outer != 0 || len(tab) != outSize/outer {
		panic(fmt.Sprintf("layers: indexMap %s: inconsistent outer %d for %s → %s with %d table entries", name, outer, shapeStr(in), shapeStr(out), len(tab)))
	}
	if inSize > math.MaxInt32 || outSize > math.MaxInt32 {
		panic(fmt.Sprintf("layers: indexMap %s: tensor larger than 2³¹ elements", name))
	}
	m := &indexMap{
		name: name, in: append([]int(nil), in...), out: append([]int(nil), out...),
		outer: outer, inStride: inSize / outer, outStride: outSize / outer,
		tab: make([]int32, len(tab)), injective: true,
	}
	seen := make([]bool, m.inStride)
	for j, k := range tab {
		if k >= m.inStride {
			panic(fmt.Sprintf("layers: indexMap %s: table entry %d = %d out of range %d", name, j, k, m.inStride))
		}
		m.tab[j] = int32(k)
		if k < 0 {
			m.hasZero = true
			m.tab[j] = -1
			continue
		}
		if seen[k] {
			m.injective = false
		}
		seen[k] = true
	}
	m.covering = m.injective && !slices.Contains(seen, false)
	// Run-length form.
	var runs []idxRun
	for j := 0; j < len(m.tab); {
		r := idxRun{dst: int32(j), src: m.tab[j], n: 1}
		for j+int(r.n) < len(m.tab) {
			next := m.tab[j+int(r.n)]
			if (r.src < 0 && next < 0) || (r.src >= 0 && next == r.src+r.n) {
				r.n++
				continue
			}
			break
		}
		runs = append(runs, r)
		j += int(r.n)
	}
	if len(m.tab) >= minRunMean*len(runs) {
		m.runs = runs
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%v|%v|%d|", name, in, out, outer)
	_ = binary.Write(h, binary.LittleEndian, m.tab)
	m.key = h.Sum64()
	return m
}

// newAxisMap is the map out[..., i, ...] = x[..., a[i], ...] (zero where a[i] < 0) along axis.
func newAxisMap(name string, in []int, axis int, a []int) *indexMap {
	outer, n, inner := splitAxis(in, axis)
	out := append([]int(nil), in...)
	out[axis] = len(a)
	tab := make([]int, len(a)*inner)
	for i, k := range a {
		for r := 0; r < inner; r++ {
			if k < 0 {
				tab[i*inner+r] = -1
			} else {
				tab[i*inner+r] = k*inner + r
			}
		}
	}
	_ = n
	return newIndexMap(name, in, out, outer, tab)
}

// newFlatMap is the map out.flat[j] = in.flat[idx[j]]. When the index list repeats with a constant offset
// for every index of in's first axis (as a batch-major block gather does), the table is stored once per
// batch entry: 1 KB instead of 256 KB for a (256,1,16,16) field. That saves memory, not time: the kernel
// runs at the same ~0.4 ns/element either way (BenchmarkGatherKernel), streaming a table being cheap.
func newFlatMap(name string, in, out []int, idx []int) *indexMap {
	if len(in) > 0 {
		if b := in[0]; b > 1 && len(idx)%b == 0 {
			inS, outS := prod(in)/b, len(idx)/b
			ok := true
			for o := 1; o < b && ok; o++ {
				for j := 0; j < outS; j++ {
					if idx[o*outS+j] != idx[j]+o*inS {
						ok = false
						break
					}
				}
			}
			if ok {
				return newIndexMap(name, in, out, b, idx[:outS])
			}
		}
	}
	return newIndexMap(name, in, out, 1, idx)
}

type float interface{ ~float32 | ~float64 }

// gatherInto computes dst = map(src); dst must be zeroed where the table has zeros.
func gatherInto[T float](dst, src []T, m *indexMap) {
	for o := 0; o < m.outer; o++ {
		d := dst[o*m.outStride : (o+1)*m.outStride]
		s := src[o*m.inStride : (o+1)*m.inStride]
		switch {
		case m.runs != nil:
			for _, r := range m.runs {
				if r.src >= 0 {
					copy(d[r.dst:r.dst+r.n], s[r.src:r.src+r.n])
				}
			}
		case m.hasZero:
			for j, k := range m.tab {
				if k >= 0 {
					d[j] = s[k]
				}
			}
		default:
			d = d[:len(m.tab)]
			for j, k := range m.tab {
				d[j] = s[k]
			}
		}
	}
}

// scatterInto computes dst = mapᵀ(src) (dst has the map's input shape and must be zeroed) when add is
// true; with add false it assigns dst[tab[j]] = src[j] over whatever dst holds (for injective maps).
func scatterInto[T float](dst, src []T, m *indexMap, add bool) {
	for o := 0; o < m.outer; o++ {
		d := dst[o*m.inStride : (o+1)*m.inStride]
		s := src[o*m.outStride : (o+1)*m.outStride]
		switch {
		case m.runs != nil:
			for _, r := range m.runs {
				if r.src < 0 {
					continue
				}
				dd, ss := d[r.src:r.src+r.n], s[r.dst:r.dst+r.n]
				if add {
					for t := range dd {
						dd[t] += ss[t]
					}
				} else {
					copy(dd, ss)
				}
			}
		case add:
			s = s[:len(m.tab)]
			for j, k := range m.tab {
				if k >= 0 {
					d[k] += s[j]
				}
			}
		default:
			s = s[:len(m.tab)]
			for j, k := range m.tab {
				if k >= 0 {
					d[k] = s[j]
				}
			}
		}
	}
}

// mapOp applies an indexMap (adj false: gather, in → out) or its adjoint (adj true: scatter-add, out → in).
type mapOp struct {
	m   *indexMap
	adj bool
	ar  *Arena // where outputs come from (nil: allocated afresh); not part of the op's identity
}

func (op mapOp) shapes() (from, to []int) {
	if op.adj {
		return op.m.out, op.m.in
	}
	return op.m.in, op.m.out
}

func (op mapOp) Arity() int { return 1 }
func (op mapOp) Type() hm.Type {
	from, to := op.shapes()
	return fnType(len(to), len(from))
}
func (op mapOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 1, ds)
	if err != nil {
		return nil, err
	}
	from, to := op.shapes()
	if err := checkShape(op.String(), 0, s[0], from); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), to...)), nil
}
func (op mapOp) Do(vals ...G.Value) (G.Value, error) {
	from, to := op.m.outer*op.m.inStride, op.m.out
	if op.adj {
		from, to = op.m.outer*op.m.outStride, op.m.in
	}
	a, err := getArgs(op.m.name, vals, from)
	if err != nil {
		return nil, err
	}
	// A gather writes every output element unless the map has zeros; a scatter assigns every input element
	// when the map is a permutation; otherwise the output starts from zeros.
	writesAll := !op.adj && !op.m.hasZero || op.adj && op.m.covering
	out, o64, o32 := outIn(op.ar, a.is32, to, !writesAll)
	switch {
	case a.is32 && op.adj:
		scatterInto(o32, a.f32[0], op.m, !op.m.injective)
	case a.is32:
		gatherInto(o32, a.f32[0], op.m)
	case op.adj:
		scatterInto(o64, a.f64[0], op.m, !op.m.injective)
	default:
		gatherInto(o64, a.f64[0], op.m)
	}
	return out, nil
}
func (op mapOp) ReturnsPtr() bool     { return true }
func (op mapOp) CallsExtern() bool    { return false }
func (op mapOp) OverwritesInput() int { return -1 }
func (op mapOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.map|%s|%v|%x", op.m.name, op.adj, op.m.key)
}
func (op mapOp) Hashcode() uint32 { return hash32(op) }
func (op mapOp) String() string {
	if op.adj {
		return op.m.name + "ᵀ"
	}
	return op.m.name
}
func (op mapOp) DiffWRT(int) []bool { return []bool{true} }
func (op mapOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(mapOp{m: op.m, adj: !op.adj, ar: op.ar}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// hash32 is the Hashcode of an op from its WriteHash.
func hash32(op G.Op) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// reshapeOp copies its input into a new tensor of another shape.
type reshapeOp struct {
	in, out []int
	ar      *Arena // where outputs come from (nil: allocated afresh)
}

func (op reshapeOp) Arity() int    { return 1 }
func (op reshapeOp) Type() hm.Type { return fnType(len(op.out), len(op.in)) }
func (op reshapeOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes("Reshape", 1, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape("Reshape", 0, s[0], op.in); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), op.out...)), nil
}
func (op reshapeOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs("Reshape", vals, prod(op.in))
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOutDirtyIn(op.ar, a.is32, op.out) // every element copied below
	copy(o64, a.f64[0])
	copy(o32, a.f32[0])
	return out, nil
}
func (op reshapeOp) ReturnsPtr() bool      { return true }
func (op reshapeOp) CallsExtern() bool     { return false }
func (op reshapeOp) OverwritesInput() int  { return -1 }
func (op reshapeOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "rgflow.reshape|%v|%v", op.in, op.out) }
func (op reshapeOp) Hashcode() uint32      { return hash32(op) }
func (op reshapeOp) String() string        { return "Reshape" + shapeStr(op.out) }
func (op reshapeOp) DiffWRT(int) []bool    { return []bool{true} }
func (op reshapeOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(reshapeOp{in: op.out, out: op.in, ar: op.ar}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// checkIndices validates a flat index list against a tensor of size n.
func checkIndices(op string, idx []int, shape []int, distinct bool) error {
	n := prod(shape)
	var seen []bool
	if distinct {
		seen = make([]bool, n)
	}
	for j, k := range idx {
		if k < 0 || k >= n {
			return fmt.Errorf("layers: %s: index %d (position %d) out of range for shape %s (%d elements)", op, k, j, shapeStr(shape), n)
		}
		if distinct {
			if seen[k] {
				return fmt.Errorf("layers: %s: index %d repeated (position %d); indices must be distinct", op, k, j)
			}
			seen[k] = true
		}
	}
	return nil
}

// Gather returns a node of the given shape with out.flat[j] = x.flat[idx[j]] for a fixed index list (a
// permutation, a subset, or with repeats). The index table is built once here; the gradient is the
// scatter-add of the output gradient back to x's shape (repeated indices accumulate).
//
// When idx repeats with a constant offset for each index along x's first axis (every batch entry gathered
// the same way, batch-major output), only one batch entry's table is stored. Do allocates only the output.
func Gather(x *G.Node, idx []int, shape ...int) (*G.Node, error) {
	return gatherIn(nil, x, idx, shape...)
}

// gatherIn is Gather with its output (and its gradient's) drawn from an arena.
func gatherIn(ar *Arena, x *G.Node, idx []int, shape ...int) (*G.Node, error) {
	if err := checkNode("Gather", x, 1); err != nil {
		return nil, err
	}
	if len(shape) == 0 {
		return nil, fmt.Errorf("layers: Gather: empty output shape")
	}
	if prod(shape) != len(idx) {
		return nil, fmt.Errorf("layers: Gather: output shape %s has %d elements but %d indices were given", shapeStr(shape), prod(shape), len(idx))
	}
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("layers: Gather: non-positive dimension in output shape %s", shapeStr(shape))
		}
	}
	in := []int(x.Shape())
	if err := checkIndices("Gather", idx, in, false); err != nil {
		return nil, err
	}
	m := newFlatMap("Gather", in, shape, idx)
	return G.ApplyOp(mapOp{m: m, ar: ar}, x)
}

// ScatterReplace returns a node of x's shape equal to x except out.flat[idx[j]] = y.flat[j]. The entries
// of idx must be distinct and len(idx) must equal y's size. Gradients: with respect to x, the output
// gradient with the idx positions zeroed; with respect to y, the output gradient gathered at idx.
// It is the inverse of Gather for a block layer: gather blocks, transform them, scatter them back.
func ScatterReplace(x, y *G.Node, idx []int) (*G.Node, error) {
	return scatterReplaceIn(nil, x, y, idx)
}

// scatterReplaceIn is ScatterReplace with its output (and its gradients') drawn from an arena.
func scatterReplaceIn(ar *Arena, x, y *G.Node, idx []int) (*G.Node, error) {
	if err := checkNode("ScatterReplace", x, 1); err != nil {
		return nil, err
	}
	if err := checkNode("ScatterReplace", y, 1); err != nil {
		return nil, err
	}
	if err := sameDtype("ScatterReplace", x, y); err != nil {
		return nil, err
	}
	in, ys := []int(x.Shape()), []int(y.Shape())
	if prod(ys) != len(idx) {
		return nil, fmt.Errorf("layers: ScatterReplace: y has shape %s (%d elements) but %d indices were given", shapeStr(ys), prod(ys), len(idx))
	}
	if err := checkIndices("ScatterReplace", idx, in, true); err != nil {
		return nil, err
	}
	m := newFlatMap("ScatterGather", in, ys, idx)
	mask := make([]int, prod(in))
	for i := range mask {
		mask[i] = i
	}
	for _, k := range idx {
		mask[k] = -1
	}
	mk := newFlatMap("ScatterMask", in, in, mask)
	return G.ApplyOp(scatterReplaceOp{m: m, mask: mk, ar: ar}, x, y)
}

// scatterReplaceOp: out = x with out[idx] = y. m maps x's shape to y's (the gather at idx); mask zeroes idx.
type scatterReplaceOp struct {
	m, mask *indexMap
	ar      *Arena // where outputs come from (nil: allocated afresh)
}

func (op scatterReplaceOp) Arity() int    { return 2 }
func (op scatterReplaceOp) Type() hm.Type { return fnType(len(op.m.in), len(op.m.in), len(op.m.out)) }
func (op scatterReplaceOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes("ScatterReplace", 2, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape("ScatterReplace", 0, s[0], op.m.in); err != nil {
		return nil, err
	}
	if err := checkShape("ScatterReplace", 1, s[1], op.m.out); err != nil {
		return nil, err
	}
	return tensor.Shape(append([]int(nil), op.m.in...)), nil
}
func (op scatterReplaceOp) Do(vals ...G.Value) (G.Value, error) {
	nx, ny := op.m.outer*op.m.inStride, op.m.outer*op.m.outStride
	a, err := getArgs("ScatterReplace", vals, nx, ny)
	if err != nil {
		return nil, err
	}
	// Every element is written below (x copied, then y assigned), so the output need not start from zeros.
	out, o64, o32 := newOutDirtyIn(op.ar, a.is32, op.m.in)
	full := nx == ny // distinct indices covering every element: nothing of x survives
	if a.is32 {
		if !full {
			copy(o32, a.f32[0])
		}
		scatterInto(o32, a.f32[1], op.m, false)
	} else {
		if !full {
			copy(o64, a.f64[0])
		}
		scatterInto(o64, a.f64[1], op.m, false)
	}
	return out, nil
}
func (op scatterReplaceOp) ReturnsPtr() bool     { return true }
func (op scatterReplaceOp) CallsExtern() bool    { return false }
func (op scatterReplaceOp) OverwritesInput() int { return -1 }
func (op scatterReplaceOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.scatterReplace|%x|%x", op.m.key, op.mask.key)
}
func (op scatterReplaceOp) Hashcode() uint32   { return hash32(op) }
func (op scatterReplaceOp) String() string     { return "ScatterReplace" }
func (op scatterReplaceOp) DiffWRT(int) []bool { return []bool{true, true} }
func (op scatterReplaceOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	gx, err := G.ApplyOp(mapOp{m: op.mask, ar: op.ar}, grad)
	if err != nil {
		return nil, err
	}
	gy, err := G.ApplyOp(mapOp{m: op.m, ar: op.ar}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{gx, gy}, nil
}
