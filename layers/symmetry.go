package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Lattice symmetries of (B, C, H, W) fields, site (i, j) = (row, column) = (axis 2, axis 3), periodic.
// Every transform has a host form (a new []float64 from a flat field) and a graph form (a node): the
// site permutations are index-map gathers (Gather), so their gradients are the scatter-adds and they
// differentiate to any order; the sign flip is G.Neg.
//
// The group they generate: translations T(dx, dy), the dihedral group D4 of the square (rotations by
// multiples of 90° about the centre of the array and reflections), and the global sign flip φ → −φ. D4
// elements rotate about the array's centre, as numpy's rot90 and flip do, so a zero-padded convolution
// with D4-symmetric kernels commutes with them; on a periodic lattice a rotation about another site
// differs from these by a translation.

// LatticeTransform is a symmetry transform of (B, C, H, W) fields.
type LatticeTransform interface {
	// Host returns the transformed copy of a flat, row-major field of the given shape.
	Host(x []float64, shape []int) ([]float64, error)
	// Graph returns the transformed node; x is (B, C, H, W).
	Graph(x *G.Node) (*G.Node, error)
	// Inverse is the inverse transform.
	Inverse() LatticeTransform
	String() string
}

// sitePerm is a transform given by a site permutation: out[b, c, i, j] = x[b, c, src(i, j)].
type sitePerm interface {
	// src returns the source site of output site (i, j) of an h×w field, and the output's h, w.
	src(i, j, h, w int) (int, int)
	check(h, w int) error
}

// hostPerm applies a site permutation on the host, with direct loops.
func hostPerm(p sitePerm, name string, x []float64, shape []int) ([]float64, error) {
	if len(shape) != 4 || prod(shape) != len(x) {
		return nil, fmt.Errorf("layers: %s: field of %d values with shape %v, want (B, C, H, W) of that size", name, len(x), shape)
	}
	h, w := shape[2], shape[3]
	if err := p.check(h, w); err != nil {
		return nil, err
	}
	out := make([]float64, len(x))
	for bc := 0; bc < shape[0]*shape[1]; bc++ {
		base := bc * h * w
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				si, sj := p.src(i, j, h, w)
				out[base+i*w+j] = x[base+si*w+sj]
			}
		}
	}
	return out, nil
}

// graphPerm applies a site permutation as one Gather (its table is stored once per batch entry).
func graphPerm(p sitePerm, name string, x *G.Node) (*G.Node, error) {
	if err := checkNode(name, x, 4); err != nil {
		return nil, err
	}
	shape := []int(x.Shape())
	if len(shape) != 4 {
		return nil, fmt.Errorf("layers: %s: input has shape %s, want (B, C, H, W)", name, shapeStr(shape))
	}
	h, w := shape[2], shape[3]
	if err := p.check(h, w); err != nil {
		return nil, err
	}
	idx := make([]int, prod(shape))
	for bc := 0; bc < shape[0]*shape[1]; bc++ {
		base := bc * h * w
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				si, sj := p.src(i, j, h, w)
				idx[base+i*w+j] = base + si*w + sj
			}
		}
	}
	return Gather(x, idx, shape...)
}

// Translation shifts a field periodically by DX rows and DY columns:
//
//	out[b, c, i, j] = x[b, c, (i − DX) mod H, (j − DY) mod W],
//
// the same as Roll(x, 2, DX) followed by Roll(·, 3, DY). Any integers are allowed.
type Translation struct{ DX, DY int }

func (t Translation) src(i, j, h, w int) (int, int) {
	return ((i-t.DX)%h + h) % h, ((j-t.DY)%w + w) % w
}
func (t Translation) check(h, w int) error { return nil }

// Host translates a flat (B, C, H, W) field.
func (t Translation) Host(x []float64, shape []int) ([]float64, error) {
	return hostPerm(t, t.String(), x, shape)
}

// Graph translates a (B, C, H, W) node.
func (t Translation) Graph(x *G.Node) (*G.Node, error) { return graphPerm(t, t.String(), x) }

// Inverse is the translation by (−DX, −DY).
func (t Translation) Inverse() LatticeTransform { return Translation{-t.DX, -t.DY} }

func (t Translation) String() string { return fmt.Sprintf("Translation(%d,%d)", t.DX, t.DY) }

// D4 is an element of the dihedral group of the square, r^Rot·m^Flip: first the mirror m (when Flip),
// out[i, j] = x[i, W−1−j], then Rot quarter turns r, each out[i, j] = x[j, L−1−i] (numpy's rot90 on
// axes (2, 3): counter-clockwise when row 0 is drawn at the top). Rot is taken mod 4. Odd Rot needs
// H = W. The group law is Mul, with m·r = r⁻¹·m.
type D4 struct {
	Rot  int
	Flip bool
}

// D4Group lists the 8 elements: r⁰…r³, then r⁰m…r³m.
func D4Group() []D4 {
	g := make([]D4, 0, 8)
	for _, f := range []bool{false, true} {
		for r := 0; r < 4; r++ {
			g = append(g, D4{Rot: r, Flip: f})
		}
	}
	return g
}

func (d D4) norm() D4 { return D4{Rot: ((d.Rot % 4) + 4) % 4, Flip: d.Flip} }

// Mul is the composition d∘e: apply e first, then d. With m·r^k = r^(−k)·m,
// r^a m^f · r^b m^g = r^(a ± b) m^(f⊕g), minus when f.
func (d D4) Mul(e D4) D4 {
	d, e = d.norm(), e.norm()
	b := e.Rot
	if d.Flip {
		b = -b
	}
	return D4{Rot: d.Rot + b, Flip: d.Flip != e.Flip}.norm()
}

// Inv is the inverse element: r^(−a), or r^a m itself for a reflection.
func (d D4) Inv() D4 {
	d = d.norm()
	if d.Flip {
		return d
	}
	return D4{Rot: -d.Rot}.norm()
}

// src composes the source maps: out = r^Rot(m^Flip x), so out[p] = (m x)[ρ(p)] = x[μ(ρ(p))], where ρ is
// the source map of Rot quarter turns and μ that of the mirror.
func (d D4) src(i, j, h, w int) (int, int) {
	d = d.norm()
	switch d.Rot { // ρ^Rot with ρ(i, j) = (j, L−1−i), one quarter turn; L = h = w when Rot is odd
	case 1:
		i, j = j, h-1-i
	case 2:
		i, j = h-1-i, w-1-j
	case 3:
		i, j = h-1-j, i
	}
	if d.Flip {
		j = w - 1 - j
	}
	return i, j
}

func (d D4) check(h, w int) error {
	if d.norm().Rot%2 == 1 && h != w {
		return fmt.Errorf("layers: %s: a quarter turn needs a square lattice, have %d×%d", d, h, w)
	}
	return nil
}

// Host applies the element to a flat (B, C, H, W) field.
func (d D4) Host(x []float64, shape []int) ([]float64, error) {
	return hostPerm(d, d.String(), x, shape)
}

// Graph applies the element to a (B, C, H, W) node.
func (d D4) Graph(x *G.Node) (*G.Node, error) { return graphPerm(d, d.String(), x) }

// Inverse is Inv as a LatticeTransform.
func (d D4) Inverse() LatticeTransform { return d.Inv() }

func (d D4) String() string {
	d = d.norm()
	if d.Flip {
		return fmt.Sprintf("D4(r^%d·m)", d.Rot)
	}
	return fmt.Sprintf("D4(r^%d)", d.Rot)
}

// SignFlip is the global Z₂ transform φ → −φ.
type SignFlip struct{}

// Host negates a flat field (any shape).
func (SignFlip) Host(x []float64, shape []int) ([]float64, error) {
	if prod(shape) != len(x) {
		return nil, fmt.Errorf("layers: SignFlip: field of %d values with shape %v", len(x), shape)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = -v
	}
	return out, nil
}

// Graph negates a node.
func (SignFlip) Graph(x *G.Node) (*G.Node, error) { return G.Neg(x) }

// Inverse is SignFlip itself.
func (SignFlip) Inverse() LatticeTransform { return SignFlip{} }

func (SignFlip) String() string { return "SignFlip" }

// Sequence applies its transforms in order (the first one first).
type Sequence []LatticeTransform

// Host applies every transform in order.
func (s Sequence) Host(x []float64, shape []int) ([]float64, error) {
	var err error
	for _, t := range s {
		if x, err = t.Host(x, shape); err != nil {
			return nil, err
		}
	}
	if len(s) == 0 {
		x = append([]float64(nil), x...)
	}
	return x, nil
}

// Graph applies every transform in order.
func (s Sequence) Graph(x *G.Node) (*G.Node, error) {
	var err error
	for _, t := range s {
		if x, err = t.Graph(x); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// Inverse applies the inverses in reverse order.
func (s Sequence) Inverse() LatticeTransform {
	inv := make(Sequence, len(s))
	for i, t := range s {
		inv[len(s)-1-i] = t.Inverse()
	}
	return inv
}

func (s Sequence) String() string { return fmt.Sprint([]LatticeTransform(s)) }

// TransformDense applies g to a host tensor (float32 or float64, shape (B, C, H, W) for the site
// permutations) and returns a new tensor of the same dtype and shape.
func TransformDense(g LatticeTransform, t *tensor.Dense) (*tensor.Dense, error) {
	if t == nil {
		return nil, fmt.Errorf("layers: TransformDense: nil tensor")
	}
	if dt := t.Dtype(); dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, fmt.Errorf("layers: TransformDense: dtype %v, want float32 or float64", dt)
	}
	y, err := g.Host(Float64s(t), t.Shape())
	if err != nil {
		return nil, err
	}
	return NewDense(t.Dtype(), t.Shape(), y), nil
}

// D4Transforms is D4Group as LatticeTransforms (for Symmetrize).
func D4Transforms() []LatticeTransform {
	var ts []LatticeTransform
	for _, d := range D4Group() {
		ts = append(ts, d)
	}
	return ts
}

// Z2Transforms is the sign-flip group {identity, φ → −φ} (for Symmetrize: an odd network).
func Z2Transforms() []LatticeTransform { return []LatticeTransform{Sequence{}, SignFlip{}} }

// Symmetrize averages a field-to-field network over a finite group of lattice transforms,
//
//	f_sym(x) = (1/|G|) Σ_g g⁻¹ f(g x),
//
// which is exactly G-equivariant, f_sym(h x) = h f_sym(x) for h in G, if group is closed under
// composition (D4Transforms, Z2Transforms; with D4 on a square lattice). x is (B, C, H, W); f must map
// (|G|·B, C, H, W) to (|G|·B, C', H, W) sample by sample: the transformed copies are stacked along the
// batch and f is built once, so it runs as one larger batch with shared parameters.
func Symmetrize(x *G.Node, group []LatticeTransform, f func(*G.Node) (*G.Node, error)) (*G.Node, error) {
	return symmetrize(x, group, f, false)
}

// SymmetrizeInvariant is Symmetrize for a network whose output is invariant (a (|G|·B, …) per-sample
// value: an action, a log-density): f_sym(x) = (1/|G|) Σ_g f(g x).
func SymmetrizeInvariant(x *G.Node, group []LatticeTransform, f func(*G.Node) (*G.Node, error)) (*G.Node, error) {
	return symmetrize(x, group, f, true)
}

func symmetrize(x *G.Node, group []LatticeTransform, f func(*G.Node) (*G.Node, error), invariant bool) (*G.Node, error) {
	if err := checkNode("Symmetrize", x, 4); err != nil {
		return nil, err
	}
	if len(group) == 0 {
		return nil, fmt.Errorf("layers: Symmetrize: empty group")
	}
	b := x.Shape()[0]
	copies := make([]*G.Node, len(group))
	for k, g := range group {
		var err error
		if copies[k], err = g.Graph(x); err != nil {
			return nil, fmt.Errorf("layers: Symmetrize: %v: %w", g, err)
		}
	}
	stacked := copies[0]
	if len(copies) > 1 {
		var err error
		if stacked, err = G.Concat(0, copies...); err != nil {
			return nil, err
		}
	}
	y, err := f(stacked)
	if err != nil {
		return nil, err
	}
	if y.Dims() < 1 || y.Shape()[0] != len(group)*b {
		return nil, fmt.Errorf("layers: Symmetrize: network output has shape %s, want %d·%d samples first", shapeStr(y.Shape()), len(group), b)
	}
	var sum *G.Node
	for k, g := range group {
		yk, err := Narrow(y, 0, k*b, b)
		if err != nil {
			return nil, err
		}
		if !invariant {
			if yk, err = g.Inverse().Graph(yk); err != nil {
				return nil, fmt.Errorf("layers: Symmetrize: inverse of %v on the output: %w", g, err)
			}
		}
		if sum == nil {
			sum = yk
		} else if sum, err = G.Add(sum, yk); err != nil {
			return nil, err
		}
	}
	return G.Mul(sum, scalarLike(x, 1/float64(len(group))))
}
