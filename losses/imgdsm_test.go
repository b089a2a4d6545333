package losses

import (
	"math"
	"math/rand/v2"
	"testing"

	"rgflow/layers"
	"rgflow/models/diffusion"
)

// TestImageDSMDraw: a training sample is the exact transition of the dequantised image. Undoing it on the
// host — u_0 = (F(x_t/c) − √q F ε)/m per mode — gives back an image whose every value lies in its pixel's
// dequantisation bin [2p/256 − 1, 2(p+1)/256 − 1) (to 1e-9: rounding of the transforms, amplified by 1/m
// ≤ e^{…} at the t drawn here), for every process; and t lies in [t_min, 1].
func TestImageDSMDraw(t *testing.T) {
	b, err := diffusion.NewImageBasis(2, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	D := b.Size()
	rng := rand.New(rand.NewPCG(1, 2))
	pix := make([]uint8, 3*D)
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	v0 := make([]float64, D)
	for j := range v0 {
		v0[j] = 0.3
	}
	for _, k := range [][2]string{{"vp", "linear"}, {"ve", ""}, {"heat", "cosine"}} {
		p, err := diffusion.DefaultImageProcess(b, k[0], k[1])
		if err != nil {
			t.Fatal(err)
		}
		p.BlurSigma = 2 // keeps m ≥ 1e-2 at t ≤ 0.3, so that undoing the transition is well conditioned
		if err := p.Check(); err != nil {
			t.Fatal(err)
		}
		net, _ := layers.UNetPreset("unet-tiny", 2)
		sc, err := diffusion.NewImageScore(p, net, v0)
		if err != nil {
			t.Fatal(err)
		}
		d := &ImageDSM{Score: sc, Pixels: pix, TMin: 0.01}
		x, eps, u, e := make([]float64, D), make([]float64, D), make([]float64, D), make([]float64, D)
		m, q := make([]float64, D), make([]float64, D)
		checked := 0
		for trial := range 40 {
			idx := trial % 3
			tt, err := d.Draw(idx, rng, x, eps)
			if err != nil {
				t.Fatal(err)
			}
			if !(tt >= d.TMin && tt <= 1) {
				t.Fatalf("t=%v outside [t_min, 1]", tt)
			}
			if tt > 0.3 { // m is tiny late in the process; the inversion is only a test device
				continue
			}
			checked++
			c, _ := sc.Scale(tt)
			_ = p.Transition(0, tt, m, q)
			for i := range x {
				x[i] /= c
			}
			b.ToModes(u, x)
			b.ToModes(e, eps)
			for j := range u {
				u[j] = (u[j] - math.Sqrt(q[j])*e[j]) / m[j]
			}
			b.FromModes(u, u)
			for i, v := range u {
				lo := 2*float64(pix[idx*D+i])/256 - 1
				if v < lo-1e-9 || v >= lo+2.0/256+1e-9 {
					t.Fatalf("%s t=%v: undone value %v of pixel %d (p=%d) outside [%v, %v)", p.Name(), tt, v, i, pix[idx*D+i], lo, lo+2.0/256)
				}
			}
		}
		if checked < 5 {
			t.Fatalf("%s: only %d draws had t ≤ 0.3", p.Name(), checked)
		}
	}
}
