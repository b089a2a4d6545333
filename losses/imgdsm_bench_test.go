//go:build unix

package losses

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"rgflow/layers"
	"rgflow/models/diffusion"
	"rgflow/train"
)

// BenchmarkImageDSMStep times one complete DSM training step of a U-Net preset on 3×32×32 images under
// the VP cosine process (draw the images' dequantisation, t and ε, forward, loss, backward, Adam),
// batch 32, through the Trainer on one worker; graph construction is not timed. cpu-ms/op is the process
// CPU time per step (run with GOMAXPROCS=1 for one thread). bench/unet_torch.py is
// the same network, loss and optimiser in PyTorch (bench/unet_compare.sh runs both, alternating).
func BenchmarkImageDSMStep(b *testing.B) {
	for _, preset := range []string{"unet-tiny"} {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			b.Run(fmt.Sprintf("%s/%v", preset, dt), func(b *testing.B) {
				const C, S, B, N = 3, 32, 32, 256
				basis, err := diffusion.NewImageBasis(C, S, S)
				if err != nil {
					b.Fatal(err)
				}
				proc, err := diffusion.DefaultImageProcess(basis, "vp", "cosine")
				if err != nil {
					b.Fatal(err)
				}
				net, _ := layers.UNetPreset(preset, C)
				v0 := make([]float64, basis.Size())
				for j := range v0 {
					v0[j] = 0.25
				}
				sc, err := diffusion.NewImageScore(proc, net, v0)
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 1))
				pix := make([]uint8, N*basis.Size())
				for i := range pix {
					pix[i] = uint8(rng.IntN(256))
				}
				store := layers.NewStore(dt, 1)
				tr, err := train.New(store, &ImageDSM{Score: sc, Pixels: pix, TMin: 1e-3}, train.Config{
					Steps: int64(b.N), Batch: B, LR: 2e-4, CheckpointEvery: -1, LogEvery: 1 << 40, Workers: 1,
				})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				b.ReportAllocs()
				b.ResetTimer()
				c0 := cpuTime()
				if err := tr.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				// Process CPU time per step: on a loaded machine it leaves out waiting for a core.
				b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
