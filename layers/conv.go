package layers

import (
	"fmt"
	"hash"
	"math"
	"math/rand/v2"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The convolution family: 2-D convolutions on (B, C, H, W) tensors with weights (Cout, Cin, kh, kw),
// written as three bilinear ops that are each other's derivatives,
//
//	F(x, w)  = conv(x, w)                      (B,Cin,H,W) × (Cout,Cin,kh,kw) → (B,Cout,Ho,Wo)
//	T(g, w)  = the adjoint of F in x            (B,Cout,Ho,Wo) × (Cout,Cin,kh,kw) → (B,Cin,H,W)
//	Wg(x, g) = the adjoint of F in w            (B,Cin,H,W) × (B,Cout,Ho,Wo) → (Cout,Cin,kh,kw)
//
// with ⟨g, F(x,w)⟩ = ⟨T(g,w), x⟩ = ⟨Wg(x,g), w⟩. Differentiating any of them gives the others again:
// ∂F = (T(G,w), Wg(x,G)), ∂T = (F(U,w), Wg(U,g)), ∂Wg = (T(g,V), F(x,V)), so the whole family is
// differentiable to any order. A bias is fused into F; its gradient is a channel sum whose own gradient is
// the broadcast back (chanSumOp, both directions).
//
// Geometry: out[n,o,y,x] = Σ_{i,a,c} w[o,i,a,c] · x[n, i, s·y + d·a − ph, s·x + d·c − pw] with
// ph = d·(kh−1)/2, pw = d·(kw−1)/2 (odd kernels), so a stride-1 conv keeps H×W. Periodic padding wraps
// the indices modulo H and W (any H, W; with stride s they must be multiples of s, Ho = H/s); zero padding
// treats them as 0 outside (Ho = ⌈H/s⌉, as PyTorch's Conv2d(padding=d(k−1)/2, stride=s)).

// Padding selects how a convolution treats indices outside the H×W grid.
type Padding uint8

const (
	// Periodic wraps indices around (a torus: lattice fields). It is the zero value.
	Periodic Padding = iota
	// Zero treats values outside the grid as 0 (images).
	Zero
)

func (p Padding) String() string {
	switch p {
	case Periodic:
		return "periodic"
	case Zero:
		return "zero"
	}
	return fmt.Sprintf("Padding(%d)", uint8(p))
}

// ConvOpts are the geometry options of a convolution. The zero value is a periodic, stride-1,
// dilation-1 convolution.
type ConvOpts struct {
	Pad      Padding
	Stride   int // 1 (or 0) keeps H×W; 2 halves it
	Dilation int // d ≥ 1 (0 means 1): kernel taps d apart, padding d·(k−1)/2
}

func (o ConvOpts) norm() ConvOpts {
	if o.Stride == 0 {
		o.Stride = 1
	}
	if o.Dilation == 0 {
		o.Dilation = 1
	}
	return o
}

// convGeom is the full geometry of one convolution F: (b,cin,h,w) → (b,cout,ho,wo).
type convGeom struct {
	b, cin, cout int
	h, w, ho, wo int
	kh, kw       int
	stride, dil  int
	periodic     bool
}

func (g convGeom) ph() int { return g.dil * (g.kh - 1) / 2 }
func (g convGeom) pw() int { return g.dil * (g.kw - 1) / 2 }

func (g convGeom) xShape() []int { return []int{g.b, g.cin, g.h, g.w} }
func (g convGeom) yShape() []int { return []int{g.b, g.cout, g.ho, g.wo} }
func (g convGeom) wShape() []int { return []int{g.cout, g.cin, g.kh, g.kw} }

func (g convGeom) String() string {
	pad := "zero"
	if g.periodic {
		pad = "periodic"
	}
	return fmt.Sprintf("%s|b%d|%d→%d|%dx%d→%dx%d|k%dx%d|s%d|d%d", pad, g.b, g.cin, g.cout, g.h, g.w, g.ho, g.wo, g.kh, g.kw, g.stride, g.dil)
}

// outSize is the output length of one spatial axis of length n.
func outSize(n, stride int, periodic bool) int {
	if periodic {
		return n / stride
	}
	return (n-1)/stride + 1
}

// newConvGeom validates the options and the kernel against a spatial size h×w.
func newConvGeom(op string, b, cin, cout, h, w, kh, kw int, o ConvOpts) (convGeom, error) {
	o = o.norm()
	if o.Pad != Periodic && o.Pad != Zero {
		return convGeom{}, fmt.Errorf("layers: %s: unknown padding %v", op, o.Pad)
	}
	if o.Stride < 1 || o.Dilation < 1 {
		return convGeom{}, fmt.Errorf("layers: %s: stride %d and dilation %d, want ≥ 1", op, o.Stride, o.Dilation)
	}
	if kh%2 == 0 || kw%2 == 0 || kh < 1 || kw < 1 {
		return convGeom{}, fmt.Errorf("layers: %s: kernel %d×%d, want odd sizes (1, 3, 5, …)", op, kh, kw)
	}
	if b < 1 || cin < 1 || cout < 1 || h < 1 || w < 1 {
		return convGeom{}, fmt.Errorf("layers: %s: empty dimension (batch %d, channels %d→%d, size %d×%d)", op, b, cin, cout, h, w)
	}
	periodic := o.Pad == Periodic
	if periodic && (h%o.Stride != 0 || w%o.Stride != 0) {
		return convGeom{}, fmt.Errorf("layers: %s: periodic convolution with stride %d needs H and W divisible by it, got %d×%d", op, o.Stride, h, w)
	}
	return convGeom{b: b, cin: cin, cout: cout, h: h, w: w, ho: outSize(h, o.Stride, periodic), wo: outSize(w, o.Stride, periodic),
		kh: kh, kw: kw, stride: o.Stride, dil: o.Dilation, periodic: periodic}, nil
}

func check4D(op string, x *G.Node, what string) error {
	if err := checkNode(op, x, 4); err != nil {
		return err
	}
	if x.Dims() != 4 {
		return fmt.Errorf("layers: %s: %s %v has shape %s, want 4 dimensions", op, what, x.Name(), shapeStr(x.Shape()))
	}
	return nil
}

// Conv2D is the convolution of x (B, Cin, H, W) with w (Cout, Cin, kh, kw) (odd kh, kw): the output is
// (B, Cout, Ho, Wo) with Ho×Wo = H×W for stride 1 and halved for stride 2 (see ConvOpts). It is
// differentiable to any order in x and w (the gradients are ConvTranspose-type and weight-correlation ops
// of the same family).
func Conv2D(x, w *G.Node, opts ConvOpts) (*G.Node, error) {
	return conv2D(nil, "Conv2D", x, w, nil, opts)
}

// Conv2DBias is Conv2D plus a per-output-channel bias b (Cout), fused into the same pass.
func Conv2DBias(x, w, b *G.Node, opts ConvOpts) (*G.Node, error) {
	if err := checkNode("Conv2DBias", b, 1); err != nil {
		return nil, err
	}
	return conv2D(nil, "Conv2DBias", x, w, b, opts)
}

// conv2D builds F; its output, and those of its derivatives, come from ar (nil: allocated afresh).
func conv2D(ar *Arena, op string, x, w, b *G.Node, opts ConvOpts) (*G.Node, error) {
	if err := check4D(op, x, "input"); err != nil {
		return nil, err
	}
	if err := check4D(op, w, "weight"); err != nil {
		return nil, err
	}
	nodes := []*G.Node{x, w}
	if b != nil {
		nodes = append(nodes, b)
	}
	if err := sameDtype(op, nodes...); err != nil {
		return nil, err
	}
	xs, ws := x.Shape(), w.Shape()
	if xs[1] != ws[1] {
		return nil, fmt.Errorf("layers: %s: input %v has %d channels but weight %v %s wants %d", op, x.Name(), xs[1], w.Name(), shapeStr(ws), ws[1])
	}
	g, err := newConvGeom(op, xs[0], ws[1], ws[0], xs[2], xs[3], ws[2], ws[3], opts)
	if err != nil {
		return nil, err
	}
	if b != nil {
		if b.Dims() != 1 || b.Shape()[0] != g.cout {
			return nil, fmt.Errorf("layers: %s: bias %v has shape %s, want (%d)", op, b.Name(), shapeStr(b.Shape()), g.cout)
		}
	}
	return G.ApplyOp(convOp{kind: convFwd, g: g, bias: b != nil, ar: ar, sc: scratchFor(ar)}, nodes...)
}

// ConvTranspose2D is the transposed (fractionally strided) convolution, PyTorch's ConvTranspose2d with
// padding d·(k−1)/2 and output_padding s−1: x (B, Cin, H, W) and w (Cin, Cout, kh, kw) give
// (B, Cout, s·H, s·W). It is exactly the adjoint (in its input) of Conv2D(·, w, opts) mapping
// (B, Cout, s·H, s·W) to (B, Cin, H, W); with Stride 2 it up-samples. Differentiable to any order.
func ConvTranspose2D(x, w *G.Node, opts ConvOpts) (*G.Node, error) {
	return convTranspose2D(nil, x, w, opts)
}

func convTranspose2D(ar *Arena, x, w *G.Node, opts ConvOpts) (*G.Node, error) {
	const op = "ConvTranspose2D"
	if err := check4D(op, x, "input"); err != nil {
		return nil, err
	}
	if err := check4D(op, w, "weight"); err != nil {
		return nil, err
	}
	if err := sameDtype(op, x, w); err != nil {
		return nil, err
	}
	xs, ws := x.Shape(), w.Shape()
	if xs[1] != ws[0] {
		return nil, fmt.Errorf("layers: %s: input %v has %d channels but weight %v %s wants %d", op, x.Name(), xs[1], w.Name(), shapeStr(ws), ws[0])
	}
	s := opts.norm().Stride
	if s < 1 {
		return nil, fmt.Errorf("layers: %s: stride %d, want ≥ 1", op, s)
	}
	// The adjoint of F: (B, Cout, sH, sW) → (B, Cin, H, W) with weight (Cin, Cout, kh, kw).
	g, err := newConvGeom(op, xs[0], ws[1], ws[0], s*xs[2], s*xs[3], ws[2], ws[3], opts)
	if err != nil {
		return nil, err
	}
	if g.ho != xs[2] || g.wo != xs[3] {
		return nil, fmt.Errorf("layers: %s: internal geometry %v does not invert to %d×%d", op, g, xs[2], xs[3])
	}
	return G.ApplyOp(convOp{kind: convBwdData, g: g, ar: ar, sc: scratchFor(ar)}, x, w)
}

// convKind selects one of the three bilinear ops of the family.
type convKind uint8

const (
	convFwd       convKind = iota // F(x, w [, b])
	convBwdData                   // T(g, w)
	convBwdWeight                 // Wg(x, g)
)

var convNames = [...]string{"Conv2D", "ConvBwdData", "ConvBwdWeight"}

// convOp is one of F, T, Wg for a fixed geometry g (always that of the forward convolution F).
type convOp struct {
	kind convKind
	g    convGeom
	bias bool   // F only: a third input b (Cout)
	ar   *Arena // where outputs come from (nil: afresh); not part of the op's identity
	// working memory kept from call to call (ops built with an arena; nil: allocated per call); not part of
	// the op's identity
	sc *convScratch
}

// scratchFor is the working memory of a new op: kept when it has an arena (one machine at a time).
func scratchFor(ar *Arena) *convScratch {
	if ar == nil {
		return nil
	}
	return newConvScratch()
}

func (op convOp) Arity() int {
	if op.bias {
		return 3
	}
	return 2
}
func (op convOp) Type() hm.Type {
	if op.bias {
		return fnType(4, 4, 4, 1)
	}
	return fnType(4, 4, 4)
}

// shapes returns the input shapes and the output shape.
func (op convOp) shapes() (in [][]int, out []int) {
	g := op.g
	switch op.kind {
	case convFwd:
		in = [][]int{g.xShape(), g.wShape()}
		if op.bias {
			in = append(in, []int{g.cout})
		}
		return in, g.yShape()
	case convBwdData:
		return [][]int{g.yShape(), g.wShape()}, g.xShape()
	default:
		return [][]int{g.xShape(), g.yShape()}, g.wShape()
	}
}

func (op convOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	in, out := op.shapes()
	return inferFixed(op.String(), op.Arity(), ds, in, out)
}

// inferFixed is the InferShape of an op whose inputs must have the shapes in and whose output has shape
// out.
func inferFixed(name string, arity int, ds []G.DimSizer, in [][]int, out []int) (tensor.Shape, error) {
	s, err := nodeShapes(name, arity, ds)
	if err != nil {
		return nil, err
	}
	for i := range in {
		if err := checkShape(name, i, s[i], in[i]); err != nil {
			return nil, err
		}
	}
	return tensor.Shape(append([]int(nil), out...)), nil
}

// argsOfShapes is getArgs for inputs of the given shapes.
func argsOfShapes(name string, vals []G.Value, in [][]int) (floatArgs, error) {
	sizes := make([]int, len(in))
	for i, s := range in {
		sizes[i] = prod(s)
	}
	return getArgs(name, vals, sizes...)
}

func (op convOp) Do(vals ...G.Value) (G.Value, error) {
	in, outShape := op.shapes()
	return runConvLike(op.String(), vals, in, outShape, op.ar, op.writesAll(),
		func(in [3][]float32, out []float32) { convDo(op, in, out) },
		func(in [3][]float64, out []float64) { convDo(op, in, out) })
}

// runConvLike is the Do of the convolution ops: it gathers the inputs of the given shapes, draws the
// output of shape outShape from the arena (uncleared when the code path writes every element) and runs
// the float32 or float64 kernel on them.
func runConvLike(name string, vals []G.Value, in [][]int, outShape []int, ar *Arena, writesAll bool,
	run32 func(in [3][]float32, out []float32), run64 func(in [3][]float64, out []float64)) (G.Value, error) {
	a, err := argsOfShapes(name, vals, in)
	if err != nil {
		return nil, err
	}
	var (
		out G.Value
		o64 []float64
		o32 []float32
	)
	if writesAll {
		out, o64, o32 = newOutSetIn(ar, a.is32, outShape)
	} else {
		out, o64, o32 = newOutIn(ar, a.is32, outShape)
	}
	if a.is32 {
		run32(a.f32, o32)
	} else {
		run64(a.f64, o64)
	}
	return out, nil
}

// writesAll reports whether the code path that will run sets every element of the output (rather than
// adding to a zeroed one): the AVX-512 forward pass (its kernels start at the bias and store), the input
// gradient of a stride-1 convolution (a forward pass) and the weight gradient with the vector kernels
// (copied out of their sums). Those outputs may come from the arena uncleared.
func (op convOp) writesAll() bool {
	switch op.kind {
	case convFwd:
		return hasConvAVX512
	case convBwdData:
		return hasConvAVX512 && op.g.stride == 1
	default:
		return hasConvAVX512 || hasConvAVX2
	}
}

// newOutSetIn is newOutIn for outputs whose every element the op writes: a tensor recycled from the
// arena is not cleared first.
func newOutSetIn(ar *Arena, is32 bool, shape []int) (G.Value, []float64, []float32) {
	if ar == nil || len(shape) == 0 {
		return newOutIn(ar, is32, shape)
	}
	if is32 {
		t := ar.denseDirty(tensor.Float32, shape)
		return t, nil, t.Float32s()
	}
	t := ar.denseDirty(tensor.Float64, shape)
	return t, t.Float64s(), nil
}

func convDo[T float](op convOp, in [3][]T, out []T) {
	op.sc.begin()
	switch op.kind {
	case convFwd:
		convForwardPlan(op.sc, op.g, op.sc.plan(op.g), in[0], in[1], in[2], out)
	case convBwdData:
		convBackwardDataS(op.sc, op.g, in[0], in[1], out)
	case convBwdWeight:
		convBackwardWeightS(op.sc, op.g, in[0], in[1], out)
	}
}

func (op convOp) ReturnsPtr() bool     { return true }
func (op convOp) CallsExtern() bool    { return false }
func (op convOp) OverwritesInput() int { return -1 }
func (op convOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.conv|%d|%v|%v", op.kind, op.g, op.bias)
}
func (op convOp) Hashcode() uint32 { return hash32(op) }
func (op convOp) String() string   { return convNames[op.kind] + "(" + op.g.String() + ")" }
func (op convOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}
func (op convOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	g := op.g
	apply := func(kind convKind, a, b *G.Node) (*G.Node, error) {
		return G.ApplyOp(convOp{kind: kind, g: g, ar: op.ar, sc: scratchFor(op.ar)}, a, b)
	}
	var d0, d1 *G.Node
	var err error
	switch op.kind {
	case convFwd: // y = F(x, w): ∂x = T(G, w), ∂w = Wg(x, G)
		if d0, err = apply(convBwdData, grad, in[1]); err == nil {
			d1, err = apply(convBwdWeight, in[0], grad)
		}
	case convBwdData: // u = T(gy, w): ∂gy = F(U, w), ∂w = Wg(U, gy)
		if d0, err = apply(convFwd, grad, in[1]); err == nil {
			d1, err = apply(convBwdWeight, grad, in[0])
		}
	case convBwdWeight: // v = Wg(x, gy): ∂x = T(gy, V), ∂gy = F(x, V)
		if d0, err = apply(convBwdData, in[1], grad); err == nil {
			d1, err = apply(convFwd, in[0], grad)
		}
	}
	if err != nil {
		return nil, err
	}
	if !op.bias {
		return G.Nodes{d0, d1}, nil
	}
	db, err := G.ApplyOp(chanSumOp{b: g.b, c: g.cout, h: g.ho, w: g.wo}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d0, d1, db}, nil
}

// chanSumOp sums (B, C, H, W) over B, H and W to (C); with expand it is the adjoint, the broadcast of
// (C) to (B, C, H, W). Each is the other's gradient.
type chanSumOp struct {
	b, c, h, w int
	expand     bool
}

func (op chanSumOp) big() []int { return []int{op.b, op.c, op.h, op.w} }
func (op chanSumOp) Arity() int { return 1 }
func (op chanSumOp) Type() hm.Type {
	if op.expand {
		return fnType(4, 1)
	}
	return fnType(1, 4)
}
func (op chanSumOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 1, ds)
	if err != nil {
		return nil, err
	}
	if op.expand {
		if err := checkShape(op.String(), 0, s[0], []int{op.c}); err != nil {
			return nil, err
		}
		return tensor.Shape(op.big()), nil
	}
	if err := checkShape(op.String(), 0, s[0], op.big()); err != nil {
		return nil, err
	}
	return tensor.Shape{op.c}, nil
}
func (op chanSumOp) Do(vals ...G.Value) (G.Value, error) {
	hw := op.h * op.w
	if op.expand {
		a, err := getArgs(op.String(), vals, op.c)
		if err != nil {
			return nil, err
		}
		out, o64, o32 := newOut(a.is32, op.big())
		if a.is32 {
			chanExpand(o32, a.f32[0], op.b, op.c, hw)
		} else {
			chanExpand(o64, a.f64[0], op.b, op.c, hw)
		}
		return out, nil
	}
	a, err := getArgs(op.String(), vals, prod(op.big()))
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, []int{op.c})
	if a.is32 {
		chanSum(o32, a.f32[0], op.b, op.c, hw)
	} else {
		chanSum(o64, a.f64[0], op.b, op.c, hw)
	}
	return out, nil
}

// chanSum adds Σ_{n, pixels} x[n, o, ·] to dst[o]: each plane summed as a dot product with ones (the
// vector dot kernel's independent partial sums instead of one serial chain of adds).
func chanSum[T float](dst, x []T, b, c, hw int) {
	ones := make([]T, hw)
	fill(ones, 1)
	for n := 0; n < b; n++ {
		for o := 0; o < c; o++ {
			dst[o] += dot(x[(n*c+o)*hw:(n*c+o+1)*hw], ones)
		}
	}
}
func chanExpand[T float](dst, v []T, b, c, hw int) {
	for n := 0; n < b; n++ {
		for o := 0; o < c; o++ {
			fill(dst[(n*c+o)*hw:(n*c+o+1)*hw], v[o])
		}
	}
}
func (op chanSumOp) ReturnsPtr() bool     { return true }
func (op chanSumOp) CallsExtern() bool    { return false }
func (op chanSumOp) OverwritesInput() int { return -1 }
func (op chanSumOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.chanSum|%d|%d|%d|%d|%v", op.b, op.c, op.h, op.w, op.expand)
}
func (op chanSumOp) Hashcode() uint32 { return hash32(op) }
func (op chanSumOp) String() string {
	if op.expand {
		return "ChannelExpand"
	}
	return "ChannelSum"
}
func (op chanSumOp) DiffWRT(int) []bool { return []bool{true} }
func (op chanSumOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	adj := op
	adj.expand = !op.expand
	d, err := G.ApplyOp(adj, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}

// ChannelBias adds b (C) to every pixel of channel c of x (B, C, H, W). Its gradients are the output
// gradient (for x) and its sum over B, H, W (for b).
func ChannelBias(x, b *G.Node) (*G.Node, error) {
	const op = "ChannelBias"
	if err := check4D(op, x, "input"); err != nil {
		return nil, err
	}
	if err := checkNode(op, b, 1); err != nil {
		return nil, err
	}
	if err := sameDtype(op, x, b); err != nil {
		return nil, err
	}
	xs := x.Shape()
	if b.Dims() != 1 || b.Shape()[0] != xs[1] {
		return nil, fmt.Errorf("layers: %s: x has shape %s and b %s, want (B,C,H,W) and (C)", op, shapeStr(xs), shapeStr(b.Shape()))
	}
	e, err := G.ApplyOp(chanSumOp{b: xs[0], c: xs[1], h: xs[2], w: xs[3], expand: true}, b)
	if err != nil {
		return nil, err
	}
	return G.Add(x, e)
}

// Upsample2x repeats every pixel of x (B, C, H, W) into a 2×2 block: (B, C, 2H, 2W) (nearest-neighbour
// up-sampling). Its gradient is the 2×2 block sum, whose gradient is Upsample2x again.
func Upsample2x(x *G.Node) (*G.Node, error) { return upsample2xIn(nil, x) }

// upsample2xIn is Upsample2x with its output and its gradients drawn from ar.
func upsample2xIn(ar *Arena, x *G.Node) (*G.Node, error) {
	if err := check4D("Upsample2x", x, "input"); err != nil {
		return nil, err
	}
	s := x.Shape()
	return G.ApplyOp(upsampleOp{b: s[0], c: s[1], h: s[2], w: s[3], ar: ar}, x)
}

// upsampleOp is nearest-neighbour ×2 up-sampling of (b, c, h, w), or with adj its adjoint, the 2×2 block sum
// of (b, c, 2h, 2w) to (b, c, h, w).
type upsampleOp struct {
	b, c, h, w int
	adj        bool
	ar         *Arena // where outputs come from (nil: afresh); not part of the op's identity
}

func (op upsampleOp) small() []int { return []int{op.b, op.c, op.h, op.w} }
func (op upsampleOp) large() []int { return []int{op.b, op.c, 2 * op.h, 2 * op.w} }
func (op upsampleOp) Arity() int   { return 1 }
func (op upsampleOp) Type() hm.Type {
	return fnType(4, 4)
}
func (op upsampleOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 1, ds)
	if err != nil {
		return nil, err
	}
	in, out := op.small(), op.large()
	if op.adj {
		in, out = out, in
	}
	if err := checkShape(op.String(), 0, s[0], in); err != nil {
		return nil, err
	}
	return tensor.Shape(out), nil
}
func (op upsampleOp) Do(vals ...G.Value) (G.Value, error) {
	in, out := op.small(), op.large()
	if op.adj {
		in, out = out, in
	}
	a, err := getArgs(op.String(), vals, prod(in))
	if err != nil {
		return nil, err
	}
	res, o64, o32 := newOutSetIn(op.ar, a.is32, out) // every element is written
	if a.is32 {
		upsample2(o32, a.f32[0], op.b*op.c, op.h, op.w, op.adj)
	} else {
		upsample2(o64, a.f64[0], op.b*op.c, op.h, op.w, op.adj)
	}
	return res, nil
}

// upsample2 writes big (planes, 2h, 2w) from small (planes, h, w), or with adj sums big into small.
func upsample2[T float](dst, src []T, planes, h, w int, adj bool) {
	for p := 0; p < planes; p++ {
		for y := 0; y < h; y++ {
			srow := p*h*w + y*w
			b0 := p*4*h*w + 2*y*2*w
			b1 := b0 + 2*w
			if !adj {
				s, d0, d1 := src[srow:srow+w], dst[b0:b0+2*w], dst[b1:b1+2*w]
				for x, v := range s {
					d0[2*x], d0[2*x+1] = v, v
				}
				copy(d1, d0)
				continue
			}
			d, s0, s1 := dst[srow:srow+w], src[b0:b0+2*w], src[b1:b1+2*w]
			for x := range d {
				d[x] = s0[2*x] + s0[2*x+1] + s1[2*x] + s1[2*x+1]
			}
		}
	}
}
func (op upsampleOp) ReturnsPtr() bool     { return true }
func (op upsampleOp) CallsExtern() bool    { return false }
func (op upsampleOp) OverwritesInput() int { return -1 }
func (op upsampleOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.upsample2|%d|%d|%d|%d|%v", op.b, op.c, op.h, op.w, op.adj)
}
func (op upsampleOp) Hashcode() uint32 { return hash32(op) }
func (op upsampleOp) String() string {
	if op.adj {
		return "BlockSum2x"
	}
	return "Upsample2x"
}
func (op upsampleOp) DiffWRT(int) []bool { return []bool{true} }
func (op upsampleOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	adj := op
	adj.adj = !op.adj
	d, err := G.ApplyOp(adj, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}

// Conv is a parameterised convolution layer: weight "w" (Cout, Cin, k, k) and bias "b" (Cout) under
// scope/name. Transposed layers (NewConvTranspose) hold "w" (Cin, Cout, k, k) and up-sample by the stride.
type Conv struct {
	Name       string
	Cin, Cout  int
	K          int
	Opts       ConvOpts
	Transposed bool
	W, B       *G.Node
	ar         *Arena // the scope's arena at NewConv: the convolutions' outputs come from it
}

// ConvInit is the default weight initialisation of Conv layers: U(−a, a) with
// a = gain·√(6/(fanIn + fanOut)), fanIn = Cin·k², fanOut = Cout·k² (Glorot for convolutions).
func ConvInit(gain float64) Init {
	return func(rng *rand.Rand, shape []int, data []float64) {
		rf := 1
		for _, d := range shape[2:] {
			rf *= d
		}
		a := gain * math.Sqrt(6/float64((shape[0]+shape[1])*rf))
		for i := range data {
			data[i] = a * (2*rng.Float64() - 1)
		}
	}
}

// NewConv binds a convolution layer's parameters under s.Sub(name): w (cout, cin, k, k) with ConvInit(1)
// and b (cout) at zero. Apply it with (*Conv).Apply.
func NewConv(s *Scope, name string, cin, cout, k int, opts ConvOpts) (*Conv, error) {
	return newConvLayer(s, name, cin, cout, k, opts, false)
}

// NewConvTranspose binds a transposed convolution layer (ConvTranspose2D): w (cin, cout, k, k) with
// ConvInit(1) and b (cout) at zero. With Stride 2 it doubles H and W.
func NewConvTranspose(s *Scope, name string, cin, cout, k int, opts ConvOpts) (*Conv, error) {
	return newConvLayer(s, name, cin, cout, k, opts, true)
}

func newConvLayer(s *Scope, name string, cin, cout, k int, opts ConvOpts, transposed bool) (*Conv, error) {
	if cin < 1 || cout < 1 {
		return nil, fmt.Errorf("layers: %s: channels %d→%d, want ≥ 1", name, cin, cout)
	}
	if k < 1 || k%2 == 0 {
		return nil, fmt.Errorf("layers: %s: kernel size %d, want odd (1, 3, 5, …)", name, k)
	}
	if o := opts.norm(); o.Stride < 1 || o.Dilation < 1 || (o.Pad != Periodic && o.Pad != Zero) {
		return nil, fmt.Errorf("layers: %s: bad options %+v", name, opts)
	}
	ls := s.Sub(name)
	ws := []int{cout, cin, k, k}
	if transposed {
		ws = []int{cin, cout, k, k}
	}
	return &Conv{Name: ls.Prefix(), Cin: cin, Cout: cout, K: k, Opts: opts, Transposed: transposed,
		W: ls.Param("w", ws, ConvInit(1)), B: ls.Param("b", []int{cout}, Zeros), ar: s.Arena()}, nil
}

// Apply runs the layer on x (B, Cin, H, W).
func (c *Conv) Apply(x *G.Node) (*G.Node, error) {
	if x == nil {
		return nil, fmt.Errorf("layers: %s: nil input", c.Name)
	}
	if x.Dims() != 4 {
		return nil, fmt.Errorf("layers: %s: input has shape %s, want (B, %d, H, W)", c.Name, shapeStr(x.Shape()), c.Cin)
	}
	if got := x.Shape()[1]; got != c.Cin {
		return nil, fmt.Errorf("layers: %s: input has %d channels, want %d", c.Name, got, c.Cin)
	}
	if c.Transposed {
		y, err := convTranspose2D(c.ar, x, c.W, c.Opts)
		if err != nil {
			return nil, fmt.Errorf("layers: %s: %w", c.Name, err)
		}
		return ChannelBias(y, c.B)
	}
	if err := checkNode("Conv2DBias", c.B, 1); err != nil {
		return nil, fmt.Errorf("layers: %s: %w", c.Name, err)
	}
	y, err := conv2D(c.ar, "Conv2DBias", x, c.W, c.B, c.Opts)
	if err != nil {
		return nil, fmt.Errorf("layers: %s: %w", c.Name, err)
	}
	return y, nil
}
