package layers

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
)

// BenchmarkFusedODE times the fused integration of the ode-gerdes field (odd features φ, sin ωφ for
// ω = 1…4, whole-lattice D4 kernels, 8 RK4 steps) at batch 256, L = 16 and 32: the forward and the backward
// computations called directly (no graph), in float64 and float32, with the lane engine (the one 16×16 and
// 32×32 lattices get) and the per-sample one; and the transforms of each: one real 2-D FFT of the
// per-sample engine, one complex 2-D lane FFT (32 samples) of the lane engine.
func BenchmarkFusedODE(b *testing.B) {
	for _, L := range []int{16, 32} {
		b.Run(fmt.Sprint("L", L), func(b *testing.B) { benchFusedODE(b, L) })
	}
}

func benchFusedODE(b *testing.B, L int) {
	const batch = 256
	o := ODE{Field: KernelField{Channels: 1, Freqs: []float64{1, 2, 3, 4}, Odd: true, D4: true}, Steps: 8}
	_, _, param, np := o.Field.(KernelField).kernelGeom(L, L)
	p := &odePlan{b: batch, c: 1, h: L, w: L, freqs: []float64{1, 2, 3, 4}, odd: true, nf: 5, k: 3, np: np, param: param,
		steps: 8, t0: 1, t1: 0, tab: o.tableau()}
	for _, lanes := range []bool{true, false} {
		engine := "lanes"
		if !lanes {
			engine = "per-sample"
		}
		b.Run(engine, func(b *testing.B) {
			p.lanes = lanes
			b.Run("float64", func(b *testing.B) { benchFused[float64](b, p) })
			b.Run("float32", func(b *testing.B) { benchFused[float32](b, p) })
		})
	}
	for _, dt := range []string{"float64", "float32"} {
		b.Run(fmt.Sprintf("lanefft2-%d/%s", L, dt), func(b *testing.B) {
			run := func(z any) {
				switch z := z.(type) {
				case []float64:
					fft2Lanes(z, 1, L, false)
				case []float32:
					fft2Lanes(z, 1, L, false)
				}
			}
			var z any = make([]float64, L*L*laneCS[float64](L))
			if dt == "float32" {
				z = make([]float32, L*L*laneCS[float32](L))
			}
			c0 := cpuNow()
			for i := 0; i < b.N; i++ {
				run(z)
			}
			b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu-ns/op")
		})
	}
	f := newRealFFT2(L, L)
	x := make([]float64, L*L)
	spec := make([]complex128, L*(L/2+1))
	b.Run(fmt.Sprintf("rfft2-%d", L), func(b *testing.B) {
		c0 := cpuNow()
		for i := 0; i < b.N; i++ {
			f.forward(x, spec)
		}
		b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu-ns/op")
	})
	b.Run(fmt.Sprintf("irfft2-%d", L), func(b *testing.B) {
		c0 := cpuNow()
		for i := 0; i < b.N; i++ {
			f.inverse(spec, x)
		}
		b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu-ns/op")
	})
}

func benchFused[T float](b *testing.B, p *odePlan) {
	rng := rand.New(rand.NewPCG(1, 2))
	x, wp := make([]T, p.xSize()), make([]T, p.wSize())
	for i := range x {
		x[i] = T(rng.NormFloat64())
	}
	for i := range wp {
		wp[i] = T(0.01 * rng.NormFloat64())
	}
	acts := make([]T, p.actsSize())
	gout := make([]T, p.outSize())
	for i := range gout[:p.xSize()+p.b] { // not the kinetic energy, which this plan does not keep
		gout[i] = T(rng.NormFloat64())
	}
	out := make([]T, p.xSize()+p.wSize())
	b.Run("forward", func(b *testing.B) {
		c0 := cpuNow()
		for i := 0; i < b.N; i++ {
			odeForwardAny(p, x, wp, acts)
		}
		b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu-ns/op")
	})
	odeForwardAny(p, x, wp, acts)
	b.Run("backward", func(b *testing.B) {
		c0 := cpuNow()
		for i := 0; i < b.N; i++ {
			if err := odeBackwardAny(p, wp, acts, gout, out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuNow()-c0)/float64(b.N), "cpu-ns/op")
	})
}

// cpuNow is the CPU time (user + system) of this process in nanoseconds: on a shared machine wall time
// also counts the time spent waiting for a core.
func cpuNow() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
