package layers

// Compute kernels of the convolution family (conv.go).
//
// Every op first copies its spatial input once into a padded buffer: layout [C][B][Hp][s][Wq] with
// Hp = H + 2ph rows, each row split into its s column phases of Wq = ⌈(W + 2pw)/s⌉ entries (the padding
// filled by wrap-around or zeros). In that buffer the input of kernel tap r = (i, a, c) for the output
// row (n, y) is a contiguous run starting at rowOff[r] + base(n, y): stride and dilation become plain
// offsets, and the convolution is an implicit GEMM out (Cout × positions) = W (Cout × Cin·kh·kw) ·
// B (Cin·kh·kw × positions) whose B rows are read straight from the buffer, with no im2col matrix.

// convPlan holds the padded-buffer layout of one geometry.
type convPlan struct {
	g        convGeom
	hp, wp   int // padded height and width
	wq       int // entries per column phase of a padded row
	rowLen   int // s·wq: one padded row
	plane    int // hp·rowLen: one padded image channel
	chStride int // distance between channels (≥ b·plane, padded against cache-set aliasing)
	bufLen   int
	rowOff   []int // per kernel tap r = (i, a, c), in weight order
}

func newConvPlan(g convGeom) *convPlan {
	p := &convPlan{g: g, hp: g.h + 2*g.ph(), wp: g.w + 2*g.pw()}
	s := g.stride
	p.wq = (p.wp + s - 1) / s
	p.rowLen = s * p.wq
	p.plane = p.hp * p.rowLen
	// Round the channel stride to whole 64-byte lines (16 float32) and make the line count odd, so that the
	// same position in successive channels falls into different cache sets.
	cs := (g.b*p.plane + 15) &^ 15
	if (cs/16)%2 == 0 {
		cs += 16
	}
	p.chStride = cs
	p.bufLen = g.cin*cs + 64 // slack: vector kernels may over-read a few entries past the last row
	p.rowOff = make([]int, 0, g.cin*g.kh*g.kw)
	for i := 0; i < g.cin; i++ {
		for a := 0; a < g.kh; a++ {
			for c := 0; c < g.kw; c++ {
				dc := g.dil * c
				p.rowOff = append(p.rowOff, i*cs+g.dil*a*p.rowLen+(dc%s)*p.wq+dc/s)
			}
		}
	}
	return p
}

// base is the buffer offset of output row y of image n (to be added to rowOff[r]).
func (p *convPlan) base(n, y int) int { return n*p.plane + p.g.stride*y*p.rowLen }

// pad copies x (b, cin, h, w) into buf (len ≥ bufLen) in the padded, phase-split layout, writing every
// entry a kernel reads (padding included), so buf needs no clearing.
func padInto[T float](p *convPlan, buf, x []T) {
	g := p.g
	ph, pw, s := g.ph(), g.pw(), g.stride
	for i := 0; i < g.cin; i++ {
		for n := 0; n < g.b; n++ {
			src := x[(n*g.cin+i)*g.h*g.w:][:g.h*g.w]
			dst := buf[i*p.chStride+n*p.plane:][:p.plane]
			for yy := 0; yy < p.hp; yy++ {
				drow := dst[yy*p.rowLen:][:p.rowLen]
				sy := yy - ph
				if g.periodic {
					sy = ((sy % g.h) + g.h) % g.h
				} else if sy < 0 || sy >= g.h {
					fill(drow, 0)
					continue
				}
				srow := src[sy*g.w:][:g.w]
				if s == 1 {
					copy(drow[pw:pw+g.w], srow)
					for xx := 0; xx < pw; xx++ {
						if g.periodic {
							drow[xx] = srow[(((xx-pw)%g.w)+g.w)%g.w]
							drow[pw+g.w+xx] = srow[xx%g.w]
						} else {
							drow[xx], drow[pw+g.w+xx] = 0, 0
						}
					}
					continue
				}
				fill(drow, 0)
				for xx := 0; xx < p.wp; xx++ {
					sx := xx - pw
					if g.periodic {
						sx = ((sx % g.w) + g.w) % g.w
					} else if sx < 0 || sx >= g.w {
						continue
					}
					drow[(xx%s)*p.wq+xx/s] = srow[sx]
				}
			}
		}
	}
}

// convForward sets y (b, cout, ho, wo) = F(x, w) + bias (bias may be nil).
func convForward[T float](g convGeom, x, w, bias, y []T) {
	p := newConvPlan(g)
	buf := make([]T, p.bufLen)
	padInto(p, buf, x)
	K := len(p.rowOff)
	hw := g.ho * g.wo
	for n := 0; n < g.b; n++ {
		for o := 0; o < g.cout; o++ {
			yo := y[(n*g.cout+o)*hw:][:hw]
			if bias != nil {
				fill(yo, bias[o])
			}
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

// convBackwardWeight sets dw (cout, cin, kh, kw) = Wg(x, gy): dw[o,r] = Σ_{n,y,x} gy[n,o,y,x]·B[r; n,y,x].
func convBackwardWeight[T float](g convGeom, x, gy, dw []T) {
	p := newConvPlan(g)
	buf := make([]T, p.bufLen)
	padInto(p, buf, x)
	K := len(p.rowOff)
	hw := g.ho * g.wo
	for o := 0; o < g.cout; o++ {
		drow := dw[o*K : (o+1)*K]
		for n := 0; n < g.b; n++ {
			gyo := gy[(n*g.cout+o)*hw:][:hw]
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

// convBackwardData sets dx (b, cin, h, w) = T(gy, w), the adjoint of F in x. For stride 1 it is the
// stride-1 convolution of gy with the kernel flipped in both axes and its channel axes swapped (the same
// padding d·(k−1)/2 on both sides makes this exact for periodic and zero padding alike); for stride s the
// output gradient is first spread onto the fine grid (zeros between), which turns T into the same
// stride-1 convolution.
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
