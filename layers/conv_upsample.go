package layers

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// UpsampleConv2D is Conv2DBias(Upsample2x(x), w, b, zero padding) for a 3×3 kernel, computed without the
// up-sampled tensor: x (B, Cin, H, W), w (Cout, Cin, 3, 3), b (Cout) give (B, Cout, 2H, 2W).
//
// Every output phase (Y mod 2, X mod 2) of a 3×3 convolution of a nearest-neighbour up-sampled map reads
// only a 2×2 window of the coarse map: along one axis, phase 0 reads coarse offsets −1 (tap 0) and 0
// (taps 1 and 2), phase 1 offsets 0 (taps 0 and 1) and +1 (tap 2), and the fine grid's zero padding is
// the coarse grid's. So the op is four 2×2 convolutions of x with summed weights, 16 instead of 36
// multiply-adds per coarse pixel and channel pair, their outputs interleaved; the input gradient is one
// convolution of the four phases of the output gradient stacked as channels, and the weight gradient four
// phase weight gradients folded back onto the 3×3 taps. Tests hold it to the graph of Upsample2x and
// Conv2DBias (values and every gradient) and to finite differences. It is differentiable once (its
// gradient ops have no derivative of their own): use the two ops for second derivatives.
func UpsampleConv2D(x, w, b *G.Node) (*G.Node, error) { return upsampleConv2DIn(nil, x, w, b) }

func upsampleConv2DIn(ar *Arena, x, w, b *G.Node) (*G.Node, error) {
	const op = "UpsampleConv2D"
	if err := check4D(op, x, "input"); err != nil {
		return nil, err
	}
	if err := check4D(op, w, "weight"); err != nil {
		return nil, err
	}
	if err := checkNode(op, b, 1); err != nil {
		return nil, err
	}
	if err := sameDtype(op, x, w, b); err != nil {
		return nil, err
	}
	xs, ws := x.Shape(), w.Shape()
	if ws[1] != xs[1] || ws[2] != 3 || ws[3] != 3 {
		return nil, fmt.Errorf("layers: %s: input %v %s and weight %v %s: want (B, Cin, H, W) and (Cout, Cin, 3, 3)", op, x.Name(), shapeStr(xs), w.Name(), shapeStr(ws))
	}
	if b.Dims() != 1 || b.Shape()[0] != ws[0] {
		return nil, fmt.Errorf("layers: %s: bias %v has shape %s, want (%d)", op, b.Name(), shapeStr(b.Shape()), ws[0])
	}
	g := upGeom{b: xs[0], cin: xs[1], cout: ws[0], h: xs[2], w: xs[3]}
	return G.ApplyOp(upConvOp{kind: convFwd, g: g, ar: ar, sc: scratchFor(ar)}, x, w, b)
}

// upGeom is the geometry of an UpsampleConv2D: x (b, cin, h, w) → y (b, cout, 2h, 2w).
type upGeom struct{ b, cin, cout, h, w int }

func (g upGeom) xShape() []int { return []int{g.b, g.cin, g.h, g.w} }
func (g upGeom) yShape() []int { return []int{g.b, g.cout, 2 * g.h, 2 * g.w} }
func (g upGeom) wShape() []int { return []int{g.cout, g.cin, 3, 3} }

// coarse is a stride-1 convolution geometry on the coarse grid from ci to co channels (its kernel
// fields unused: the plans carry their taps).
func (g upGeom) coarse(ci, co int) convGeom {
	return convGeom{b: g.b, cin: ci, cout: co, h: g.h, w: g.w, ho: g.h, wo: g.w, kh: 1, kw: 1, stride: 1, dil: 1}
}

// upOff[q] are the coarse offsets read by phase q of an axis, upTaps[q][k] the 3×3 taps summed into
// offset k.
var (
	upOff  = [2][2]int{{-1, 0}, {0, 1}}
	upTaps = [2][2][]int{{{0}, {1, 2}}, {{0, 1}, {2}}}
)

// upPhasePlan is the plan of phase (py, px) of the forward pass: taps (i, ia, ic) reading x at the
// coarse offsets upOff, with one row and column of zero padding on every side.
func upPhasePlan(g upGeom, py, px int) *convPlan {
	taps := make([]convTap, 0, 4*g.cin)
	for i := 0; i < g.cin; i++ {
		for ia := 0; ia < 2; ia++ {
			for ic := 0; ic < 2; ic++ {
				taps = append(taps, convTap{i, upOff[py][ia] + 1, upOff[px][ic] + 1})
			}
		}
	}
	return newConvPlanTaps(g.coarse(g.cin, g.cout), 1, 1, 1, 1, taps, false)
}

// upDataPlan is the plan of the input gradient: the four phases of the output gradient stacked as 4·cout
// channels (phase p = 2py + px first), taps (p, o, ia, ic) at the negated offsets.
func upDataPlan(g upGeom) *convPlan {
	taps := make([]convTap, 0, 16*g.cout)
	for p := 0; p < 4; p++ {
		py, px := p/2, p%2
		for o := 0; o < g.cout; o++ {
			for ia := 0; ia < 2; ia++ {
				for ic := 0; ic < 2; ic++ {
					taps = append(taps, convTap{p*g.cout + o, 1 - upOff[py][ia], 1 - upOff[px][ic]})
				}
			}
		}
	}
	return newConvPlanTaps(g.coarse(4*g.cout, g.cin), 1, 1, 1, 1, taps, false)
}

// upPhaseWeights sets wt (cout, cin·4) to the summed weights of phase (py, px).
func upPhaseWeights[T float](g upGeom, w, wt []T, py, px int) {
	for o := 0; o < g.cout; o++ {
		for i := 0; i < g.cin; i++ {
			src := w[(o*g.cin+i)*9:][:9]
			for ia := 0; ia < 2; ia++ {
				for ic := 0; ic < 2; ic++ {
					var s T
					for _, a := range upTaps[py][ia] {
						for _, c := range upTaps[px][ic] {
							s += src[a*3+c]
						}
					}
					wt[(o*g.cin+i)*4+ia*2+ic] = s
				}
			}
		}
	}
}

// upSplit copies the four phases (Y mod 2, X mod 2) of v (b, c, 2h, 2w) into dst in one pass: phase
// p = 2py + px of channel ch of image n to dst[p·pStride + n·ldImg + ch·h·w :] as an h×w plane.
func upSplit[T float](g upGeom, c int, v, dst []T, pStride, ldImg int) {
	hw := g.h * g.w
	W2 := 2 * g.w
	for n := 0; n < g.b; n++ {
		for ch := 0; ch < c; ch++ {
			src := v[(n*c+ch)*4*hw:][:4*hw]
			o := n*ldImg + ch*hw
			d00, d01 := dst[o:][:hw], dst[pStride+o:][:hw]
			d10, d11 := dst[2*pStride+o:][:hw], dst[3*pStride+o:][:hw]
			for y := 0; y < g.h; y++ {
				r0, r1 := src[2*y*W2:][:W2], src[(2*y+1)*W2:][:W2]
				a, b := d00[y*g.w:][:g.w], d01[y*g.w:][:g.w]
				cc, d := d10[y*g.w:][:g.w], d11[y*g.w:][:g.w]
				for x := range a {
					a[x], b[x] = r0[2*x], r0[2*x+1]
					cc[x], d[x] = r1[2*x], r1[2*x+1]
				}
			}
		}
	}
}

// upMerge is the inverse of upSplit: y (b, c, 2h, 2w) from the four phase planes of z, phase p of channel
// ch of image n at z[p·pStride + (n·c + ch)·h·w :].
func upMerge[T float](g upGeom, c int, z, y []T, pStride int) {
	hw := g.h * g.w
	W2 := 2 * g.w
	for pl := 0; pl < g.b*c; pl++ {
		dst := y[pl*4*hw:][:4*hw]
		o := pl * hw
		z00, z01 := z[o:][:hw], z[pStride+o:][:hw]
		z10, z11 := z[2*pStride+o:][:hw], z[3*pStride+o:][:hw]
		for yy := 0; yy < g.h; yy++ {
			r0, r1 := dst[2*yy*W2:][:W2], dst[(2*yy+1)*W2:][:W2]
			a, b := z00[yy*g.w:][:g.w], z01[yy*g.w:][:g.w]
			cc, d := z10[yy*g.w:][:g.w], z11[yy*g.w:][:g.w]
			for x := range a {
				r0[2*x], r0[2*x+1] = a[x], b[x]
				r1[2*x], r1[2*x+1] = cc[x], d[x]
			}
		}
	}
}

// upConvForward sets y = UpsampleConv2D(x, w, bias).
func upConvForward[T float](s *convScratch, g upGeom, x, w, bias, y []T) {
	ps := g.b * g.cout * g.h * g.w     // one phase of the output
	z := scratchBuf[T](s, 4*ps, false) // set to the bias (or by the kernels that start there) first
	wt := scratchBuf[T](s, g.cout*g.cin*4, false)
	cg := g.coarse(g.cin, g.cout)
	if !upSharedPad(g.cout) {
		for p := 0; p < 4; p++ {
			upPhaseWeights(g, w, wt, p/2, p%2)
			convForwardPlan(s, cg, s.upPlan(g, p), x, wt, bias, z[p*ps:(p+1)*ps])
		}
		upMerge(g, g.cout, z, y, ps)
		return
	}
	// The four phases read the same padded copy of x (their plans differ in the taps only): one copy per
	// group of images, four kernel runs on it.
	var vecs [4]*convFwdVec[T]
	nw := g.cout * g.cin * 4
	wt4 := scratchBuf[T](s, 4*nw, false) // a phase's kernels keep reading its weights (AVX2: the row tails)
	for p := range vecs {
		wp := wt4[p*nw : (p+1)*nw]
		upPhaseWeights(g, w, wp, p/2, p%2)
		vecs[p] = newConvFwdVec(s, cg, s.upPlan(g, p), wp, bias, !hasConvAVX512)
	}
	if !hasConvAVX512 { // the AVX2 kernels add to their output: start it at the bias
		hw := g.h * g.w
		for pl := 0; pl < 4*g.b; pl++ {
			for o := 0; o < g.cout; o++ {
				fill(z[(pl*g.cout+o)*hw:][:hw], bias[o])
			}
		}
	}
	p0 := s.upPlan(g, 0)
	buf := scratchBuf[T](s, p0.bufLen, false) // padInto writes every entry a kernel reads
	for n0 := 0; n0 < g.b; n0 += p0.group {
		nb := min(p0.group, g.b-n0)
		padInto(p0, buf, x, n0, nb)
		for p, v := range vecs {
			v.run(buf, z[p*ps:(p+1)*ps], n0, nb)
		}
	}
	upMerge(g, g.cout, z, y, ps)
}

// upSharedPad reports whether UpsampleConv2D runs its phases on one padded copy per group: with the
// AVX-512 or AVX2 kernels, except the narrow AVX-512 forward kernels (cout ≤ 4), which have their own
// buffer layout.
func upSharedPad(cout int) bool {
	return (hasConvAVX512 && cout > 4) || (!hasConvAVX512 && hasConvAVX2)
}

// upConvData sets dx (b, cin, h, w) to the input gradient of UpsampleConv2D for the output gradient gy.
func upConvData[T float](s *convScratch, g upGeom, gy, w, dx []T) {
	hw := g.h * g.w
	stack := scratchBuf[T](s, g.b*4*g.cout*hw, false) // every element is set
	upSplit(g, g.cout, gy, stack, g.cout*hw, 4*g.cout*hw)
	// weights (cin, 4·cout·4): wb[i, (p·cout + o)·4 + ia·2 + ic] = phase p's summed weight (o, i, ia, ic)
	wb := scratchBuf[T](s, g.cin*16*g.cout, false)
	wt := scratchBuf[T](s, g.cout*g.cin*4, false)
	for p := 0; p < 4; p++ {
		upPhaseWeights(g, w, wt, p/2, p%2)
		for o := 0; o < g.cout; o++ {
			for i := 0; i < g.cin; i++ {
				copy(wb[i*16*g.cout+(p*g.cout+o)*4:][:4], wt[(o*g.cin+i)*4:][:4])
			}
		}
	}
	convForwardPlan(s, g.coarse(4*g.cout, g.cin), s.upPlan(g, 4), stack, wb, nil, dx)
}

// upConvWeight sets dw (cout, cin, 3, 3) to the weight gradient of UpsampleConv2D: per phase the weight
// gradient of its 2×2 convolution, folded onto the taps it sums.
func upConvWeight[T float](s *convScratch, g upGeom, x, gy, dw []T) {
	hw := g.h * g.w
	ps := g.b * g.cout * hw
	gp := scratchBuf[T](s, 4*ps, false) // every element is set
	upSplit(g, g.cout, gy, gp, ps, g.cout*hw)
	dwt := scratchBuf[T](s, g.cout*g.cin*4, false)
	cg := g.coarse(g.cin, g.cout)
	clear(dw)
	var vecs [4]*convWgtVec[T]
	if hasConvAVX512 || hasConvAVX2 {
		// one padded copy of x per group of images for the four phases' kernels (as in upConvForward)
		for p := range vecs {
			vecs[p] = newConvWgtVec(s, cg, s.upPlan(g, p), gp[p*ps:(p+1)*ps], !hasConvAVX512)
		}
		p0 := s.upPlan(g, 0)
		buf := scratchBuf[T](s, p0.bufLen, false)
		for n0 := 0; n0 < g.b; n0 += p0.group {
			nb := min(p0.group, g.b-n0)
			padInto(p0, buf, x, n0, nb)
			for _, v := range vecs {
				v.run(buf, n0, nb)
			}
		}
	}
	for p := 0; p < 4; p++ {
		py, px := p/2, p%2
		if v := vecs[p]; v != nil {
			v.finish(dwt)
		} else {
			clear(dwt) // the plain loops add to it
			convBackwardWeightPlan(s, cg, s.upPlan(g, p), x, gp[p*ps:(p+1)*ps], dwt)
		}
		for o := 0; o < g.cout; o++ {
			for i := 0; i < g.cin; i++ {
				d := dw[(o*g.cin+i)*9:][:9]
				for ia := 0; ia < 2; ia++ {
					for ic := 0; ic < 2; ic++ {
						v := dwt[(o*g.cin+i)*4+ia*2+ic]
						for _, a := range upTaps[py][ia] {
							for _, c := range upTaps[px][ic] {
								d[a*3+c] += v
							}
						}
					}
				}
			}
		}
	}
}

// upPlan returns the (cached, with s) plan k of g: phases 0…3 of the forward pass, 4 the input gradient.
func (s *convScratch) upPlan(g upGeom, k int) *convPlan {
	mk := func() *convPlan {
		if k == 4 {
			return upDataPlan(g)
		}
		return upPhasePlan(g, k/2, k%2)
	}
	if s == nil {
		return mk()
	}
	if s.up == nil {
		s.up = map[[6]int]*convPlan{}
	}
	key := [6]int{g.b, g.cin, g.cout, g.h, g.w, k}
	p, ok := s.up[key]
	if !ok {
		p = mk()
		s.up[key] = p
	}
	return p
}

// upConvOp is UpsampleConv2D (kind convFwd: inputs x, w, b) or one of its gradients (convBwdData: gy, w;
// convBwdWeight: x, gy).
type upConvOp struct {
	kind convKind
	g    upGeom
	ar   *Arena       // where outputs come from (nil: afresh); not part of the op's identity
	sc   *convScratch // working memory kept between calls (with an arena); not part of the op's identity
}

func (op upConvOp) Arity() int {
	if op.kind == convFwd {
		return 3
	}
	return 2
}
func (op upConvOp) Type() hm.Type {
	if op.kind == convFwd {
		return fnType(4, 4, 4, 1)
	}
	return fnType(4, 4, 4)
}

func (op upConvOp) shapes() (in [][]int, out []int) {
	g := op.g
	switch op.kind {
	case convFwd:
		return [][]int{g.xShape(), g.wShape(), {g.cout}}, g.yShape()
	case convBwdData:
		return [][]int{g.yShape(), g.wShape()}, g.xShape()
	default:
		return [][]int{g.xShape(), g.yShape()}, g.wShape()
	}
}

func (op upConvOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	in, out := op.shapes()
	return inferFixed(op.String(), op.Arity(), ds, in, out)
}

func (op upConvOp) Do(vals ...G.Value) (G.Value, error) {
	in, outShape := op.shapes()
	// The forward pass writes every output element (its scatter), the input gradient too with the AVX-512
	// kernels (which store their sums); the weight gradient is cleared and then added to.
	writesAll := op.kind == convFwd || (op.kind == convBwdData && hasConvAVX512) || op.kind == convBwdWeight
	return runConvLike(op.String(), vals, in, outShape, op.ar, writesAll,
		func(in [3][]float32, out []float32) { upConvDo(op, in, out) },
		func(in [3][]float64, out []float64) { upConvDo(op, in, out) })
}

func upConvDo[T float](op upConvOp, in [3][]T, out []T) {
	op.sc.begin()
	switch op.kind {
	case convFwd:
		upConvForward(op.sc, op.g, in[0], in[1], in[2], out)
	case convBwdData:
		upConvData(op.sc, op.g, in[0], in[1], out)
	case convBwdWeight:
		upConvWeight(op.sc, op.g, in[0], in[1], out)
	}
}

func (op upConvOp) ReturnsPtr() bool     { return true }
func (op upConvOp) CallsExtern() bool    { return false }
func (op upConvOp) OverwritesInput() int { return -1 }
func (op upConvOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.upconv|%d|%d|%d|%d|%d|%d", op.kind, op.g.b, op.g.cin, op.g.cout, op.g.h, op.g.w)
}
func (op upConvOp) Hashcode() uint32 { return hash32(op) }
func (op upConvOp) String() string {
	return fmt.Sprintf("Upsample%s(b%d|%d→%d|%dx%d)", convNames[op.kind], op.g.b, op.g.cin, op.g.cout, op.g.h, op.g.w)
}
func (op upConvOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = op.kind == convFwd
	}
	return d
}
func (op upConvOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	if op.kind != convFwd {
		return nil, fmt.Errorf("layers: %s is first-order only (use Upsample2x and Conv2DBias for second derivatives)", op)
	}
	g := op.g
	dx, err := G.ApplyOp(upConvOp{kind: convBwdData, g: g, ar: op.ar, sc: scratchFor(op.ar)}, grad, in[1])
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(upConvOp{kind: convBwdWeight, g: g, ar: op.ar, sc: scratchFor(op.ar)}, in[0], grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(chanSumOp{b: g.b, c: g.cout, h: 2 * g.h, w: 2 * g.w}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}
