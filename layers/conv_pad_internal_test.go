package layers

import (
	"fmt"
	"math"
	"testing"
)

// TestPadIntoKernel: the vector padded copy (one kernel call per plane) writes exactly what the plain loops
// write, for periodic and zero padding, pads of 0–4 columns (k = 1, 3, 5 and dilation 2) and row lengths
// below, at and across vector widths, in float32 and float64; entries of the buffer outside the padded
// planes (the channel-stride gaps and the slack) keep a sentinel value.
func TestPadIntoKernel(t *testing.T) {
	if !hasConvAVX512 {
		t.Skip("no AVX-512: the vector padded copy is not used")
	}
	for _, c := range []struct {
		h, w, k, d int
		pad        Padding
	}{
		{16, 16, 3, 1, Periodic}, {5, 7, 3, 1, Zero}, {9, 37, 3, 1, Periodic}, {4, 33, 5, 2, Zero},
		{1, 2, 3, 1, Periodic}, {6, 8, 5, 1, Periodic}, {3, 17, 1, 1, Zero}, {2, 1, 3, 2, Zero},
	} {
		t.Run(fmt.Sprintf("%v-%dx%d-k%d-d%d", c.pad, c.h, c.w, c.k, c.d), func(t *testing.T) {
			g, err := newConvGeom("test", 3, 2, 1, c.h, c.w, c.k, c.k, ConvOpts{Pad: c.pad, Dilation: c.d})
			if err != nil {
				t.Fatal(err)
			}
			testPadInto[float32](t, g)
			testPadInto[float64](t, g)
		})
	}
}

func testPadInto[T float](t *testing.T, g convGeom) {
	p := newConvPlanTaps(g, g.ph(), g.ph(), g.pw(), g.pw(), []convTap{{0, 0, 0}}, false)
	x := make([]T, prod(g.xShape()))
	for i := range x {
		x[i] = T(i + 1)
	}
	sentinel := T(math.Inf(-1))
	run := func(vector bool) []T {
		old := hasConvAVX512
		hasConvAVX512 = vector
		defer func() { hasConvAVX512 = old }()
		buf := make([]T, p.bufLen)
		fill(buf, sentinel)
		padInto(p, buf, x, 1, min(p.group, g.b-1))
		return buf
	}
	want, got := run(false), run(true)
	for i := range want {
		if got[i] != want[i] && !(math.IsInf(float64(got[i]), -1) && math.IsInf(float64(want[i]), -1)) {
			t.Fatalf("%T: buffer entry %d: vector %v, loops %v", got[i], i, got[i], want[i])
		}
	}
	// The loops themselves: every padded entry is the wrapped (or zero) source value.
	for n := 0; n < min(p.group, g.b-1); n++ {
		for i := 0; i < g.cin; i++ {
			for yy := 0; yy < p.hp; yy++ {
				for xx := 0; xx < p.wp; xx++ {
					sy, sx := yy-g.ph(), xx-g.pw()
					var v T
					if g.periodic {
						sy, sx = ((sy%g.h)+g.h)%g.h, ((sx%g.w)+g.w)%g.w
						v = x[(((1+n)*g.cin+i)*g.h+sy)*g.w+sx]
					} else if sy >= 0 && sy < g.h && sx >= 0 && sx < g.w {
						v = x[(((1+n)*g.cin+i)*g.h+sy)*g.w+sx]
					}
					if got := want[n*p.imgStride+i*p.chStride+yy*p.rowLen+xx]; got != v {
						t.Fatalf("%T: image %d channel %d padded (%d, %d) = %v, want %v", got, n, i, yy, xx, got, v)
					}
				}
			}
		}
	}
}

// TestVirtualRowsChosen: the virtual-row layout is taken where output rows fill float32 vectors badly (the
// U-Net's 8×8 maps, the 6×11 and 8×8 cases of TestConvLargeMatchesNaive) and not where rows are whole
// vectors (16×16 lattice, 32×32 images) or the convolution is strided or 1×1.
func TestVirtualRowsChosen(t *testing.T) {
	for _, c := range []struct {
		h, w, k int
		opts    ConvOpts
		want    bool
	}{
		{8, 8, 3, ConvOpts{Pad: Zero}, true}, {6, 11, 3, ConvOpts{}, true}, {16, 16, 3, ConvOpts{}, false},
		{32, 32, 3, ConvOpts{Pad: Zero}, false}, {16, 16, 3, ConvOpts{Pad: Zero, Stride: 2}, false}, {8, 8, 1, ConvOpts{}, false},
	} {
		g, err := newConvGeom("test", 2, 3, 4, c.h, c.w, c.k, c.k, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := useVirtualRows(g, newConvPlan(g), 16); got != c.want {
			t.Errorf("%v: virtual rows %v, want %v", g, got, c.want)
		}
	}
}
