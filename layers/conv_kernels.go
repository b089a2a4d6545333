package layers

import (
	"runtime"
	"unsafe"
)

// Compute kernels of the convolution family (conv.go).
//
// Every op copies its spatial input, a group of a few images at a time, into a small padded buffer:
// layout [image][C][Hp][s][Wq] with Hp = H + 2ph rows, each row split into its s column phases of
// Wq = ⌈(W + 2pw)/s⌉ entries (the padding filled by wrap-around or zeros). In that buffer the input of
// kernel tap r = (i, a, c) for output row y of image n is a contiguous run starting at
// rowOff[r] + base(n, y): stride and dilation become plain offsets, and the convolution is an implicit
// GEMM out (Cout × positions) = W (Cout × Cin·kh·kw) · B (Cin·kh·kw × positions) whose B rows are read
// straight from the buffer (no im2col matrix). The group's buffer (tens to hundreds of KB) stays in
// cache while every output row of the group is computed from it.
//
// With AVX-512 the inner loops are the assembly kernels of conv_amd64.s; otherwise plain Go loops.

// convPlan holds the padded-buffer layout of one geometry.
type convPlan struct {
	g         convGeom
	hp, wp    int // padded height and width
	wq        int // entries per column phase of a padded row
	rowLen    int // s·wq: one padded row
	plane     int // hp·rowLen: one padded image channel
	chStride  int // distance between channels (≥ plane, padded against cache-set aliasing)
	imgStride int // cin·chStride
	group     int // images per buffer fill
	bufLen    int
	rowOff    []int // per kernel tap r = (i, a, c), in weight order
	rowSrc    []int // per padded row: the source row, or −1 for a zero row
	colSrc    []int // per padded column: the source column, or −1 for zero
	colDst    []int // per padded column: its place in the phase-split row
	// direct: a 1×1 stride-1 convolution needs no padding, and the kernels read the input tensor itself
	// (each image plane one long row of positions).
	direct bool
}

// convGroupPositions is the number of output positions a buffer fill aims at: enough work per fill to
// amortise the kernels' per-call costs, little enough that the buffer and the matching output rows stay
// in the core's L2 cache.
const convGroupPositions = 1024

func newConvPlan(g convGeom) *convPlan {
	p := &convPlan{g: g, hp: g.h + 2*g.ph(), wp: g.w + 2*g.pw()}
	s := g.stride
	p.wq = (p.wp + s - 1) / s
	p.rowLen = s * p.wq
	p.plane = p.hp * p.rowLen
	// Round the channel stride to whole 64-byte lines (16 float32) and make the line count odd, so that the
	// same position in successive channels falls into different cache sets.
	cs := (p.plane + 15) &^ 15
	if (cs/16)%2 == 0 {
		cs += 16
	}
	p.chStride = cs
	p.imgStride = g.cin * cs
	p.group = min(g.b, max(1, convGroupPositions/(g.ho*g.wo)))
	p.bufLen = p.group*p.imgStride + 64 // slack past the last row
	if g.kh == 1 && g.kw == 1 && g.stride == 1 {
		p.direct = true
		p.chStride, p.imgStride, p.bufLen = p.plane, g.cin*p.plane, 0
	}
	wrap := func(k, n int) int {
		if g.periodic {
			return ((k % n) + n) % n
		}
		if k < 0 || k >= n {
			return -1
		}
		return k
	}
	for yy := 0; yy < p.hp; yy++ {
		p.rowSrc = append(p.rowSrc, wrap(yy-g.ph(), g.h))
	}
	for xx := 0; xx < p.wp; xx++ {
		p.colSrc = append(p.colSrc, wrap(xx-g.pw(), g.w))
		p.colDst = append(p.colDst, (xx%s)*p.wq+xx/s)
	}
	p.rowOff = make([]int, 0, g.cin*g.kh*g.kw)
	for i := 0; i < g.cin; i++ {
		for a := 0; a < g.kh; a++ {
			for c := 0; c < g.kw; c++ {
				dc := g.dil * c
				p.rowOff = append(p.rowOff, i*p.chStride+g.dil*a*p.rowLen+(dc%s)*p.wq+dc/s)
			}
		}
	}
	return p
}

// base is the buffer offset of output row y of the group's image n (to be added to rowOff[r]).
func (p *convPlan) base(n, y int) int { return n*p.imgStride + p.g.stride*y*p.rowLen }

// padInto copies images n0 … n0+nb−1 of x (b, cin, h, w) into buf in the padded, phase-split layout,
// writing every entry a kernel reads (padding included), so buf needs no clearing between fills.
func padInto[T float](p *convPlan, buf, x []T, n0, nb int) {
	g := p.g
	pw := g.pw()
	for n := 0; n < nb; n++ {
		for i := 0; i < g.cin; i++ {
			src := x[((n0+n)*g.cin+i)*g.h*g.w:][:g.h*g.w]
			dst := buf[n*p.imgStride+i*p.chStride:][:p.plane]
			for yy, sy := range p.rowSrc {
				drow := dst[yy*p.rowLen:][:p.rowLen]
				if sy < 0 {
					fill(drow, 0)
					continue
				}
				srow := src[sy*g.w:][:g.w]
				if g.stride == 1 {
					mid := drow[pw : pw+g.w]
					for k, v := range srow {
						mid[k] = v
					}
					for k := 0; k < pw; k++ {
						drow[k], drow[pw+g.w+k] = 0, 0
						if c := p.colSrc[k]; c >= 0 {
							drow[k] = srow[c]
						}
						if c := p.colSrc[pw+g.w+k]; c >= 0 {
							drow[pw+g.w+k] = srow[c]
						}
					}
					continue
				}
				fill(drow, 0)
				for xx, c := range p.colSrc {
					if c >= 0 {
						drow[p.colDst[xx]] = srow[c]
					}
				}
			}
		}
	}
}

// convForward sets y (b, cout, ho, wo) = F(x, w) + bias (bias may be nil).
func convForward[T float](g convGeom, x, w, bias, y []T) {
	p := newConvPlan(g)
	buf := x
	if !p.direct {
		buf = make([]T, p.bufLen)
	}
	K := len(p.rowOff)
	hw := g.ho * g.wo
	if bias != nil {
		for n := 0; n < g.b; n++ {
			for o := 0; o < g.cout; o++ {
				fill(y[(n*g.cout+o)*hw:][:hw], bias[o])
			}
		}
	}
	var vec *convFwdVec[T]
	if hasConvAVX512 {
		vec = newConvFwdVec(g, p, w)
	}
	for n0 := 0; n0 < g.b; n0 += p.group {
		nb := min(p.group, g.b-n0)
		if p.direct {
			buf = x[n0*p.imgStride:]
		} else {
			padInto(p, buf, x, n0, nb)
		}
		if vec != nil {
			vec.run(buf, y, n0, nb)
			continue
		}
		for n := 0; n < nb; n++ {
			for o := 0; o < g.cout; o++ {
				yo := y[((n0+n)*g.cout+o)*hw:][:hw]
				wrow := w[o*K : (o+1)*K]
				for yy := 0; yy < g.ho; yy++ {
					row := yo[yy*g.wo:][:g.wo]
					base := p.base(n, yy)
					for r, wv := range wrow {
						src := buf[p.rowOff[r]+base:][:g.wo]
						for xx, v := range src {
							row[xx] += wv * v
						}
					}
				}
			}
		}
	}
}

// convBackwardWeight sets dw (cout, cin, kh, kw) = Wg(x, gy): dw[o,r] = Σ_{n,y,x} gy[n,o,y,x]·B[r; n,y,x].
func convBackwardWeight[T float](g convGeom, x, gy, dw []T) {
	p := newConvPlan(g)
	buf := x
	if !p.direct {
		buf = make([]T, p.bufLen)
	}
	K := len(p.rowOff)
	hw := g.ho * g.wo
	var vec *convWgtVec[T]
	if hasConvAVX512 {
		vec = newConvWgtVec(g, p, gy)
	}
	for n0 := 0; n0 < g.b; n0 += p.group {
		nb := min(p.group, g.b-n0)
		if p.direct {
			buf = x[n0*p.imgStride:]
		} else {
			padInto(p, buf, x, n0, nb)
		}
		if vec != nil {
			vec.run(buf, n0, nb)
			continue
		}
		for o := 0; o < g.cout; o++ {
			drow := dw[o*K : (o+1)*K]
			for n := 0; n < nb; n++ {
				gyo := gy[((n0+n)*g.cout+o)*hw:][:hw]
				for yy := 0; yy < g.ho; yy++ {
					grow := gyo[yy*g.wo:][:g.wo]
					base := p.base(n, yy)
					for r := range drow {
						src := buf[p.rowOff[r]+base:][:g.wo]
						var s T
						for xx, v := range grow {
							s += v * src[xx]
						}
						drow[r] += s
					}
				}
			}
		}
	}
	if vec != nil {
		vec.finish(dw)
	}
}

// convBackwardData sets dx (b, cin, h, w) = T(gy, w), the adjoint of F in x. For stride 1 it is the
// stride-1 convolution of gy with the kernel flipped in both axes and its channel axes swapped (the same
// padding d·(k−1)/2 on both sides makes this exact for periodic and zero padding alike); for stride s the
// output gradient is first spread onto the fine grid (zeros between), which turns T into the same
// stride-1 convolution (at s² times the arithmetic of the strided forward pass).
func convBackwardData[T float](g convGeom, gy, w, dx []T) {
	kk := g.kh * g.kw
	wt := make([]T, len(w))
	for o := 0; o < g.cout; o++ {
		for i := 0; i < g.cin; i++ {
			src := w[(o*g.cin+i)*kk:][:kk]
			dst := wt[(i*g.cout+o)*kk:][:kk]
			for t := range kk {
				dst[kk-1-t] = src[t]
			}
		}
	}
	tg := convGeom{b: g.b, cin: g.cout, cout: g.cin, h: g.h, w: g.w, ho: g.h, wo: g.w,
		kh: g.kh, kw: g.kw, stride: 1, dil: g.dil, periodic: g.periodic}
	src := gy
	if g.stride > 1 {
		s := g.stride
		src = make([]T, g.b*g.cout*g.h*g.w)
		for pl := 0; pl < g.b*g.cout; pl++ {
			for y := 0; y < g.ho; y++ {
				srow := gy[(pl*g.ho+y)*g.wo:][:g.wo]
				drow := src[(pl*g.h+s*y)*g.w:][:g.w]
				for x, v := range srow {
					drow[s*x] = v
				}
			}
		}
	}
	convForward(tg, src, wt, nil, dx)
}

// vecLanes is the number of T in one 512-bit vector.
func vecLanes[T float]() int {
	if _, ok := any(*new(T)).(float32); ok {
		return 16
	}
	return 8
}

// convUnit is one vector of output positions of one image: a run of ≤ vecLanes consecutive x in one output
// row.
type convUnit struct {
	x, y int    // offsets in the padded buffer (image 0 of the group, without rowOff) and in the output plane
	mask uint64 // lanes in use
}

// convUnits lists the vectors of every output row of one image.
func convUnits(g convGeom, p *convPlan, vl int) []convUnit {
	if p.direct { // the plane is one row: full vectors across row ends
		hw := g.ho * g.wo
		us := make([]convUnit, 0, (hw+vl-1)/vl)
		for x0 := 0; x0 < hw; x0 += vl {
			us = append(us, convUnit{x: x0, y: x0, mask: 1<<min(vl, hw-x0) - 1})
		}
		return us
	}
	us := make([]convUnit, 0, g.ho*((g.wo+vl-1)/vl)+1)
	for yy := 0; yy < g.ho; yy++ {
		for x0 := 0; x0 < g.wo; x0 += vl {
			us = append(us, convUnit{x: p.base(0, yy) + x0, y: yy*g.wo + x0, mask: 1<<min(vl, g.wo-x0) - 1})
		}
	}
	return us
}

func addr[T float](v *T) uintptr { return uintptr(unsafe.Pointer(v)) }

// convFwdVec runs F with the AVX-512 kernel: 8 output channels × 3 vectors of positions per call, the
// whole Cin·kh·kw reduction in registers.
type convFwdVec[T float] struct {
	g     convGeom
	p     *convPlan
	wp    []T // weights per block of 8 output channels as [K][8] (zeros past Cout), then 16 scratch entries
	dummy uintptr
	us    []convUnit // the vectors of one image
	gus   []convUnit // scratch: the vectors of a group
}

func newConvFwdVec[T float](g convGeom, p *convPlan, w []T) *convFwdVec[T] {
	K := len(p.rowOff)
	nob := (g.cout + 7) / 8
	v := &convFwdVec[T]{g: g, p: p, wp: make([]T, nob*K*8+16), us: convUnits(g, p, vecLanes[T]())}
	for o := 0; o < g.cout; o++ {
		ob, j := o/8, o%8
		for r := 0; r < K; r++ {
			v.wp[(ob*K+r)*8+j] = w[o*K+r]
		}
	}
	// The stores of the missing channels of the last block go to the scratch entries.
	v.dummy = addr(&v.wp[nob*K*8])
	return v
}

// run adds F of the buffered images n0 … n0+nb−1 to y. The loop over blocks of 8 output channels is the
// outer one, so that block's packed weights stay in L1 while the group's positions stream past.
func (v *convFwdVec[T]) run(buf, y []T, n0, nb int) {
	g, K := v.g, len(v.p.rowOff)
	hw := g.ho * g.wo
	nob := (g.cout + 7) / 8
	// The group's vectors as (buffer offset, output offset of channel 0, mask), in threes.
	us := v.gus[:0]
	for n := 0; n < nb; n++ {
		for _, u := range v.us {
			us = append(us, convUnit{x: n*v.p.imgStride + u.x, y: (n0+n)*g.cout*hw + u.y, mask: u.mask})
		}
	}
	for len(us)%3 != 0 {
		us = append(us, convUnit{x: us[0].x, y: us[0].y}) // mask 0: reads and writes nothing
	}
	v.gus = us
	var (
		outs  [24]uintptr
		xs    [3]*T
		masks [3]uint64
	)
	for ob := 0; ob < nob; ob++ {
		for u := 0; u < len(us); u += 3 {
			for k, uk := range us[u : u+3] {
				xs[k], masks[k] = &buf[uk.x], uk.mask
				for j := 0; j < 8; j++ {
					if o := ob*8 + j; o < g.cout {
						outs[3*j+k] = addr(&y[o*hw+uk.y])
					} else {
						outs[3*j+k] = v.dummy
					}
				}
			}
			convFwdKernel(K, v.p.rowOff, &xs, &v.wp[ob*K*8], &outs, &masks)
		}
	}
	runtime.KeepAlive(y)
	runtime.KeepAlive(v.wp)
}

// convWgtVec runs Wg with the AVX-512 kernel: 4 output channels × 6 kernel taps per call, accumulated lane
// by lane over a group of images (the group's buffer and output-gradient rows stay in cache); the lanes
// are summed at the end.
type convWgtVec[T float] struct {
	g        convGeom
	p        *convPlan
	gy       []T // the output gradient, with Cout padded to a multiple of 4 channels
	cpad     int
	nob, nrb int
	acc      []T
	tab      []uintptr
	us       []convUnit
}

func newConvWgtVec[T float](g convGeom, p *convPlan, gy []T) *convWgtVec[T] {
	hw := g.ho * g.wo
	vl := vecLanes[T]()
	K := len(p.rowOff)
	v := &convWgtVec[T]{g: g, p: p, gy: gy, cpad: (g.cout + 3) &^ 3, us: convUnits(g, p, vl)}
	if v.cpad != g.cout { // the kernel reads 4 channels at a time: pad with zero channels
		v.gy = make([]T, g.b*v.cpad*hw)
		for n := 0; n < g.b; n++ {
			copy(v.gy[n*v.cpad*hw:], gy[n*g.cout*hw:(n+1)*g.cout*hw])
		}
	}
	v.nob, v.nrb = v.cpad/4, (K+5)/6
	v.acc = make([]T, v.nob*v.nrb*24*vl)
	v.tab = make([]uintptr, 3*p.group*len(v.us))
	return v
}

// run accumulates the buffered images n0 … n0+nb−1.
func (v *convWgtVec[T]) run(buf []T, n0, nb int) {
	g, p := v.g, v.p
	K, hw, vl := len(p.rowOff), g.ho*g.wo, vecLanes[T]()
	size := int(unsafe.Sizeof(*new(T)))
	var rows [6]int
	t := v.tab[:3*nb*len(v.us)]
	for ob := 0; ob < v.nob; ob++ {
		i := 0
		for n := 0; n < nb; n++ {
			gbase, xbase := ((n0+n)*v.cpad+ob*4)*hw, n*p.imgStride
			for _, u := range v.us {
				t[i], t[i+1], t[i+2] = addr(&v.gy[gbase+u.y]), addr(&buf[xbase+u.x]), uintptr(u.mask)
				i += 3
			}
		}
		for rb := 0; rb < v.nrb; rb++ {
			for j := range rows {
				rows[j] = p.rowOff[min(rb*6+j, K-1)] * size
			}
			convWgtKernel(t, hw*size, &rows, v.acc[(ob*v.nrb+rb)*24*vl:][:24*vl])
		}
	}
	runtime.KeepAlive(v.gy)
	runtime.KeepAlive(buf)
}

// finish writes the lane sums into dw.
func (v *convWgtVec[T]) finish(dw []T) {
	K, vl := len(v.p.rowOff), vecLanes[T]()
	for ob := 0; ob < v.nob; ob++ {
		for rb := 0; rb < v.nrb; rb++ {
			for j := 0; j < 6; j++ {
				for c := 0; c < 4; c++ {
					o, r := ob*4+c, rb*6+j
					if o >= v.g.cout || r >= K {
						continue
					}
					var s T
					for _, a := range v.acc[((ob*v.nrb+rb)*24+4*j+c)*vl:][:vl] {
						s += a
					}
					dw[o*K+r] = s
				}
			}
		}
	}
}
