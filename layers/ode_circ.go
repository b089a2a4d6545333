package layers

import (
	"fmt"
	"hash"
	"math"
	"math/bits"
	"math/cmplx"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// CircConv is the whole-lattice periodic convolution of a velocity field's features with its kernels,
//
//	out[n, o, x] = Σ_j Σ_y w[o, j, x − y] h[n, j, y]     (x − y modulo the H×W lattice)
//
// for h (B, J, H, W) and w (O, J, H, W), computed in Fourier space (convolution theorem; radix-2 FFTs when
// H and W are powers of two, direct DFTs otherwise) in O(B·J·H·W·log(H·W)) instead of the O(B·J·(H·W)²) of
// a direct sum or a circulant matrix product. Like the convolution family of this package it is one of
// three bilinear ops that are each other's derivatives: F(h, w) above, its adjoint in h,
// T(g, w)[n, j, y] = Σ_o Σ_x w[o, j, x − y] g[n, o, x], and its adjoint in w,
// Wg(h, g)[o, j, r] = Σ_n Σ_x g[n, o, x] h[n, j, x − r]; so it differentiates to any order. Values are
// computed in complex128 whatever the dtype.
func CircConv(h, w *G.Node) (*G.Node, error) {
	if err := checkNode("CircConv", h, 4); err != nil {
		return nil, err
	}
	if err := checkNode("CircConv", w, 4); err != nil {
		return nil, err
	}
	if err := sameDtype("CircConv", h, w); err != nil {
		return nil, err
	}
	hs, ws := []int(h.Shape()), []int(w.Shape())
	if h.Dims() != 4 || w.Dims() != 4 || hs[1] != ws[1] || hs[2] != ws[2] || hs[3] != ws[3] {
		return nil, fmt.Errorf("layers: CircConv: features %s and kernels %s, want (B, J, H, W) and (O, J, H, W)", shapeStr(hs), shapeStr(ws))
	}
	return G.ApplyOp(circOp{kind: convFwd, b: hs[0], j: hs[1], o: ws[0], hh: hs[2], ww: hs[3]}, h, w)
}

type circOp struct {
	kind            convKind
	b, j, o, hh, ww int
}

func (op circOp) hShape() []int { return []int{op.b, op.j, op.hh, op.ww} }
func (op circOp) wShape() []int { return []int{op.o, op.j, op.hh, op.ww} }
func (op circOp) gShape() []int { return []int{op.b, op.o, op.hh, op.ww} }

func (op circOp) shapes() (in [][]int, out []int) {
	switch op.kind {
	case convFwd:
		return [][]int{op.hShape(), op.wShape()}, op.gShape()
	case convBwdData:
		return [][]int{op.gShape(), op.wShape()}, op.hShape()
	default:
		return [][]int{op.hShape(), op.gShape()}, op.wShape()
	}
}

func (op circOp) Arity() int    { return 2 }
func (op circOp) Type() hm.Type { return fnType(4, 4, 4) }
func (op circOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes(op.String(), 2, ds)
	if err != nil {
		return nil, err
	}
	in, out := op.shapes()
	for i := range in {
		if err := checkShape(op.String(), i, s[i], in[i]); err != nil {
			return nil, err
		}
	}
	return tensor.Shape(append([]int(nil), out...)), nil
}

func (op circOp) Do(vals ...G.Value) (G.Value, error) {
	in, outShape := op.shapes()
	a, err := getArgs(op.String(), vals, prod(in[0]), prod(in[1]))
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, outShape)
	if a.is32 {
		circCompute(op, a.f32[0], a.f32[1], o32)
	} else {
		circCompute(op, a.f64[0], a.f64[1], o64)
	}
	return out, nil
}

// circCompute evaluates the op in Fourier space: with X̂ the unnormalised 2-D DFT,
// F: ĝ[n,o] = Σ_j ŵ[o,j] ĥ[n,j];  T: ĥ[n,j] = Σ_o conj(ŵ[o,j]) ĝ[n,o];  Wg: ŵ[o,j] = Σ_n ĝ[n,o] conj(ĥ[n,j]).
// Every plane is real, so its spectrum is Hermitian (X̂[−k] = conj X̂[k]): only the half-plane of rows
// 0 … H/2 is kept and multiplied, and the other rows are filled by symmetry before the inverse transforms.
// Inputs and outputs are read and written in their own dtype; the spectra are complex128.
func circCompute[T float32 | float64](op circOp, x, y, out []T) {
	v := op.hh * op.ww
	hr := op.hh/2 + 1
	vh := hr * op.ww // the kept half-plane, rows 0 … H/2
	f := newFFT2(op.hh, op.ww)
	// neg[k] is the index of −k modulo the lattice; for k outside the half-plane it lies inside it.
	neg := make([]int, v)
	for k := range neg {
		ki, kj := k/op.ww, k%op.ww
		neg[k] = ((op.hh-ki)%op.hh)*op.ww + (op.ww-kj)%op.ww
	}
	// spec transforms real planes two at a time: z = a + i b, then â[k] = (ẑ[k] + conj ẑ[−k])/2 and
	// b̂[k] = (ẑ[k] − conj ẑ[−k])/(2i), for k in the half-plane.
	spec := func(src []T, planes int) []complex128 {
		s := make([]complex128, planes*vh)
		z := make([]complex128, v)
		for p := 0; p < planes; p += 2 {
			two := p+1 < planes
			pa := src[p*v : (p+1)*v]
			if two {
				pb := src[(p+1)*v : (p+2)*v]
				for i := range z {
					z[i] = complex(float64(pa[i]), float64(pb[i]))
				}
			} else {
				for i := range z {
					z[i] = complex(float64(pa[i]), 0)
				}
			}
			// a pair's unpacking reads ẑ[−k], outside the half-plane: then every row is transformed
			rows := hr
			if two {
				rows = op.hh
			}
			f.transform(z, false, rows)
			a := s[p*vh : (p+1)*vh]
			if !two {
				copy(a, z[:vh])
				continue
			}
			b := s[(p+1)*vh : (p+2)*vh]
			for k := range a {
				zk, zn := z[k], z[neg[k]]
				// (ẑ[k] ± conj ẑ[−k]) / 2, written out (complex division is slow)
				a[k] = complex(0.5*(real(zk)+real(zn)), 0.5*(imag(zk)-imag(zn)))
				b[k] = complex(0.5*(imag(zk)+imag(zn)), -0.5*(real(zk)-real(zn))) // (ẑ[k] − conj ẑ[−k]) / 2i
			}
		}
		return s
	}
	// acc fills the half-plane spectra of the output planes, completes them by symmetry and inverts them
	// two at a time: IFFT(â + i b̂) = a + i b.
	acc := func(dst []T, planes int, fill func(p int, buf []complex128)) {
		ba := make([]complex128, vh)
		bb := make([]complex128, vh)
		z := make([]complex128, v)
		inv := 1 / float64(v)
		for p := 0; p < planes; p += 2 {
			clear(ba)
			fill(p, ba)
			two := p+1 < planes
			if two {
				clear(bb)
				fill(p+1, bb)
				for k, av := range ba {
					bv := bb[k]
					z[k] = complex(real(av)-imag(bv), imag(av)+real(bv)) // â + i b̂
				}
				for k := vh; k < v; k++ {
					av, bv := ba[neg[k]], bb[neg[k]] // conj â[−k] + i conj b̂[−k]
					z[k] = complex(real(av)+imag(bv), -imag(av)+real(bv))
				}
			} else {
				copy(z, ba)
				for k := vh; k < v; k++ {
					z[k] = cmplx.Conj(ba[neg[k]])
				}
			}
			f.transform(z, true, op.hh)
			da := dst[p*v : (p+1)*v]
			for i := range da {
				da[i] = T(real(z[i]) * inv)
			}
			if two {
				db := dst[(p+1)*v : (p+2)*v]
				for i := range db {
					db[i] = T(imag(z[i]) * inv)
				}
			}
		}
	}
	switch op.kind {
	case convFwd:
		hs, ws := spec(x, op.b*op.j), spec(y, op.o*op.j)
		acc(out, op.b*op.o, func(p int, buf []complex128) {
			n, o := p/op.o, p%op.o
			for j := 0; j < op.j; j++ {
				hp, wp := hs[(n*op.j+j)*vh:(n*op.j+j+1)*vh], ws[(o*op.j+j)*vh:(o*op.j+j+1)*vh]
				for i := range buf {
					buf[i] += wp[i] * hp[i]
				}
			}
		})
	case convBwdData:
		gs, ws := spec(x, op.b*op.o), spec(y, op.o*op.j)
		acc(out, op.b*op.j, func(p int, buf []complex128) {
			n, j := p/op.j, p%op.j
			for o := 0; o < op.o; o++ {
				gp, wp := gs[(n*op.o+o)*vh:(n*op.o+o+1)*vh], ws[(o*op.j+j)*vh:(o*op.j+j+1)*vh]
				for i := range buf {
					buf[i] += cmplx.Conj(wp[i]) * gp[i]
				}
			}
		})
	default:
		hs, gs := spec(x, op.b*op.j), spec(y, op.b*op.o)
		acc(out, op.o*op.j, func(p int, buf []complex128) {
			o, j := p/op.j, p%op.j
			for n := 0; n < op.b; n++ {
				gp, hp := gs[(n*op.o+o)*vh:(n*op.o+o+1)*vh], hs[(n*op.j+j)*vh:(n*op.j+j+1)*vh]
				for i := range buf {
					buf[i] += gp[i] * cmplx.Conj(hp[i])
				}
			}
		})
	}
}

func (op circOp) ReturnsPtr() bool     { return true }
func (op circOp) CallsExtern() bool    { return false }
func (op circOp) OverwritesInput() int { return -1 }
func (op circOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.circconv|%d|%d|%d|%d|%d|%d", op.kind, op.b, op.j, op.o, op.hh, op.ww)
}
func (op circOp) Hashcode() uint32 { return hash32(op) }
func (op circOp) String() string {
	return fmt.Sprintf("%s(B=%d,J=%d,O=%d,%d×%d)", [...]string{"CircConv", "CircConvBwdData", "CircConvBwdWeight"}[op.kind], op.b, op.j, op.o, op.hh, op.ww)
}
func (op circOp) DiffWRT(int) []bool { return []bool{true, true} }
func (op circOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	apply := func(kind convKind, a, b *G.Node) (*G.Node, error) {
		o := op
		o.kind = kind
		return G.ApplyOp(o, a, b)
	}
	var d0, d1 *G.Node
	var err error
	switch op.kind {
	case convFwd: // out = F(h, w): ∂h = T(G, w), ∂w = Wg(h, G)
		if d0, err = apply(convBwdData, grad, in[1]); err == nil {
			d1, err = apply(convBwdWeight, in[0], grad)
		}
	case convBwdData: // u = T(g, w): ∂g = F(U, w), ∂w = Wg(U, g)
		if d0, err = apply(convFwd, grad, in[1]); err == nil {
			d1, err = apply(convBwdWeight, grad, in[0])
		}
	default: // v = Wg(h, g): ∂h = T(g, V), ∂g = F(h, V)
		if d0, err = apply(convBwdData, in[1], grad); err == nil {
			d1, err = apply(convFwd, in[0], grad)
		}
	}
	if err != nil {
		return nil, err
	}
	return G.Nodes{d0, d1}, nil
}

// fft2 is an unnormalised 2-D DFT on row-major h×w complex arrays: X̂[k] = Σ_x e^{∓2πi k·x/(h,w)} X[x]
// (minus sign forward, plus inverse). transform(a, inverse, rows) returns only output rows 0 … rows−1
// correct (the rest hold partial results): the forward pass transforms the columns first and then just the
// rows asked for. When h is a power of two the column transforms run on whole rows at a time (radix-2
// butterflies between rows, contiguous in memory); otherwise column by column.
type fft2 struct {
	rows, cols *fft1
	col        []complex128
	tmp        []complex128
}

func newFFT2(h, w int) *fft2 {
	return &fft2{rows: newFFT1(w), cols: newFFT1(h), col: make([]complex128, h), tmp: make([]complex128, w)}
}

func (f *fft2) transform(a []complex128, inverse bool, rows int) {
	h, w := f.cols.n, f.rows.n
	if inverse {
		for i := 0; i < h; i++ {
			f.rows.transform(a[i*w:(i+1)*w], true)
		}
		f.columns(a, true)
		return
	}
	f.columns(a, false)
	for i := 0; i < rows; i++ {
		f.rows.transform(a[i*w:(i+1)*w], false)
	}
}

// columns transforms every column of a.
func (f *fft2) columns(a []complex128, inverse bool) {
	h, w := f.cols.n, f.rows.n
	c := f.cols
	if h == 1 {
		return
	}
	if c.rev == nil {
		for j := 0; j < w; j++ {
			for i := 0; i < h; i++ {
				f.col[i] = a[i*w+j]
			}
			c.transform(f.col, inverse)
			for i := 0; i < h; i++ {
				a[i*w+j] = f.col[i]
			}
		}
		return
	}
	tw := c.tw
	if inverse {
		tw = c.twi
	}
	for i, r := range c.rev {
		if i < r {
			ri, rr := a[i*w:(i+1)*w], a[r*w:(r+1)*w]
			copy(f.tmp, ri)
			copy(ri, rr)
			copy(rr, f.tmp)
		}
	}
	for size := 2; size <= h; size <<= 1 {
		half, step := size/2, h/size
		for start := 0; start < h; start += size {
			for k := 0; k < half; k++ {
				lo := a[(start+k)*w : (start+k+1)*w]
				hi := a[(start+k+half)*w : (start+k+half+1)*w]
				if k == 0 {
					for j, hv := range hi {
						lv := lo[j]
						hi[j] = lv - hv
						lo[j] = lv + hv
					}
					continue
				}
				t := tw[k*step]
				for j, hv := range hi {
					u := t * hv
					lv := lo[j]
					hi[j] = lv - u
					lo[j] = lv + u
				}
			}
		}
	}
}

// fft1 is a 1-D DFT of length n: iterative radix-2 for powers of two, a direct sum otherwise.
type fft1 struct {
	n       int
	tw, twi []complex128 // e^{∓2πi k/n}
	rev     []int
	tmp     []complex128
}

func newFFT1(n int) *fft1 {
	f := &fft1{n: n, tw: make([]complex128, n), twi: make([]complex128, n), tmp: make([]complex128, n)}
	for k := range f.tw {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		f.tw[k], f.twi[k] = complex(c, s), complex(c, -s)
	}
	if n&(n-1) == 0 && n > 1 {
		lg := bits.TrailingZeros(uint(n))
		f.rev = make([]int, n)
		for i := range f.rev {
			f.rev[i] = int(bits.Reverse(uint(i)) >> (bits.UintSize - lg))
		}
	}
	return f
}

func (f *fft1) transform(a []complex128, inverse bool) {
	n := f.n
	if n == 1 {
		return
	}
	tw := f.tw
	if inverse {
		tw = f.twi
	}
	if f.rev == nil {
		for k := 0; k < n; k++ {
			var s complex128
			for x := 0; x < n; x++ {
				s += tw[k*x%n] * a[x]
			}
			f.tmp[k] = s
		}
		copy(a, f.tmp)
		return
	}
	for i, r := range f.rev {
		if i < r {
			a[i], a[r] = a[r], a[i]
		}
	}
	// the first stage and every k = 0 butterfly have the twiddle 1: no multiplication
	for start := 0; start+1 < n; start += 2 {
		lv, hv := a[start], a[start+1]
		a[start], a[start+1] = lv+hv, lv-hv
	}
	for size := 4; size <= n; size <<= 1 {
		half, step := size/2, n/size
		for start := 0; start < n; start += size {
			lo, hi := a[start:start+half], a[start+half:start+size]
			lv, hv := lo[0], hi[0]
			lo[0], hi[0] = lv+hv, lv-hv
			for k := 1; k < half; k++ {
				t := tw[k*step] * hi[k]
				hi[k] = lo[k] - t
				lo[k] += t
			}
		}
	}
}

// linComb is ca·a + cb·b for nodes of one shape (b nil: ca·a), one pass with no clone (Gorgonia's scalar
// multiply copies its input before scaling, and an Add makes a third pass). It is linear, so its gradient
// is linComb again: ∂a = ca·g, ∂b = cb·g.
func linComb(a *G.Node, ca float64, b *G.Node, cb float64) (*G.Node, error) {
	if b == nil {
		return G.ApplyOp(linOp{ca: ca, shape: append([]int(nil), a.Shape()...)}, a)
	}
	if !tensor.Shape(a.Shape()).Eq(b.Shape()) {
		return nil, fmt.Errorf("layers: linComb: shapes %s and %s differ", shapeStr(a.Shape()), shapeStr(b.Shape()))
	}
	if err := sameDtype("linComb", a, b); err != nil {
		return nil, err
	}
	return G.ApplyOp(linOp{ca: ca, cb: cb, two: true, shape: append([]int(nil), a.Shape()...)}, a, b)
}

type linOp struct {
	ca, cb float64
	two    bool
	shape  []int
}

func (op linOp) Arity() int {
	if op.two {
		return 2
	}
	return 1
}
func (op linOp) Type() hm.Type {
	if op.two {
		return fnType(len(op.shape), len(op.shape), len(op.shape))
	}
	return fnType(len(op.shape), len(op.shape))
}
func (op linOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes("linComb", op.Arity(), ds)
	if err != nil {
		return nil, err
	}
	for i := range s {
		if err := checkShape("linComb", i, s[i], op.shape); err != nil {
			return nil, err
		}
	}
	return tensor.Shape(append([]int(nil), op.shape...)), nil
}
func (op linOp) Do(vals ...G.Value) (G.Value, error) {
	n := prod(op.shape)
	sizes := []int{n}
	if op.two {
		sizes = append(sizes, n)
	}
	a, err := getArgs("linComb", vals, sizes...)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, op.shape)
	if a.is32 {
		ca, cb := float32(op.ca), float32(op.cb)
		if op.two {
			for i, x := range a.f32[0] {
				o32[i] = ca*x + cb*a.f32[1][i]
			}
		} else {
			for i, x := range a.f32[0] {
				o32[i] = ca * x
			}
		}
		return out, nil
	}
	if op.two {
		for i, x := range a.f64[0] {
			o64[i] = op.ca*x + op.cb*a.f64[1][i]
		}
	} else {
		for i, x := range a.f64[0] {
			o64[i] = op.ca * x
		}
	}
	return out, nil
}
func (op linOp) ReturnsPtr() bool     { return true }
func (op linOp) CallsExtern() bool    { return false }
func (op linOp) OverwritesInput() int { return -1 }
func (op linOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.lin|%v|%v|%v|%v", math.Float64bits(op.ca), math.Float64bits(op.cb), op.two, op.shape)
}
func (op linOp) Hashcode() uint32 { return hash32(op) }
func (op linOp) String() string {
	if op.two {
		return fmt.Sprintf("Lin(%g·a+%g·b)", op.ca, op.cb)
	}
	return fmt.Sprintf("Lin(%g·a)", op.ca)
}
func (op linOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}
func (op linOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	ga, err := linComb(grad, op.ca, nil, 0)
	if err != nil {
		return nil, err
	}
	if !op.two {
		return G.Nodes{ga}, nil
	}
	gb, err := linComb(grad, op.cb, nil, 0)
	if err != nil {
		return nil, err
	}
	return G.Nodes{ga, gb}, nil
}

// featOp is the order-th derivative of the kernel field's features, elementwise: for x (B, C, V) the output
// (B, F·C, V) holds d^order/dx^order of h_f(x[b, c, v]) at (b, f·C + c, v), with h_0 = x, h_k = sin(ω_k x)
// and (unless odd) h_{n+k} = cos(ω_k x). One sincos per element and frequency replaces Gorgonia's separate
// sin and cos ops, their scalings and the concatenation. Its gradient Σ_f g_f ⊙ h_f^{(order+1)}(x) uses
// the next order, so it differentiates to any order.
type featOp struct {
	order   int
	freqs   []float64
	odd     bool
	b, c, v int
}

func (op featOp) nf() int {
	if op.odd {
		return 1 + len(op.freqs)
	}
	return 1 + 2*len(op.freqs)
}

func kernelFeatures(x *G.Node, freqs []float64, odd bool, order int) (*G.Node, error) {
	sh := x.Shape()
	if x.Dims() != 3 {
		return nil, fmt.Errorf("layers: kernelFeatures: input %s, want (B, C, V)", shapeStr(sh))
	}
	return G.ApplyOp(featOp{order: order, freqs: freqs, odd: odd, b: sh[0], c: sh[1], v: sh[2]}, x)
}

func (op featOp) Arity() int    { return 1 }
func (op featOp) Type() hm.Type { return fnType(3, 3) }
func (op featOp) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	s, err := nodeShapes("kernelFeatures", 1, ds)
	if err != nil {
		return nil, err
	}
	if err := checkShape("kernelFeatures", 0, s[0], []int{op.b, op.c, op.v}); err != nil {
		return nil, err
	}
	return tensor.Shape{op.b, op.nf() * op.c, op.v}, nil
}

// derivSinCos returns the order-th derivatives of sin(ωx) and cos(ωx) given s = sin ωx, c = cos ωx and
// f = ω^order.
func derivSinCos(order int, f, s, c float64) (ds, dc float64) {
	switch order % 4 {
	case 0:
		return f * s, f * c
	case 1:
		return f * c, -f * s
	case 2:
		return -f * s, -f * c
	}
	return -f * c, f * s
}

func (op featOp) Do(vals ...G.Value) (G.Value, error) {
	a, err := getArgs("kernelFeatures", vals, op.b*op.c*op.v)
	if err != nil {
		return nil, err
	}
	out, o64, o32 := newOut(a.is32, []int{op.b, op.nf() * op.c, op.v})
	if a.is32 {
		featCompute(op, a.f32[0], o32)
	} else {
		featCompute(op, a.f64[0], o64)
	}
	return out, nil
}

// featCompute fills res from x in their own dtype; the sines and cosines are evaluated in float64.
func featCompute[T float32 | float64](op featOp, x, res []T) {
	n, cv := len(op.freqs), op.c*op.v
	row := op.nf() * cv
	pw := make([]float64, n) // ω^order
	harmonic := true         // freqs are 1, 2, …, n: sin kx, cos kx by angle addition from one sincos
	for k, w := range op.freqs {
		pw[k] = math.Pow(w, float64(op.order))
		harmonic = harmonic && w == float64(k+1)
	}
	var zero T
	_, is32 := any(zero).(float32)
	sincos := sincos64
	if is32 {
		sincos = sincos32
	}
	for b := 0; b < op.b; b++ {
		xs, dst := x[b*cv:(b+1)*cv], res[b*row:(b+1)*row]
		for i, xt := range xs {
			xv := float64(xt)
			switch op.order {
			case 0:
				dst[i] = xt
			case 1:
				dst[i] = 1
			} // higher derivatives of x vanish
			var s1, c1, s, c float64
			if harmonic {
				s1, c1 = sincos(xv)
			}
			for k, w := range op.freqs {
				switch {
				case !harmonic:
					s, c = sincos(w * xv)
				case k == 0:
					s, c = s1, c1
				default: // sin(k+1)x = sin kx cos x + cos kx sin x; cos(k+1)x = cos kx cos x − sin kx sin x
					s, c = s*c1+c*s1, c*c1-s*s1
				}
				ds, dc := derivSinCos(op.order, pw[k], s, c)
				dst[(1+k)*cv+i] = T(ds)
				if !op.odd {
					dst[(1+n+k)*cv+i] = T(dc)
				}
			}
		}
	}
}
func (op featOp) ReturnsPtr() bool     { return true }
func (op featOp) CallsExtern() bool    { return false }
func (op featOp) OverwritesInput() int { return -1 }
func (op featOp) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "rgflow.feat|%d|%v|%v|%d|%d|%d", op.order, op.freqs, op.odd, op.b, op.c, op.v)
}
func (op featOp) Hashcode() uint32   { return hash32(op) }
func (op featOp) String() string     { return fmt.Sprintf("KernelFeatures(d%d,%v)", op.order, op.freqs) }
func (op featOp) DiffWRT(int) []bool { return []bool{true} }
func (op featOp) SymDiff(in G.Nodes, out, grad *G.Node) (G.Nodes, error) {
	next := op
	next.order++
	d, err := G.ApplyOp(next, in[0])
	if err != nil {
		return nil, err
	}
	p, err := G.HadamardProd(grad, d)
	if err != nil {
		return nil, err
	}
	r, err := Reshape(p, op.b, op.nf(), op.c*op.v)
	if err != nil {
		return nil, err
	}
	g, err := SumAxis(r, 1)
	if err != nil {
		return nil, err
	}
	g, err = Reshape(g, op.b, op.c, op.v)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g}, nil
}

// sincos32 is sin x and cos x to about 2e-9 absolute, ample for float32 results and several times cheaper
// than math.Sincos: x = k·π/2 + r with |r| ≤ π/4 (float64 reduction, exact enough for |x| < 2^20), then the
// Taylor series of sin r to r⁹ and cos r to r¹⁰ (truncation below (π/4)¹¹/11! ≈ 1.7e-9), rotated by the
// quadrant k. Larger |x|, infinities and NaN go to math.Sincos.
func sincos32(x float64) (s, c float64) {
	if !(math.Abs(x) < 1<<20) {
		return math.Sincos(x)
	}
	k := math.Round(x * (2 / math.Pi))
	r := x - k*(math.Pi/2)
	r2 := r * r
	sr := r * (1 + r2*(-1.0/6+r2*(1.0/120+r2*(-1.0/5040+r2*(1.0/362880)))))
	cr := 1 + r2*(-0.5+r2*(1.0/24+r2*(-1.0/720+r2*(1.0/40320+r2*(-1.0/3628800)))))
	switch int64(k) & 3 {
	case 0:
		return sr, cr
	case 1:
		return cr, -sr
	case 2:
		return -sr, -cr
	}
	return -cr, sr
}

// sincos64 is sin x and cos x to a few ulp for |x| < 2^20, cheaper than math.Sincos here: x = k·π/2 + r
// with π/2 split in three parts (the first two with short mantissas, so that k times them is exact) and
// |r| ≤ π/4, then the Taylor series of sin r to r¹⁷ and cos r to r¹⁸ (truncation below (π/4)¹⁹/19! ≈ 1e-19),
// rotated by the quadrant k. It is odd and even in x exactly like sin and cos (round-half-away reduction,
// odd and even series). Larger |x|, infinities and NaN go to math.Sincos.
func sincos64(x float64) (s, c float64) {
	if !(math.Abs(x) < 1<<20) {
		return math.Sincos(x)
	}
	// twice the three-part π/4 of the math package's reduction
	const pio2a, pio2b, pio2c = 2 * 7.85398125648498535156e-1, 2 * 3.77489470793079817668e-8, 2 * 2.69515142907905952645e-15
	k := math.Round(x * (2 / math.Pi))
	r := ((x - k*pio2a) - k*pio2b) - k*pio2c
	r2 := r * r
	sr := r * (1 + r2*(-1.0/6+r2*(1.0/120+r2*(-1.0/5040+r2*(1.0/362880+r2*(-1.0/39916800+r2*(1.0/6227020800+r2*(-1.0/1307674368000+r2*(1.0/355687428096000)))))))))
	cr := 1 + r2*(-0.5+r2*(1.0/24+r2*(-1.0/720+r2*(1.0/40320+r2*(-1.0/3628800+r2*(1.0/479001600+r2*(-1.0/87178291200+r2*(1.0/20922789888000+r2*(-1.0/6402373705728000)))))))))
	switch int64(k) & 3 {
	case 0:
		return sr, cr
	case 1:
		return cr, -sr
	case 2:
		return -sr, -cr
	}
	return -cr, sr
}
