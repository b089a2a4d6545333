package losses

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The logit transform, its log-Jacobian against a central finite difference, and the inverse back to pixels
// for any u in [0, 1) not within rounding (≈1e-12) of a bin edge.
func TestPreprocessLogit(t *testing.T) {
	for _, p := range []Preprocess{{}, {Alpha: 0.01}, {Alpha: 0.2}} {
		for _, xt := range []float64{0, 1.0 / 512, 0.1, 0.5, 0.77, 255.99 / 256} {
			y, ld := p.Logit(xt)
			h := 1e-6
			yp, _ := p.Logit(xt + h)
			ym, _ := p.Logit(xt - h)
			if fd := math.Log((yp - ym) / (2 * h)); math.Abs(fd-ld) > 1e-6 {
				t.Errorf("α=%g x̃=%g: ln|dy/dx̃| = %.9g, finite difference %.9g", p.alpha(), xt, ld, fd)
			}
			if back := p.Dequantised(y); math.Abs(back-xt) > 1e-14 {
				t.Errorf("α=%g x̃=%g: inverse %.17g", p.alpha(), xt, back)
			}
		}
	}
	// The default α = 0.05 (RealNVP's): y = logit(0.05 + 0.9 x̃).
	y, ld := Preprocess{}.Logit(0.5)
	if y != 0 || math.Abs(ld-math.Log(0.9/0.25)) > 1e-15 {
		t.Errorf("x̃ = ½: y = %g, ln|dy/dx̃| = %g, want 0 and ln 3.6", y, ld)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	p := Preprocess{}
	for x := 0; x < 256; x++ {
		for _, u := range []float64{1e-6, 0.5, 1 - 1e-6, 1e-6 + (1-2e-6)*rng.Float64()} {
			y, _ := p.Logit((float64(x) + u) / 256)
			if got := p.Pixel(y); int(got) != x {
				t.Errorf("pixel %d with u=%g: back to %d", x, u, got)
			}
		}
	}
	if p.Pixel(math.Inf(1)) != 255 || p.Pixel(math.Inf(-1)) != 0 || p.Pixel(math.NaN()) != 0 || p.Pixel(40) != 255 {
		t.Error("clamping of out-of-range y")
	}
}

func TestPreprocessApply(t *testing.T) {
	pix := []uint8{0, 10, 255, 128, 3, 4}
	y := make([]float64, 6)
	ld := make([]float64, 2)
	fixed := Preprocess{Fixed: true, U: 0.5}
	if err := fixed.Apply(nil, pix, 3, y, ld); err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 2; b++ {
		s := 0.0
		for i := 3 * b; i < 3*b+3; i++ {
			q := 0.05 + 0.9*(float64(pix[i])+0.5)/256
			if want := math.Log(q / (1 - q)); math.Abs(y[i]-want) > 1e-14 {
				t.Errorf("y[%d] = %g, want %g", i, y[i], want)
			}
			s += math.Log(0.9 / (q * (1 - q)))
		}
		if math.Abs(ld[b]-s) > 1e-12 {
			t.Errorf("log-det %d = %g, want %g", b, ld[b], s)
		}
	}
	// Random u: reproducible from the seed, and within each pixel's bin.
	a, b := make([]float64, 6), make([]float64, 6)
	p := Preprocess{}
	p.Apply(rand.New(rand.NewPCG(3, 4)), pix, 3, a, ld)
	p.Apply(rand.New(rand.NewPCG(3, 4)), pix, 3, b, ld)
	for i := range a {
		if a[i] != b[i] || p.Pixel(a[i]) != pix[i] {
			t.Errorf("value %d: %g vs %g, pixel %d", i, a[i], b[i], p.Pixel(a[i]))
		}
	}
	for _, c := range []struct {
		p    Preprocess
		rng  *rand.Rand
		per  int
		what string
	}{
		{Preprocess{}, nil, 3, "nil rng"},
		{Preprocess{Alpha: 0.5}, nil, 3, "α = ½"},
		{Preprocess{Fixed: true, U: 1}, nil, 3, "u = 1"},
		{fixed, nil, 4, "6 pixels in images of 4"},
	} {
		if err := c.p.Apply(c.rng, pix, c.per, y, ld); err == nil {
			t.Errorf("%s accepted", c.what)
		}
	}
	if got := BitsPerDim(0, 10); got != 8 {
		t.Errorf("BitsPerDim(0) = %g, want 8", got)
	}
}

// The code length of an image is its bits/dim times its dimension; per real pixel it is spread over fewer
// values (exact arithmetic on small integers and ln 2, so 1e-12).
func TestCodeLength(t *testing.T) {
	nll := 300.0
	if got, want := CodeLengthBits(nll, 1024), 1024*BitsPerDim(nll, 1024); math.Abs(got-want) > 1e-12*want {
		t.Errorf("CodeLengthBits = %.15g, want %.15g", got, want)
	}
	if got, want := BitsPerRealDim(nll, 1024, 784), (nll/math.Ln2+8192)/784; math.Abs(got-want) > 1e-12*want {
		t.Errorf("BitsPerRealDim = %.15g, want %.15g", got, want)
	}
	if math.Abs(BitsPerRealDim(nll, 100, 100)-BitsPerDim(nll, 100)) > 1e-12 {
		t.Errorf("without padding the two figures differ: %g, %g", BitsPerRealDim(nll, 100, 100), BitsPerDim(nll, 100))
	}
}
