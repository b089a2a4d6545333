package bulk

import (
	"math"
	"math/rand/v2"
	"testing"

	"rgflow/models"
)

// On a linear flow the posterior of the free latents is Gaussian and known exactly. The flow is NeuralRG at
// initialisation (every block layer the identity) behind a per-site input ActNorm with random scales and
// biases, so x_i = a_i z_i − b_i with a_i = e^{−logscale_i}, and the prior is N(0, 1). A free latent at a
// known site then has precision 1 + a_i²/σ² and mean a_i (y_i + b_i)/σ² / (1 + a_i²/σ²); one at a corrupted
// site keeps N(0, 1). Chains started from exact posterior draws must stay there: HMC and MALA
// (Leapfrog = 1) are run after a burn-in that adapts ε, and the sample mean and variance of every free
// latent are compared with the exact ones. Tolerance: 5 standard errors, with the error of the mean from
// batch means (15 batches) and that of the variance from the Gaussian formula 2σ⁴/n_eff, n_eff the batch-mean
// effective sample size.
func TestPosteriorSamplerIsExact(t *testing.T) {
	const L, sigma = 4, 0.7
	cfg, err := models.Preset("neuralrg-small", L, 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg.InputActNorm = true
	flow, store := testFlowCfg(t, cfg, 0, 1)
	rng := rand.New(rand.NewPCG(13, 14))
	n := L * L
	logs, bias := gauss(rng, n, 0.4), gauss(rng, n, 0.5)
	if err := store.Set(models.InputActNormName+"/logscale", []int{n}, logs); err != nil {
		t.Fatal(err)
	}
	if err := store.Set(models.InputActNormName+"/bias", []int{n}, bias); err != nil {
		t.Fatal(err)
	}
	if err := store.Freeze(store.Names()...); err != nil {
		t.Fatal(err)
	}
	obs := gauss(rng, n, 1)
	region := []int{1*L + 1}
	start := gauss(rng, n, 1)
	post, err := NewPosterior(Repair{Flow: flow, Observed: obs, Region: region, Start: start, Sigma: sigma}, store)
	if err != nil {
		t.Fatal(err)
	}
	defer post.Close()
	free := post.Free()
	mean, sd := make([]float64, len(free)), make([]float64, len(free))
	for i, k := range free {
		a := math.Exp(-logs[k])
		if k == region[0] {
			mean[i], sd[i] = 0, 1
			continue
		}
		prec := 1 + a*a/(sigma*sigma)
		mean[i], sd[i] = a*(obs[k]+bias[k])/(sigma*sigma)/prec, 1/math.Sqrt(prec)
	}
	// The energy itself against the host formula at a random point (1e-12: float64 rounding of a sum of 16
	// terms of order 10).
	zc := gauss(rng, len(free), 1)
	g := make([]float64, len(free))
	u, err := post.EvalGrad(zc, g)
	if err != nil {
		t.Fatal(err)
	}
	z := post.Latents(zc)
	want := 0.0
	for k := range n {
		want += z[k]*z[k]/2 + 0.5*math.Log(2*math.Pi)
		if k != region[0] {
			x := math.Exp(-logs[k])*z[k] - bias[k]
			want += (x - obs[k]) * (x - obs[k]) / (2 * sigma * sigma)
		}
	}
	if math.Abs(u-want) > 1e-12*math.Abs(want) {
		t.Fatalf("U = %.15g, host formula %.15g", u, want)
	}
	for _, lf := range []int{1, 3} {
		x0 := make([]float64, len(free))
		for i := range x0 {
			x0[i] = mean[i] + sd[i]*rng.NormFloat64()
		}
		const samples, batches = 1500, 15
		res, err := Sample(post.EvalGrad, x0, HMCConfig{Samples: samples, Burn: 150, Leapfrog: lf, Eps: 0.1}, rng)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("leapfrog %d: acceptance %.3f at ε = %.3f, %d gradients", lf, res.Acceptance, res.Eps, res.Grads)
		for i := range free {
			bm := make([]float64, batches)
			m, m2 := 0.0, 0.0
			for s, x := range res.Samples {
				bm[s*batches/samples] += x[i] / (samples / batches)
				m += x[i] / samples
			}
			for _, x := range res.Samples {
				m2 += (x[i] - m) * (x[i] - m) / samples
			}
			v := 0.0
			for _, b := range bm {
				v += (b - m) * (b - m) / (batches - 1)
			}
			seMean := math.Sqrt(v / batches)
			neff := math.Min(samples, m2/(seMean*seMean))
			seVar := sd[i] * sd[i] * math.Sqrt(2/neff)
			if math.Abs(m-mean[i]) > 5*seMean || math.Abs(m2-sd[i]*sd[i]) > 5*seVar {
				t.Errorf("leapfrog %d, latent %d: mean %.4f ± %.4f (exact %.4f), variance %.4f ± %.4f (exact %.4f)",
					lf, free[i], m, seMean, mean[i], m2, seVar, sd[i]*sd[i])
			}
		}
	}
}

// A Sample call with bad settings is an error.
func TestSampleConfig(t *testing.T) {
	u := func(x, g []float64) (float64, error) { g[0] = x[0]; return x[0] * x[0] / 2, nil }
	for _, c := range []HMCConfig{{Samples: 0, Leapfrog: 1, Eps: 0.1}, {Samples: 1, Leapfrog: 0, Eps: 0.1}, {Samples: 1, Leapfrog: 1, Eps: 0}, {Samples: 1, Leapfrog: 1, Eps: 0.1, Target: 1}} {
		if _, err := Sample(u, []float64{0}, c, rand.New(rand.NewPCG(1, 1))); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
