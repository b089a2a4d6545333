package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"
)

// mixtureScore is the exact score of the empirical distribution of a few images (equal-weight point
// masses) pushed through an image process: at time t the marginal is the mixture of Gaussians with mean
// m_j(t) u_{i,j} and variance q_j(t) in every cosine mode j, whose score in the modes is
// Σ_i w_i (m_j u_{i,j} − u_j)/q_j with w the posterior weights of the centres. It is computed on the host
// from the process's transition alone, independently of any network or sampler.
type mixtureScore struct {
	proc    *ImageProcess
	centres [][]float64 // mode coordinates of the images
}

func (s *mixtureScore) Score(t float64, x, dst []float64) error {
	b := s.proc.Image()
	D := b.Size()
	m, q := make([]float64, D), make([]float64, D)
	if err := s.proc.Transition(0, t, m, q); err != nil {
		return err
	}
	u, g := make([]float64, D), make([]float64, D)
	logw := make([]float64, len(s.centres))
	for k := 0; k < len(x); k += D {
		b.ToModes(u, x[k:k+D])
		top := math.Inf(-1)
		for i, c := range s.centres {
			l := 0.0
			for j := range u {
				d := u[j] - m[j]*c[j]
				l -= d * d / (2 * q[j])
			}
			logw[i] = l
			top = math.Max(top, l)
		}
		z := 0.0
		for i := range logw {
			logw[i] = math.Exp(logw[i] - top)
			z += logw[i]
		}
		clear(g)
		for i, c := range s.centres {
			w := logw[i] / z
			for j := range g {
				g[j] += w * (m[j]*c[j] - u[j]) / q[j]
			}
		}
		b.FromModes(dst[k:k+D], g)
	}
	return nil
}

// TestImageRGBMixtureSampling follows three-channel images through the whole sampling path with the
// exact score of a set of three "training" images whose channels differ (image i is bright in channel i
// and dark in the others, with a spatial ramp that differs per channel): the prior at T, the
// predictor–corrector sampler down to t_min, and the probability-flow ODE from a perturbed training
// image at small t back to t_min. A channel or layout mix-up anywhere in the basis, the process, the
// prior or the samplers would land the samples away from every training image or on the wrong one.
func TestImageRGBMixtureSampling(t *testing.T) {
	const C, H, W, tMin = 3, 8, 8, 1e-3
	b := must[*ImageBasis](t)(NewImageBasis(C, H, W))
	D := b.Size()
	imgs := make([][]float64, C)
	for i := range imgs {
		imgs[i] = make([]float64, D)
		for c := range C {
			for y := range H {
				for x := range W {
					v := -0.7 + 0.1*float64(c)*float64(x-y)/float64(W)
					if c == i {
						v = 0.7 + 0.2*float64(y)/float64(H)
					}
					imgs[i][(c*H+y)*W+x] = v
				}
			}
		}
	}
	for _, kind := range [][2]string{{"vp", "cosine"}, {"heat", "cosine"}} {
		p := must[*ImageProcess](t)(DefaultImageProcess(b, kind[0], kind[1]))
		if kind[0] == "heat" {
			p.BlurSigma = 4 // σ_B on an 8×8 image: the finest modes decay as on 32×32 with σ_B = 16
			must[struct{}](t)(struct{}{}, p.Check())
		}
		ms := &mixtureScore{proc: p}
		v0 := make([]float64, D)
		for _, im := range imgs {
			u := make([]float64, D)
			b.ToModes(u, im)
			ms.centres = append(ms.centres, u)
			for j, x := range u {
				v0[j] += x * x / float64(len(imgs))
			}
		}
		for j := range v0 {
			v0[j] = math.Max(v0[j], 1e-6)
		}
		sh := must[*Shifted](t)(NewShifted(p, tMin))
		sc := ShiftedScore{Base: ms, T0: tMin}
		rng := rand.New(rand.NewPCG(5, 6))

		// Sampling from the prior: every sample must be one of the images, to within the noise left at
		// t_min (std ≈ 0.0025 per pixel for the cosine schedule, so ≈ 0.01 at 4σ over 192 values) plus
		// the sampler's discretisation; 0.05 is 3.2 pixel levels (2/256 each), far below the 1.4
		// separating the images' channels.
		const n = 12
		x := make([]float64, n*D)
		prior := must[*Gaussian](t)(Prior(p, v0))
		must[struct{}](t)(struct{}{}, prior.Sample(rng, x))
		if _, err := PredictorCorrector(sh, sc, x, 400, 0, 0.16, 1, rng); err != nil {
			t.Fatal(err)
		}
		seen := make([]int, len(imgs))
		for k := range n {
			best, bi := math.Inf(1), -1
			for i, im := range imgs {
				e := 0.0
				for j, v := range im {
					e = math.Max(e, math.Abs(x[k*D+j]-v))
				}
				if e < best {
					best, bi = e, i
				}
			}
			if best > 0.05 {
				t.Errorf("%s: sample %d is %.3g (max abs) from the nearest training image %d, want ≤ 0.05", p.Name(), k, best, bi)
			}
			seen[bi]++
		}
		t.Logf("%s: samples per training image %v", p.Name(), seen)

		// Round trip: each image perturbed to t = 0.2 by the exact transition and carried back to t_min
		// by the probability-flow ODE comes back to itself (same tolerance), channels in place.
		for i, im := range imgs {
			xt := make([]float64, D)
			must[struct{}](t)(struct{}{}, Perturb(p, tMin, 0.2, im, xt, rng))
			if _, err := ProbabilityFlowRK4(sh, sc, xt, 0.2-tMin, 0, 200); err != nil {
				t.Fatal(err)
			}
			e := 0.0
			for j, v := range im {
				e = math.Max(e, math.Abs(xt[j]-v))
			}
			if e > 0.05 {
				t.Errorf("%s: image %d perturbed to t = 0.2 and decoded: max error %.3g, want ≤ 0.05", p.Name(), i, e)
			}
		}
	}
}
