package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"rgflow/layers"
)

// TestImageExactGaussianLikelihood: images drawn from a known Gaussian (diagonal in the cosine modes)
// with the exact score give the exact log-density of their marginal at t_min, through the whole
// bits/dim path (time shift, Hutchinson's estimator, the pixel change of variables). Hutchinson is exact
// here (the Jacobian is diagonal in the modes and ε_j² = 1) and so is the central difference of a linear
// score, so the only error is RK45's (rtol = atol = 1e-9): tolerance 1e-6 bits/dim.
func TestImageExactGaussianLikelihood(t *testing.T) {
	b := must[*ImageBasis](t)(NewImageBasis(2, 4, 4))
	D := b.Size()
	rng := rand.New(rand.NewPCG(11, 12))
	v0 := make([]float64, D)
	for j := range v0 {
		v0[j] = 0.05 + 0.45*rng.Float64()
	}
	for _, kind := range [][2]string{{"vp", "linear"}, {"heat", "cosine"}, {"ve", ""}} {
		p := must[*ImageProcess](t)(DefaultImageProcess(b, kind[0], kind[1]))
		if kind[0] == "heat" {
			p.BlurSigma = 3
			must[struct{}](t)(struct{}{}, p.Check())
		}
		const tMin, n = 1e-3, 3
		score := must[*FreeScore](t)(NewFreeScore(p, v0))
		prior := must[*Gaussian](t)(Prior(p, v0))
		vmin := make([]float64, D)
		must[struct{}](t)(struct{}{}, MarginalVariance(p, tMin, v0, vmin))
		x := make([]float64, n*D)
		must[struct{}](t)(struct{}{}, (&Gaussian{Basis: b, Var: vmin}).Sample(rng, x))
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = 128 * (v + 1)
		}
		res, err := ImageBitsPerDim(p, tMin, score, prior, y, LikelihoodOptions{RTol: 1e-9, ATol: 1e-9, Hutchinson: true}, rng)
		if err != nil {
			t.Fatal(err)
		}
		u := make([]float64, D)
		for i := range n {
			b.ToModes(u, x[i*D:(i+1)*D])
			lp := 0.0
			for j, v := range vmin {
				lp += -0.5 * (u[j]*u[j]/v + math.Log(2*math.Pi*v))
			}
			want := -(lp + float64(D)*math.Log(2.0/256)) / (float64(D) * math.Ln2)
			if math.Abs(res.BitsPerDim[i]-want) > 1e-6 {
				t.Errorf("%s image %d: %v bits/dim, exact %v", p.Name(), i, res.BitsPerDim[i], want)
			}
		}
	}
}

func tinyImageScore(t *testing.T, p *ImageProcess) (*ImageScore, *layers.Store) {
	b := p.Image()
	net := layers.UNet{In: b.C, Out: b.C, Ch: 4, Mults: []int{1, 2}, ResBlocks: 1, Groups: 2, Cond: "film", Down: "conv", Up: "nearest", TimeScale: 1}
	v0 := make([]float64, b.Size())
	for j := range v0 {
		v0[j] = 0.2
	}
	sc := must[*ImageScore](t)(NewImageScore(p, net, v0))
	store := layers.NewStore(tensor.Float64, 7)
	return sc, store
}

// TestImageRandomModelBitsPerDim: a randomly initialised U-Net gives finite, sane bits/dim. With a score
// near 0 the flow is nearly the linear drift, which maps the data close to 0 at T, so the code length is
// that of a very wide Gaussian: well above the 8 bits of a uniform model and below 24 (a 16-bit-wide
// density per pixel would be absurd).
func TestImageRandomModelBitsPerDim(t *testing.T) {
	b := must[*ImageBasis](t)(NewImageBasis(1, 8, 8))
	p := must[*ImageProcess](t)(DefaultImageProcess(b, "vp", "linear"))
	sc, store := tinyImageScore(t, p)
	ns := must[*ImageNetScore](t)(NewImageNetScore(sc, store, 2))
	defer ns.Close()
	rng := rand.New(rand.NewPCG(2, 2))
	y := make([]float64, 2*b.Size())
	for i := range y {
		y[i] = float64(rng.IntN(256)) + rng.Float64()
	}
	prior := must[*Gaussian](t)(Prior(p, sc.V0))
	res, err := ImageBitsPerDim(p, 1e-3, ns, prior, y, LikelihoodOptions{Steps: 50}, rng)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range res.BitsPerDim {
		t.Logf("image %d: %.3f bits/dim (%d score evaluations)", i, v, res.NFE)
		if math.IsNaN(v) || !(v > 8 && v < 24) {
			t.Errorf("image %d: %v bits/dim, want finite in (8, 24)", i, v)
		}
	}
}

// TestImageRoundTrip: encoding images with the probability-flow ODE (RK4 from t_min to T) and decoding
// them (T to t_min) returns them up to the integrator's error, which falls at least 8-fold per doubling
// of the steps in the asymptotic range (RK4: 16-fold) — a perturbed random U-Net as the score.
func TestImageRoundTrip(t *testing.T) {
	b := must[*ImageBasis](t)(NewImageBasis(1, 8, 8))
	p := must[*ImageProcess](t)(DefaultImageProcess(b, "vp", "linear"))
	sc, store := tinyImageScore(t, p)
	ns := must[*ImageNetScore](t)(NewImageNetScore(sc, store, 2))
	defer ns.Close()
	store.Perturb(rand.New(rand.NewPCG(4, 4)), 0.02)
	const tMin = 0.05
	sh := must[*Shifted](t)(NewShifted(p, tMin))
	score := ShiftedScore{Base: ns, T0: tMin}
	rng := rand.New(rand.NewPCG(3, 3))
	x0 := make([]float64, 2*b.Size())
	for i := range x0 {
		x0[i] = 2*rng.Float64() - 1
	}
	var errs []float64
	for _, steps := range []int{32, 64, 128} {
		x := append([]float64(nil), x0...)
		if _, err := ProbabilityFlowRK4(sh, score, x, 0, sh.T(), steps); err != nil {
			t.Fatal(err)
		}
		if _, err := ProbabilityFlowRK4(sh, score, x, sh.T(), 0, steps); err != nil {
			t.Fatal(err)
		}
		e := 0.0
		for i := range x {
			e = math.Max(e, math.Abs(x[i]-x0[i]))
		}
		t.Logf("RK4 %d steps each way: max round-trip error %.3g", steps, e)
		errs = append(errs, e)
	}
	for i := 2; i < len(errs); i++ {
		if !(errs[i] < errs[i-1]/8) {
			t.Errorf("round-trip error %v → %v on doubling the steps, want an 8-fold fall", errs[i-1], errs[i])
		}
	}
}
