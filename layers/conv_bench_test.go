package layers

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convBenchCases are the two shapes of bench/conv_compare.sh: (a) a lattice layer, periodic 3×3,
// B=128, 32→32 channels, 16×16; (b) an image layer, zero-padded 3×3, B=32, 64→64, 32×32.
var convBenchCases = []struct {
	name               string
	b, cin, cout, h, k int
	opts               ConvOpts
}{
	{"periodic-B128-C32-16x16", 128, 32, 32, 16, 3, ConvOpts{Pad: Periodic}},
	{"zero-B32-C64-32x32", 32, 64, 64, 32, 3, ConvOpts{Pad: Zero}},
	{"k1-B128-C32-16x16", 128, 32, 32, 16, 1, ConvOpts{}},
	{"periodic-s2-B128-C32-16x16", 128, 32, 32, 16, 3, ConvOpts{Stride: 2}},
	// The first and last convolutions of the DSM benchmark's CNN score (losses.BenchmarkDSMStepL16).
	{"periodic-B128-C2to32-16x16", 128, 2, 32, 16, 3, ConvOpts{Pad: Periodic}},
	{"periodic-B128-C32to1-16x16", 128, 32, 1, 16, 3, ConvOpts{Pad: Periodic}},
	// Layers of the unet-tiny DSM step (losses.BenchmarkImageDSMStep): batch 32, zero padding.
	{"zero-B32-C3to16-32x32", 32, 3, 16, 32, 3, ConvOpts{Pad: Zero}},
	{"zero-B32-C16-32x32", 32, 16, 16, 32, 3, ConvOpts{Pad: Zero}},
	{"zero-B32-C48to16-32x32", 32, 48, 16, 32, 3, ConvOpts{Pad: Zero}},
	{"zero-B32-C32-32x32", 32, 32, 32, 32, 3, ConvOpts{Pad: Zero}},
	{"zero-B32-C16to3-32x32", 32, 16, 3, 32, 3, ConvOpts{Pad: Zero}},
	{"zero-B32-C32-16x16", 32, 32, 32, 16, 3, ConvOpts{Pad: Zero}},
	{"zero-B32-C64to32-16x16", 32, 64, 32, 16, 3, ConvOpts{Pad: Zero}},
	{"zero-B32-C32-8x8", 32, 32, 32, 8, 3, ConvOpts{Pad: Zero}},
	{"zero-s2-B32-C16-32x32", 32, 16, 16, 32, 3, ConvOpts{Pad: Zero, Stride: 2}},
	{"k1-B32-C48to16-32x32", 32, 48, 16, 32, 1, ConvOpts{Pad: Zero}},
}

// convFlops is 2·B·Cout·Cin·k²·Ho·Wo, the multiply-adds of one pass (forward, or either backward op).
func convFlops(g convGeom) float64 {
	return 2 * float64(g.b*g.cout*g.cin*g.kh*g.kw*g.ho*g.wo)
}

// BenchmarkConv times forward + backward (input and weight gradients) of one convolution: the three ops
// F(x, w), T(gy, w) and Wg(x, gy) of a training step, called as the TapeMachine calls them (Do, fresh
// outputs). It reports GFLOP/s over the 3 passes. Run with -cpu 1 to compare with bench/conv_torch.py.
func BenchmarkConv(b *testing.B) {
	for _, c := range convBenchCases {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			b.Run(fmt.Sprintf("%s-%v", c.name, dt), func(b *testing.B) {
				g, err := newConvGeom("bench", c.b, c.cin, c.cout, c.h, c.h, c.k, c.k, c.opts)
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				rnd := func(s []int) *tensor.Dense {
					v := make([]float64, prod(s))
					for i := range v {
						v[i] = rng.Float64()*2 - 1
					}
					return NewDense(dt, s, v)
				}
				x, w, gy := rnd(g.xShape()), rnd(g.wShape()), rnd(g.yShape())
				fwd, bd, bw := convOp{kind: convFwd, g: g}, convOp{kind: convBwdData, g: g}, convOp{kind: convBwdWeight, g: g}
				b.ResetTimer()
				cpu0 := processCPU()
				for i := 0; i < b.N; i++ {
					for _, call := range []struct {
						op   convOp
						a, c G.Value
					}{{fwd, x, w}, {bd, gy, w}, {bw, x, gy}} {
						if _, err := call.op.Do(call.a, call.c); err != nil {
							b.Fatal(err)
						}
					}
				}
				reportConv(b, 3*convFlops(g), cpu0)
			})
		}
	}
}

// reportConv reports GFLOP/s by wall time and, where measured, the process CPU time per op and the
// GFLOP/s by CPU time (robust against a loaded machine).
func reportConv(b *testing.B, flops float64, cpu0 time.Duration) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(cpu.Seconds()*1e3/float64(b.N), "cpu-ms/op")
		b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "cpu-GFLOP/s")
	}
}

// BenchmarkConvOps times the three ops of BenchmarkConv one by one (GFLOP/s of one pass each).
func BenchmarkConvOps(b *testing.B) {
	for _, c := range convBenchCases {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			g, err := newConvGeom("bench", c.b, c.cin, c.cout, c.h, c.h, c.k, c.k, c.opts)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			rnd := func(s []int) *tensor.Dense {
				v := make([]float64, prod(s))
				for i := range v {
					v[i] = rng.Float64()*2 - 1
				}
				return NewDense(dt, s, v)
			}
			x, w, gy := rnd(g.xShape()), rnd(g.wShape()), rnd(g.yShape())
			for _, call := range []struct {
				op   convOp
				a, c G.Value
			}{{convOp{kind: convFwd, g: g}, x, w}, {convOp{kind: convBwdData, g: g}, gy, w}, {convOp{kind: convBwdWeight, g: g}, x, gy}} {
				b.Run(fmt.Sprintf("%s-%v-%s", c.name, dt, convNames[call.op.kind]), func(b *testing.B) {
					cpu0 := processCPU()
					for i := 0; i < b.N; i++ {
						if _, err := call.op.Do(call.a, call.c); err != nil {
							b.Fatal(err)
						}
					}
					reportConv(b, convFlops(g), cpu0)
				})
			}
		}
	}
}

// BenchmarkFMAPeak measures the core's FMA throughput with 12 independent 512-bit FMA chains: the peak
// GFLOP/s quoted next to BenchmarkConv.
func BenchmarkFMAPeak(b *testing.B) {
	for _, c := range []struct {
		name  string
		lanes int
		run   func(int) bool
	}{{"float32", 16, fmaPeak[float32]}, {"float64", 8, fmaPeak[float64]}} {
		b.Run(c.name, func(b *testing.B) {
			const rounds = 1 << 20
			if !c.run(1) {
				b.Skip("no AVX-512 on this CPU")
			}
			b.ResetTimer()
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				c.run(rounds)
			}
			reportConv(b, rounds*12*float64(c.lanes)*2, cpu0)
		})
	}
}

// BenchmarkPadInto times the padded copies of the convolution kernels (every pass makes one of its
// input) for the lattice case: B=128, 32 channels, 16×16, periodic, one buffer fill of p.group images at a
// time over the whole batch.
func BenchmarkPadInto(b *testing.B) {
	g, err := newConvGeom("bench", 128, 32, 32, 16, 16, 3, 3, ConvOpts{Pad: Periodic})
	if err != nil {
		b.Fatal(err)
	}
	p := newConvPlan(g)
	x := make([]float32, prod(g.xShape()))
	for i := range x {
		x[i] = float32(i)
	}
	buf := make([]float32, p.bufLen)
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		for n0 := 0; n0 < g.b; n0 += p.group {
			padInto(p, buf, x, n0, min(p.group, g.b-n0))
		}
	}
}

// BenchmarkUpsampleConv times forward + input and weight gradients of the U-Net's up-sampling layer
// (unet-tiny: B=32, 32 channels, 16×16 → 32×32, float32) as UpsampleConv2D ("fused") and as Upsample2x
// followed by a zero-padded 3×3 convolution ("two-ops": the up-sampling, the convolution's three passes
// and the block sum of the up-sampled gradient), called as the TapeMachine calls them (Do), with the
// working memory kept between calls as in training. cpu-ms/op is the process CPU time per iteration.
func BenchmarkUpsampleConv(b *testing.B) {
	const B, C, H = 32, 32, 16
	rng := rand.New(rand.NewPCG(3, 4))
	rnd := func(s ...int) *tensor.Dense {
		v := make([]float64, prod(s))
		for i := range v {
			v[i] = rng.Float64()*2 - 1
		}
		return NewDense(tensor.Float32, s, v)
	}
	x, w, bias, gy := rnd(B, C, H, H), rnd(C, C, 3, 3), rnd(C), rnd(B, C, 2*H, 2*H)
	ug := upGeom{b: B, cin: C, cout: C, h: H, w: H}
	g, err := newConvGeom("bench", B, C, C, 2*H, 2*H, 3, 3, ConvOpts{Pad: Zero})
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, calls func() error) {
		cpu0 := processCPU()
		for i := 0; i < b.N; i++ {
			if err := calls(); err != nil {
				b.Fatal(err)
			}
		}
		if cpu := processCPU() - cpu0; cpu > 0 {
			b.ReportMetric(cpu.Seconds()*1e3/float64(b.N), "cpu-ms/op")
		}
	}
	b.Run("fused", func(b *testing.B) {
		f := upConvOp{kind: convFwd, g: ug, sc: newConvScratch()}
		d := upConvOp{kind: convBwdData, g: ug, sc: newConvScratch()}
		wg := upConvOp{kind: convBwdWeight, g: ug, sc: newConvScratch()}
		run(b, func() error {
			if _, err := f.Do(x, w, bias); err != nil {
				return err
			}
			if _, err := d.Do(gy, w); err != nil {
				return err
			}
			_, err := wg.Do(x, gy)
			return err
		})
	})
	b.Run("two-ops", func(b *testing.B) {
		up := upsampleOp{b: B, c: C, h: H, w: H}
		sum := upsampleOp{b: B, c: C, h: H, w: H, adj: true}
		f := convOp{kind: convFwd, g: g, bias: true, sc: newConvScratch()}
		d := convOp{kind: convBwdData, g: g, sc: newConvScratch()}
		wg := convOp{kind: convBwdWeight, g: g, sc: newConvScratch()}
		run(b, func() error {
			u, err := up.Do(x)
			if err != nil {
				return err
			}
			if _, err := f.Do(u, w, bias); err != nil {
				return err
			}
			du, err := d.Do(gy, w)
			if err != nil {
				return err
			}
			if _, err := sum.Do(du); err != nil {
				return err
			}
			_, err = wg.Do(u, gy)
			return err
		})
	})
}
