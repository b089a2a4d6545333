package layers

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Convolution ops that keep their working memory (convScratch: ops built with an arena) give the same bits
// as ops that allocate it per call, over several rounds with new inputs (a stale buffer, or a padded input
// kept from an earlier round, would show), in every kernel mode, float32 and float64, for the geometries
// with their own buffers: plain 3×3, narrow outputs (Cout ≤ 4), 8×8 maps (virtual rows), stride 2 (spread
// and phase input gradients) and 1×1 (read in place).
func TestConvScratchMatchesFresh(t *testing.T) {
	cases := []struct {
		name                  string
		b, cin, cout, h, w, k int
		opts                  ConvOpts
	}{
		{"zero-3x3", 3, 5, 11, 12, 12, 3, ConvOpts{Pad: Zero}},
		{"zero-narrow", 2, 6, 3, 10, 10, 3, ConvOpts{Pad: Zero}},
		{"periodic-8x8", 5, 8, 9, 8, 8, 3, ConvOpts{}},
		{"zero-s2", 3, 4, 6, 16, 16, 3, ConvOpts{Pad: Zero, Stride: 2}},
		{"zero-s2-wide", 2, 3, 5, 40, 40, 3, ConvOpts{Pad: Zero, Stride: 2}},
		{"k1", 3, 7, 10, 6, 6, 1, ConvOpts{Pad: Zero}},
		{"periodic-d2", 2, 3, 9, 9, 9, 3, ConvOpts{Dilation: 2}},
	}
	for _, mode := range ConvKernelModes() {
		for _, c := range cases {
			for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
				t.Run(fmt.Sprintf("%s/%s/%v", mode, c.name, dt), func(t *testing.T) {
					defer UseConvKernels(mode)()
					g, err := newConvGeom("test", c.b, c.cin, c.cout, c.h, c.w, c.k, c.k, c.opts)
					if err != nil {
						t.Fatal(err)
					}
					rng := rand.New(rand.NewPCG(5, uint64(len(c.name))))
					rnd := func(s ...int) *tensor.Dense {
						v := make([]float64, prod(s))
						for i := range v {
							v[i] = 2*rng.Float64() - 1
						}
						return NewDense(dt, s, v)
					}
					kept := []convOp{
						{kind: convFwd, g: g, bias: true, sc: newConvScratch()},
						{kind: convBwdData, g: g, sc: newConvScratch()},
						{kind: convBwdWeight, g: g, sc: newConvScratch()},
					}
					fresh := []convOp{{kind: convFwd, g: g, bias: true}, {kind: convBwdData, g: g}, {kind: convBwdWeight, g: g}}
					for round := range 4 {
						x, w, b, gy := rnd(g.xShape()...), rnd(g.wShape()...), rnd(g.cout), rnd(g.yShape()...)
						args := [][]G.Value{{x, w, b}, {gy, w}, {x, gy}}
						for k := range kept {
							got, err := kept[k].Do(args[k]...)
							if err != nil {
								t.Fatal(err)
							}
							want, err := fresh[k].Do(args[k]...)
							if err != nil {
								t.Fatal(err)
							}
							if !slices.Equal(Float64s(got.(*tensor.Dense)), Float64s(want.(*tensor.Dense))) {
								t.Fatalf("round %d: %s with kept buffers differs from fresh buffers", round, convNames[kept[k].kind])
							}
						}
					}
				})
			}
		}
	}
}
