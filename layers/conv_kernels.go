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
	padCols   []int // the padded columns outside the source columns (before padL and from padL + w on)
	// direct: a 1×1 stride-1 convolution needs no padding, and the kernels read the input tensor itself
	// (each image plane one long row of positions).
	direct bool
	padL   int // padded columns before column 0
}

// convGroupPositions is the number of output positions a buffer fill aims at: enough work per fill to
// amortise the kernels' per-call costs, little enough that the buffer and the matching output rows stay
// in the core's L2 cache.
const convGroupPositions = 1024

// convTap is one kernel tap: input channel i read at (ty, tx) from the top-left corner of an output
// position's window, in padded coordinates (fine-grid columns before the phase split).
type convTap struct{ i, ty, tx int }

// newConvPlan is the plan of the convolution g: pads d·(k−1)/2, taps (i, a, c) in weight order.
func newConvPlan(g convGeom) *convPlan {
	taps := make([]convTap, 0, g.cin*g.kh*g.kw)
	for i := 0; i < g.cin; i++ {
		for a := 0; a < g.kh; a++ {
			for c := 0; c < g.kw; c++ {
				taps = append(taps, convTap{i, g.dil * a, g.dil * c})
			}
		}
	}
	return newConvPlanTaps(g, g.ph(), g.ph(), g.pw(), g.pw(), taps, g.kh == 1 && g.kw == 1 && g.stride == 1)
}

// newConvPlanTaps is the plan of a convolution over g's input (b, cin, h, w) with the given padding on each
// side and taps, producing g.ho × g.wo positions at stride g.stride (g's kernel fields are not used).
func newConvPlanTaps(g convGeom, padT, padB, padL, padR int, taps []convTap, direct bool) *convPlan {
	p := &convPlan{g: g, hp: g.h + padT + padB, wp: g.w + padL + padR}
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
	p.group = min(g.b, max(1, convGroupPositions/max(1, g.ho*g.wo)))
	p.bufLen = p.group*p.imgStride + 64 // slack past the last row
	if direct {
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
		p.rowSrc = append(p.rowSrc, wrap(yy-padT, g.h))
	}
	for xx := 0; xx < p.wp; xx++ {
		p.colSrc = append(p.colSrc, wrap(xx-padL, g.w))
		p.colDst = append(p.colDst, (xx%s)*p.wq+xx/s)
		if xx < padL || xx >= padL+g.w {
			p.padCols = append(p.padCols, xx)
		}
	}
	p.padL = padL
	p.rowOff = make([]int, len(taps))
	for r, t := range taps {
		p.rowOff[r] = t.i*p.chStride + t.ty*p.rowLen + (t.tx%s)*p.wq + t.tx/s
	}
	return p
}

// base is the buffer offset of output row y of the group's image n (to be added to rowOff[r]).
func (p *convPlan) base(n, y int) int { return n*p.imgStride + p.g.stride*y*p.rowLen }

// padInto copies images n0 … n0+nb−1 of x (b, cin, h, w) into buf in the padded, phase-split layout,
// writing every entry a kernel reads (padding included), so buf needs no clearing between fills.
func padInto[T float](p *convPlan, buf, x []T, n0, nb int) {
	g := p.g
	pw, pr := p.padL, p.wp-p.padL-p.g.w
	if hasConvAVX512 && g.stride == 1 {
		// One kernel call per plane (the per-row work of the loops below, in vector moves).
		j := padJob{rows: &p.rowSrc[0], nrows: p.hp, rowLen: p.rowLen, w: g.w, padL: pw,
			lsrc: &p.colSrc[0], nl: pw, rsrc: &p.colSrc[pw+g.w-1], nr: pr}
		if pr > 0 {
			j.rsrc = &p.colSrc[pw+g.w]
		}
		for n := 0; n < nb; n++ {
			for i := 0; i < g.cin; i++ {
				j.src = addr(&x[((n0+n)*g.cin+i)*g.h*g.w])
				j.dst = addr(&buf[n*p.imgStride+i*p.chStride])
				_ = buf[n*p.imgStride+i*p.chStride+p.plane-1] // the plane lies inside buf
				padRowsKernel[T](&j)
			}
		}
		runtime.KeepAlive(x)
		runtime.KeepAlive(buf)
		return
	}
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
					copy(drow[pw:pw+g.w], srow)
					for k, c := range p.colSrc[:pw] {
						var v T
						if c >= 0 {
							v = srow[c]
						}
						drow[k] = v
					}
					right := drow[pw+g.w : pw+g.w+pr]
					for k, c := range p.colSrc[pw+g.w : pw+g.w+pr] {
						var v T
						if c >= 0 {
							v = srow[c]
						}
						right[k] = v
					}
					continue
				}
				if g.stride == 2 {
					// The two column phases as plain strided copies: source column c is padded column
					// c + pw, i.e. phase (c+pw)&1, entry (c+pw)>>1; then the padding columns, and zero in the
					// entry of a phase row past the padded width (wp odd), which no kernel tap reads.
					pe, po := pw&1, (pw+1)&1
					even, odd := drow[pe*p.wq+pw>>1:], drow[po*p.wq+(pw+1)>>1:]
					n2 := g.w >> 1
					even, odd = even[:n2+g.w&1], odd[:n2]
					for j := range odd {
						even[j], odd[j] = srow[2*j], srow[2*j+1]
					}
					if g.w&1 != 0 {
						even[n2] = srow[g.w-1]
					}
					for _, xx := range p.padCols {
						var v T
						if c := p.colSrc[xx]; c >= 0 {
							v = srow[c]
						}
						drow[p.colDst[xx]] = v
					}
					if p.wp&1 != 0 {
						drow[p.rowLen-1] = 0
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

// padJob describes the padded copy of one plane for padRowsKernel (field offsets are read by the
// assembly: keep the order). Counts are in elements.
type padJob struct {
	dst, src uintptr // the padded plane and the source plane
	rows     *int    // per padded row: the source row, or −1 for zeros (nrows entries)
	nrows    int
	rowLen   int  // entries per padded row
	w        int  // source row length
	padL     int  // the column where source column 0 goes
	lsrc     *int // the source columns of padded columns 0 … nl−1 (−1: zero)
	nl       int
	rsrc     *int // the source columns of padded columns padL+w … (−1: zero)
	nr       int
}

// convForward sets y (b, cout, ho, wo) = F(x, w) + bias (bias may be nil).
func convForward[T float](g convGeom, x, w, bias, y []T) {
	convForwardPlan(nil, g, newConvPlan(g), x, w, bias, y)
}

// convForwardPlan sets y (b, cout, ho, wo) = Σ_r w[o, r] · tap r of x + bias for the plan's taps, with its
// working memory from s.
func convForwardPlan[T float](s *convScratch, g convGeom, p *convPlan, x, w, bias, y []T) {
	if p.direct {
		conv1x1Forward(s, g, x, w, bias, y)
		return
	}
	if hasConvAVX512 && g.cout <= 4 && g.stride == 1 && !p.direct {
		convForwardNarrow(s, g, p, x, w, bias, y)
		return
	}
	buf := x
	if !p.direct {
		buf = scratchBuf[T](s, p.bufLen, false) // padInto writes every entry a kernel reads
	}
	K := len(p.rowOff)
	hw := g.ho * g.wo
	if bias != nil && !hasConvAVX512 { // the AVX-512 kernels start their sums at the bias and store them
		for n := 0; n < g.b; n++ {
			for o := 0; o < g.cout; o++ {
				fill(y[(n*g.cout+o)*hw:][:hw], bias[o])
			}
		}
	}
	var (
		vec *convFwdVec[T]
		wt  []T
		kt  int
	)
	if hasConvAVX512 || hasConvAVX2 {
		vec = newConvFwdVec(s, g, p, w, bias, !hasConvAVX512)
	} else {
		wt, kt = channelMajorWeights(g, p, w)
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
				for yy := 0; yy < g.ho; yy++ {
					row := yo[yy*g.wo:][:g.wo]
					base := p.base(n, yy)
					if wt != nil {
						// One AVX2 pass per kernel offset t over all input channels (stride chStride).
						for t := 0; t < kt; t++ {
							axpyRows(row, wt[(o*kt+t)*g.cin:][:g.cin], buf[p.rowOff[t]+base:], p.chStride)
						}
						continue
					}
					for r, wv := range w[o*K : (o+1)*K] {
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

// conv1x1Cols is the number of positions conv1x1Forward takes per block: the block's input rows (Cin of
// them) stay in the core's L1 cache while every output row of the block is computed from them.
const conv1x1Cols = 256

// conv1x1Forward sets y (b, cout, hw) = w (cout, cin) · x (b, cin, hw) + bias for a 1×1 stride-1
// convolution: per image one product of a short matrix by a long one, four output rows per pass over a
// block of positions (the product kernels of the dense layers), instead of the convolution kernels'
// channel blocks, whose Cin input rows lie a whole plane apart (at 32×32 float32, 4 KB: the same L1
// cache sets for every channel).
func conv1x1Forward[T float](s *convScratch, g convGeom, x, w, bias, y []T) {
	hw := g.ho * g.wo
	if bias == nil {
		bias = scratchBuf[T](s, g.cout, true)
	}
	for n := 0; n < g.b; n++ {
		xn, yn := x[n*g.cin*hw:(n+1)*g.cin*hw], y[n*g.cout*hw:(n+1)*g.cout*hw]
		for lo := 0; lo < hw; lo += conv1x1Cols {
			mulABBiasCols(g.cout, g.cin, w, xn, bias, yn, hw, lo, min(hw, lo+conv1x1Cols))
		}
	}
}

// conv1x1Weight sets dw (cout, cin) = Σ_n gy_n (cout, hw) · x_nᵀ for a 1×1 stride-1 convolution: 4×4
// blocks of dot products over each image's positions.
func conv1x1Weight[T float](g convGeom, x, gy, dw []T) {
	hw := g.ho * g.wo
	clear(dw)
	for n := 0; n < g.b; n++ {
		mulABtCols4x4(g.cout, g.cin, gy[n*g.cout*hw:(n+1)*g.cout*hw], x[n*g.cin*hw:(n+1)*g.cin*hw], dw, hw, 0, hw)
	}
}

// convForwardNarrow is convForwardPlan for 1 … 4 output channels with the AVX-512 narrow kernels: instead
// of padding the channels to a block of 8 (mostly idle), each call computes all Cout channels for 24/Cout
// consecutive vectors of the padded plane ("virtual rows": every position from the first output on,
// those in padding columns discarded) into a scratch plane, whose real positions are then added to y.
func convForwardNarrow[T float](s *convScratch, g convGeom, p *convPlan, x, w, bias, y []T) {
	mr, vl := g.cout, vecLanes[T]()
	chunk := 24 / mr * vl                  // positions per kernel call
	n := g.ho * p.rowLen                   // virtual positions of one image
	vpl := (n + chunk - 1) / chunk * chunk // … rounded up to whole calls
	// slack: the last call reads up to a call's width past the plane (what it computes there is discarded)
	buf := scratchBuf[T](s, p.bufLen+vpl+p.rowLen+vl, false)
	K := len(p.rowOff)
	wp := scratchBuf[T](s, K*mr, false)
	for o := 0; o < mr; o++ {
		for r := 0; r < K; r++ {
			wp[r*mr+o] = w[o*K+r]
		}
	}
	scratch := scratchBuf[T](s, mr*vpl, false)
	hw := g.ho * g.wo
	for n0 := 0; n0 < g.b; n0 += p.group {
		nb := min(p.group, g.b-n0)
		padInto(p, buf, x, n0, nb)
		for i := 0; i < nb; i++ {
			base := i * p.imgStride
			for q := 0; q < n; q += chunk {
				convFwdNKernel(mr, K, p.rowOff, &buf[base+q], &wp[0], &scratch[q], vpl)
			}
			for o := 0; o < mr; o++ {
				var b0 T
				if bias != nil {
					b0 = bias[o]
				}
				yo := y[((n0+i)*g.cout+o)*hw:][:hw]
				so := scratch[o*vpl:][:vpl]
				for yy := 0; yy < g.ho; yy++ {
					sr, dr := so[yy*p.rowLen:][:g.wo], yo[yy*g.wo:][:g.wo]
					for xx, v := range sr {
						dr[xx] = v + b0
					}
				}
			}
		}
	}
	runtime.KeepAlive(buf)
	runtime.KeepAlive(scratch)
}

// channelMajorWeights returns w (cout, cin·kt) reordered as (cout, kt, cin) when the plan's taps are
// channel-major with channel stride chStride (rowOff[i·kt + t] = i·chStride + rowOff[t]), for the
// channel-strided products of axpyRows; nil otherwise.
func channelMajorWeights[T float](g convGeom, p *convPlan, w []T) ([]T, int) {
	K := len(p.rowOff)
	if K%g.cin != 0 {
		return nil, 0
	}
	kt := K / g.cin
	for i := 0; i < g.cin; i++ {
		for t := 0; t < kt; t++ {
			if p.rowOff[i*kt+t] != i*p.chStride+p.rowOff[t] {
				return nil, 0
			}
		}
	}
	wt := make([]T, len(w))
	for o := 0; o < g.cout; o++ {
		for i := 0; i < g.cin; i++ {
			for t := 0; t < kt; t++ {
				wt[(o*kt+t)*g.cin+i] = w[o*K+i*kt+t]
			}
		}
	}
	return wt, kt
}

// convBackwardWeight sets dw (cout, cin, kh, kw) = Wg(x, gy): dw[o,r] = Σ_{n,y,x} gy[n,o,y,x]·B[r; n,y,x].
func convBackwardWeight[T float](g convGeom, x, gy, dw []T) {
	convBackwardWeightS(nil, g, x, gy, dw)
}

// convBackwardWeightS is convBackwardWeight with its working memory from s.
func convBackwardWeightS[T float](s *convScratch, g convGeom, x, gy, dw []T) {
	p := s.plan(g)
	if p.direct {
		conv1x1Weight(g, x, gy, dw)
		return
	}
	convBackwardWeightPlan(s, g, p, x, gy, dw)
}

// convBackwardWeightPlan sets dw (cout, K) for the plan's K taps: dw[o,r] = Σ_{n,y,x} gy[n,o,y,x]·tap r of x
// at (n, y, x) (the vector kernels' sums replace dw; the plain loops add to it).
func convBackwardWeightPlan[T float](s *convScratch, g convGeom, p *convPlan, x, gy, dw []T) {
	buf := x
	if !p.direct {
		buf = scratchBuf[T](s, p.bufLen, false)
	}
	K := len(p.rowOff)
	hw := g.ho * g.wo
	var vec *convWgtVec[T]
	if hasConvAVX512 || hasConvAVX2 {
		vec = newConvWgtVec(s, g, p, gy, !hasConvAVX512)
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
// padding d·(k−1)/2 on both sides makes this exact for periodic and zero padding alike). For stride s each
// of the s² phases (Y mod s, X mod s) of dx is a stride-1 convolution of gy on the coarse grid with the
// taps (a, c) that reach that phase: dx[s·y'+py, s·x'+px] = Σ w[o,i,a,c]·gy[y'+δa, x'+δc] with
// δa = (py + ph − d·a)/s where that is an integer. (Or, for narrow grids, the stride-1 transposed
// convolution of gy spread onto the fine grid.)
func convBackwardData[T float](g convGeom, gy, w, dx []T) { convBackwardDataS(nil, g, gy, w, dx) }

// convBackwardDataS is convBackwardData with its working memory from s.
func convBackwardDataS[T float](sc *convScratch, g convGeom, gy, w, dx []T) {
	kk := g.kh * g.kw
	// With the vector kernels, phases narrower than a vector leave lanes idle; below that width spreading
	// gy onto the fine grid (zeros between its entries) and running one stride-1 convolution there is
	// faster despite its s² times larger arithmetic.
	spread := g.stride > 1 && hasConvAVX512 && g.wo <= vecLanes[T]()
	if spread {
		s := g.stride
		fine := scratchBuf[T](sc, g.b*g.cout*g.h*g.w, false) // zeros between the entries: the same ones set on every call
		for pl := 0; pl < g.b*g.cout; pl++ {
			for y := 0; y < g.ho; y++ {
				srow := gy[(pl*g.ho+y)*g.wo:][:g.wo]
				drow := fine[(pl*g.h+s*y)*g.w:][:g.w]
				for x, v := range srow {
					drow[s*x] = v
				}
			}
		}
		gy, g.stride, g.ho, g.wo = fine, 1, g.h, g.w
	}
	if g.stride == 1 {
		wt := scratchBuf[T](sc, len(w), false) // every element is set below
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
		convForwardPlan(sc, tg, sc.plan(tg), gy, wt, nil, dx)
		return
	}
	s := g.stride
	// offsets returns, for phase q of an axis with kernel size k and padding pad, the taps reaching it and
	// their coarse offsets δ.
	offsets := func(q, k, pad int) (idx, off []int) {
		for a := 0; a < k; a++ {
			if v := q + pad - g.dil*a; ((v%s)+s)%s == 0 {
				idx, off = append(idx, a), append(off, floorDiv(v, s))
			}
		}
		return idx, off
	}
	var z []T
	for py := 0; py < s && py < g.h; py++ {
		ay, dy := offsets(py, g.kh, g.ph())
		hy := (g.h - py + s - 1) / s
		for px := 0; px < s && px < g.w; px++ {
			cx, dxo := offsets(px, g.kw, g.pw())
			wx := (g.w - px + s - 1) / s
			if len(ay) == 0 || len(cx) == 0 {
				continue // no tap reaches this phase: it stays zero
			}
			padT, padB := max(0, -slicesMin(dy)), max(0, hy-1+slicesMax(dy)-(g.ho-1))
			padL, padR := max(0, -slicesMin(dxo)), max(0, wx-1+slicesMax(dxo)-(g.wo-1))
			nt := len(ay) * len(cx)
			taps := make([]convTap, 0, g.cout*nt)
			wt := make([]T, g.cin*g.cout*nt) // (cin, cout·taps)
			for o := 0; o < g.cout; o++ {
				for ia, a := range ay {
					for ic, c := range cx {
						t := len(taps)
						taps = append(taps, convTap{o, dy[ia] + padT, dxo[ic] + padL})
						for i := 0; i < g.cin; i++ {
							wt[i*g.cout*nt+t] = w[((o*g.cin+i)*g.kh+a)*g.kw+c]
						}
					}
				}
			}
			pg := convGeom{b: g.b, cin: g.cout, cout: g.cin, h: g.ho, w: g.wo, ho: hy, wo: wx, kh: 1, kw: 1,
				stride: 1, dil: 1, periodic: g.periodic}
			p := newConvPlanTaps(pg, padT, padB, padL, padR, taps, false)
			if need := g.b * g.cin * hy * wx; cap(z) < need {
				z = make([]T, need)
			} else {
				z = z[:need]
				fill(z, 0)
			}
			convForwardPlan(nil, pg, p, gy, wt, nil, z)
			for pl := 0; pl < g.b*g.cin; pl++ {
				for y := 0; y < hy; y++ {
					zr := z[(pl*hy+y)*wx:][:wx]
					dr := dx[(pl*g.h+s*y+py)*g.w:][:g.w]
					for x, v := range zr {
						dr[s*x+px] = v
					}
				}
			}
		}
	}
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func slicesMin(v []int) int {
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}

func slicesMax(v []int) int {
	m := v[0]
	for _, x := range v[1:] {
		m = max(m, x)
	}
	return m
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

// useVirtualRows reports whether the AVX-512 kernels should run over whole padded planes ("virtual rows")
// instead of row by row: a stride-1 convolution whose output rows fill their vectors badly (8×8 maps use
// half the lanes of a float32 vector) computes every position of the padded plane from the first output
// position on, the positions in the padding columns under a zero mask, and copies the real ones out.
func useVirtualRows(g convGeom, p *convPlan, vl int) bool {
	if p.direct || g.stride != 1 {
		return false
	}
	rows := float64(g.wo) / float64((g.wo+vl-1)/vl*vl) // lanes in use row by row
	virt := float64(g.wo) / float64(p.rowLen)          // … over the padded plane
	return virt > 1.15*rows
}

// vplane is the length of one plane of output positions in the virtual-row layout (ho padded rows,
// rounded up to whole vectors).
func vplane(g convGeom, p *convPlan, vl int) int { return (g.ho*p.rowLen + vl - 1) / vl * vl }

// convUnitsVirtual lists the vectors of one image in the virtual-row layout: x the buffer offset (as
// convUnits), y the offset in a plane of vplane positions (output row yy at yy·rowLen), mask the lanes on
// real output positions.
func convUnitsVirtual(g convGeom, p *convPlan, vl int) []convUnit {
	n := g.ho * p.rowLen
	us := make([]convUnit, 0, (n+vl-1)/vl)
	for q := 0; q < n; q += vl {
		var m uint64
		for l := 0; l < vl && q+l < n; l++ {
			if (q+l)%p.rowLen < g.wo {
				m |= 1 << l
			}
		}
		if m != 0 {
			us = append(us, convUnit{x: p.base(0, 0) + q, y: q, mask: m})
		}
	}
	return us
}

func addr[T float](v *T) uintptr { return uintptr(unsafe.Pointer(v)) }

// convFwdVec runs F with the vector kernels: mr output channels × 3 vectors of positions per call, the
// whole Cin·kh·kw reduction in registers (AVX-512: 8 channels, masked vectors of 16/8 lanes; AVX2: 4
// channels, full vectors of 8/4 lanes, the few positions past the last full vector of a row in Go).
type convFwdVec[T float] struct {
	g     convGeom
	p     *convPlan
	avx2  bool
	mr    int
	w     []T // the weights (cout, K)
	wp    []T // weights per block of mr output channels as [K][mr] (zeros past Cout), then 16 scratch entries
	dummy uintptr
	us    []convUnit // the vectors of one image
	rest  []convUnit // AVX2: the positions after the last full vector of each row, (offsets, count in mask)
	gus   []convUnit // scratch: the vectors of a group
	// virtual-row layout (useVirtualRows): the kernels write to vout, (group, cout, vpl), copied out to y
	vpl  int
	vout []T
	// AVX-512: the bias (zeros without one) per block of mr channels, the value every sum starts at (the
	// kernel stores its sums instead of adding them to y)
	init []T
}

func newConvFwdVec[T float](s *convScratch, g convGeom, p *convPlan, w, bias []T, avx2 bool) *convFwdVec[T] {
	K := len(p.rowOff)
	v := &convFwdVec[T]{g: g, p: p, avx2: avx2, mr: 8, w: w}
	vl := vecLanes[T]()
	if avx2 {
		v.mr, vl = 4, vl/2
		for _, u := range convUnits(g, p, vl) {
			if u.mask == 1<<vl-1 {
				v.us = append(v.us, u)
			} else {
				n := 0
				for m := u.mask; m != 0; m >>= 1 {
					n++
				}
				v.rest = append(v.rest, convUnit{x: u.x, y: u.y, mask: uint64(n)})
			}
		}
	} else if useVirtualRows(g, p, vl) {
		v.us, v.vpl = convUnitsVirtual(g, p, vl), vplane(g, p, vl)
		v.vout = scratchBuf[T](s, p.group*g.cout*v.vpl, false) // the kernels write every vector the copy-out reads
	} else {
		v.us = convUnits(g, p, vl)
	}
	mr := v.mr
	nob := (g.cout + mr - 1) / mr
	if !avx2 {
		v.init = scratchBuf[T](s, nob*mr, false) // zeros past Cout stay
		copy(v.init, bias)
	}
	v.wp = scratchBuf[T](s, nob*K*mr+16, false) // zeros past Cout stay
	for o := 0; o < g.cout; o++ {
		ob, j := o/mr, o%mr
		for r := 0; r < K; r++ {
			v.wp[(ob*K+r)*mr+j] = w[o*K+r]
		}
	}
	// The stores of the missing channels of the last block (and of the filler vectors) go to the scratch
	// (one whole vector: the kernel may store them without masks).
	v.dummy = addr(&v.wp[nob*K*mr])
	return v
}

// run adds F of the buffered images n0 … n0+nb−1 to y. The loop over blocks of output channels is the
// outer one, so that block's packed weights stay in L1 while the group's positions stream past.
func (v *convFwdVec[T]) run(buf, y []T, n0, nb int) {
	g, K, mr := v.g, len(v.p.rowOff), v.mr
	hw := g.ho * g.wo
	nob := (g.cout + mr - 1) / mr
	// The group's vectors as (buffer offset, output offset of channel 0, mask), in threes.
	us := v.gus[:0]
	out, ost := y, hw // where the kernels write: y itself, or the virtual-row planes
	if v.vout != nil {
		out, ost = v.vout, v.vpl
	}
	for n := 0; n < nb; n++ {
		yb := (n0 + n) * g.cout * hw
		if v.vout != nil {
			yb = n * g.cout * v.vpl
		}
		for _, u := range v.us {
			us = append(us, convUnit{x: n*v.p.imgStride + u.x, y: yb + u.y, mask: u.mask})
		}
	}
	filler := len(us)
	for len(us)%3 != 0 {
		us = append(us, convUnit{}) // mask 0 (AVX-512: reads and writes nothing; AVX2: writes to the scratch)
	}
	v.gus = us
	var (
		outs  [24]uintptr
		xs    [3]*T
		masks [4]uint64
	)
	full := uint64(1)<<vecLanes[T]() - 1
	step := uintptr(ost) * unsafe.Sizeof(*new(T)) // from one output channel to the next
	for ob := 0; ob < nob && len(us) > 0; ob++ {
		jn := min(mr, g.cout-ob*mr) // the block's real channels
		for u := 0; u < len(us); u += 3 {
			// masks[3] ≠ 0 lets the kernel store without masks (masked stores are slow): every vector is
			// full, or a filler whose outputs go to the scratch.
			masks[3] = 1
			for k, uk := range us[u : u+3] {
				xs[k], masks[k] = &buf[uk.x], uk.mask
				j := 0
				if u+k < filler {
					if uk.mask != full && v.vout == nil { // the virtual planes have room for whole vectors
						masks[3] = 0
					}
					_ = out[(ob*mr+jn-1)*ost+uk.y] // the block's last channel lies inside out
					a := addr(&out[ob*mr*ost+uk.y])
					for ; j < jn; j++ {
						outs[3*j+k] = a
						a += step
					}
				}
				for ; j < mr; j++ {
					outs[3*j+k] = v.dummy
				}
			}
			if v.avx2 {
				convFwd2Kernel(K, v.p.rowOff, &xs, &v.wp[ob*K*mr], (*[12]uintptr)(outs[:12]))
			} else {
				convFwdKernel(K, v.p.rowOff, &xs, &v.wp[ob*K*mr], &outs, &masks, &v.init[ob*mr])
			}
		}
	}
	runtime.KeepAlive(y)
	runtime.KeepAlive(v.wp)
	runtime.KeepAlive(v.vout)
	runtime.KeepAlive(v.init)
	if v.vout != nil { // the real positions of the virtual planes into y
		for pl := 0; pl < nb*g.cout; pl++ {
			src := v.vout[pl*v.vpl:][:v.vpl]
			dst := y[(n0*g.cout+pl)*hw:][:hw]
			for yy := 0; yy < g.ho; yy++ {
				copy(dst[yy*g.wo:(yy+1)*g.wo], src[yy*v.p.rowLen:][:g.wo])
			}
		}
	}
	for n := 0; n < nb; n++ { // AVX2: the positions after the last full vector of each row
		for _, u := range v.rest {
			cnt := int(u.mask)
			for o := 0; o < g.cout; o++ {
				yr := y[((n0+n)*g.cout+o)*hw+u.y:][:cnt]
				for r, wv := range v.w[o*K : (o+1)*K] {
					xr := buf[n*v.p.imgStride+u.x+v.p.rowOff[r]:][:cnt]
					for l, xv := range xr {
						yr[l] += wv * xv
					}
				}
			}
		}
	}
}

// convWgtVec runs Wg with the vector kernels: cb output channels × tb kernel taps per call (AVX-512
// float32: 8 channels × 3 taps, float64 (and Cout ≤ 4): 4 channels × 6 taps, masked vectors of 16/8 lanes; AVX2: 4
// channels × 2 taps, full vectors of 8/4 lanes, the few positions past the last full vector of a row in
// Go), accumulated lane by lane over a group of images (the group's buffer and output-gradient rows stay
// in cache); each call adds its cb·tb lane sums to acc, one number per (output channel, tap). The float32
// kernel loads 3 input vectors per unit (unaligned, mostly split across two cache lines: the costly
// loads) against 8 output-gradient vectors (whole-vector rows: aligned); in float64, 8 channels of
// output-gradient rows would no longer fit in L1 next to the input, so it keeps 4 × 6, as float32 does
// for Cout ≤ 4 (where 8 channels would be mostly padding).
type convWgtVec[T float] struct {
	g        convGeom
	p        *convPlan
	gy       []T // the output gradient, with Cout padded to a multiple of cb channels
	cpad     int
	cb       int // output channels per kernel call
	avx2     bool
	tb       int // taps per kernel call
	nob, nrb int
	acc      []T
	tail     []T // AVX2: sums over the positions the kernel leaves out, (cout, K)
	tab      []uintptr
	us       []convUnit
	rest     []convUnit // AVX2: those positions, as (offsets, count in mask)
	gst      int        // distance between output-gradient planes in gy: ho·wo, or vplane for virtual rows
}

func newConvWgtVec[T float](s *convScratch, g convGeom, p *convPlan, gy []T, avx2 bool) *convWgtVec[T] {
	hw := g.ho * g.wo
	vl := vecLanes[T]()
	K := len(p.rowOff)
	v := &convWgtVec[T]{g: g, p: p, gy: gy, avx2: avx2, cb: 8, tb: 3}
	if vl == 8 || g.cout <= 4 {
		v.cb, v.tb = 4, 6
	}
	if avx2 {
		v.cb, v.tb, vl = 4, 2, vl/2
		for _, u := range convUnits(g, p, vl) {
			if u.mask == 1<<vl-1 {
				v.us = append(v.us, u)
			} else {
				n := 0
				for m := u.mask; m != 0; m >>= 1 {
					n++
				}
				v.rest = append(v.rest, convUnit{x: u.x, y: u.y, mask: uint64(n)})
			}
		}
		v.tail = scratchBuf[T](s, g.cout*K, true)
	} else if useVirtualRows(g, p, vl) {
		v.us = convUnitsVirtual(g, p, vl)
	} else {
		v.us = convUnits(g, p, vl)
	}
	v.cpad = (g.cout + v.cb - 1) / v.cb * v.cb
	v.gst = hw
	if !avx2 && useVirtualRows(g, p, vl) {
		// The output gradient in the virtual-row layout (zeros in the padding columns), Cout padded.
		v.gst = vplane(g, p, vl)
		rl := p.rowLen
		v.gy = scratchBuf[T](s, g.b*v.cpad*v.gst, false) // the padding columns and channels stay zero
		for n := 0; n < g.b; n++ {
			for o := 0; o < g.cout; o++ {
				src := gy[(n*g.cout+o)*hw:][:hw]
				dst := v.gy[(n*v.cpad+o)*v.gst:][:v.gst]
				for yy := 0; yy < g.ho; yy++ {
					copy(dst[yy*rl:yy*rl+g.wo], src[yy*g.wo:(yy+1)*g.wo])
				}
			}
		}
	} else if v.cpad != g.cout { // the kernel reads cb channels at a time: pad with zero channels
		v.gy = scratchBuf[T](s, g.b*v.cpad*hw, false) // the padding channels stay zero
		for n := 0; n < g.b; n++ {
			copy(v.gy[n*v.cpad*hw:], gy[n*g.cout*hw:(n+1)*g.cout*hw])
		}
	}
	v.nob, v.nrb = v.cpad/v.cb, (K+v.tb-1)/v.tb
	v.acc = scratchBuf[T](s, v.nob*v.nrb*v.cb*v.tb, true)
	v.tab = make([]uintptr, 3*p.group*len(v.us)+3)
	return v
}

// run accumulates the buffered images n0 … n0+nb−1.
func (v *convWgtVec[T]) run(buf []T, n0, nb int) {
	g, p := v.g, v.p
	K, hw := len(p.rowOff), g.ho*g.wo
	size := int(unsafe.Sizeof(*new(T)))
	var rows [6]int
	t := v.tab[:3*nb*len(v.us)]
	blk := v.cb * v.tb
	for ob := 0; ob < v.nob && len(t) > 0; ob++ {
		i := 0
		for n := 0; n < nb; n++ {
			gbase, xbase := ((n0+n)*v.cpad+ob*v.cb)*v.gst, n*p.imgStride
			for _, u := range v.us {
				t[i], t[i+1], t[i+2] = addr(&v.gy[gbase+u.y]), addr(&buf[xbase+u.x]), uintptr(u.mask)
				i += 3
			}
		}
		for rb := 0; rb < v.nrb; rb++ {
			for j := range v.tb {
				rows[j] = p.rowOff[min(rb*v.tb+j, K-1)] * size
			}
			acc := v.acc[(ob*v.nrb+rb)*blk:][:blk]
			if v.avx2 {
				convWgt2Kernel(t, v.gst*size, (*[2]int)(rows[:2]), acc)
			} else {
				convWgtKernel(t, v.gst*size, &rows, acc, v.cb)
			}
		}
	}
	runtime.KeepAlive(v.gy)
	runtime.KeepAlive(buf)
	for n := 0; n < nb; n++ { // AVX2: the positions after the last full vector of each row
		for _, u := range v.rest {
			cnt := int(u.mask)
			for o := 0; o < g.cout; o++ {
				gr := v.gy[((n0+n)*v.cpad+o)*hw+u.y:][:cnt]
				for r, off := range p.rowOff {
					xr := buf[n*p.imgStride+u.x+off:][:cnt]
					var s T
					for l, gv := range gr {
						s += gv * xr[l]
					}
					v.tail[o*K+r] += s
				}
			}
		}
	}
}

// finish copies the sums into dw.
func (v *convWgtVec[T]) finish(dw []T) {
	K := len(v.p.rowOff)
	for ob := 0; ob < v.nob; ob++ {
		for rb := 0; rb < v.nrb; rb++ {
			for j := 0; j < v.tb; j++ {
				for c := 0; c < v.cb; c++ {
					o, r := ob*v.cb+c, rb*v.tb+j
					if o >= v.g.cout || r >= K {
						continue
					}
					dw[o*K+r] = v.acc[(ob*v.nrb+rb)*v.cb*v.tb+v.cb*j+c]
					if v.tail != nil {
						dw[o*K+r] += v.tail[o*K+r]
					}
				}
			}
		}
	}
}
