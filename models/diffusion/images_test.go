package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// dctVector is basis vector (c, k, l) of C×H×W images written from the formula in ImageBasis's doc
// (independent of dctMatrix).
func dctVector(C, H, W, c, k, l int) []float64 {
	v := make([]float64, C*H*W)
	sk, sl := math.Sqrt(2/float64(H)), math.Sqrt(2/float64(W))
	if k == 0 {
		sk = math.Sqrt(1 / float64(H))
	}
	if l == 0 {
		sl = math.Sqrt(1 / float64(W))
	}
	for y := range H {
		for x := range W {
			v[(c*H+y)*W+x] = sk * math.Cos(math.Pi*(float64(y)+0.5)*float64(k)/float64(H)) *
				sl * math.Cos(math.Pi*(float64(x)+0.5)*float64(l)/float64(W))
		}
	}
	return v
}

// TestImageBasis: ToModes is the matrix of the documented cosine vectors (to rounding, 1e-13 on O(1)
// entries), that matrix is orthogonal, FromModes inverts ToModes, and every basis vector is an eigenvector
// of the reflecting-boundary lattice Laplacian with eigenvalue Frequencies()[j].
func TestImageBasis(t *testing.T) {
	const C, H, W = 2, 3, 5
	b := must[*ImageBasis](t)(NewImageBasis(C, H, W))
	D := b.Size()
	F := make([][]float64, D) // F[j] = row j: modes of e_i in column i
	for j := range F {
		F[j] = make([]float64, D)
	}
	e, u := make([]float64, D), make([]float64, D)
	for i := range D {
		clear(e)
		e[i] = 1
		b.ToModes(u, e)
		for j := range D {
			F[j][i] = u[j]
		}
	}
	lam := b.Frequencies()
	for c := range C {
		for k := range H {
			for l := range W {
				j := (c*H+k)*W + l
				want := dctVector(C, H, W, c, k, l)
				for i := range D {
					if math.Abs(F[j][i]-want[i]) > 1e-13 {
						t.Fatalf("mode (%d,%d,%d) pixel %d: %v, want %v", c, k, l, i, F[j][i], want[i])
					}
				}
				// −Δ with reflecting boundaries: Σ over existing neighbours of (v_y − v_nb).
				for y := range H {
					for x := range W {
						i := (c*H+y)*W + x
						var lap float64
						for _, d := range [][2]int{{-1, 0}, {1, 0}, {0, -1}, {0, 1}} {
							yy, xx := y+d[0], x+d[1]
							if yy < 0 || yy >= H || xx < 0 || xx >= W {
								continue
							}
							lap += want[i] - want[(c*H+yy)*W+xx]
						}
						if math.Abs(lap-lam[j]*want[i]) > 1e-12 {
							t.Fatalf("mode (%d,%d,%d): −Δv = %v at pixel %d, λv = %v", c, k, l, lap, i, lam[j]*want[i])
						}
					}
				}
			}
		}
	}
	for a := range D {
		for c := range D {
			var s float64
			for i := range D {
				s += F[a][i] * F[c][i]
			}
			want := 0.0
			if a == c {
				want = 1
			}
			if math.Abs(s-want) > 1e-13 {
				t.Fatalf("F Fᵀ[%d,%d] = %v, want %v", a, c, s, want)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, D)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	y := append([]float64(nil), x...)
	b.ToModes(y, y) // aliasing allowed
	b.FromModes(y, y)
	for i := range x {
		if math.Abs(y[i]-x[i]) > 1e-13 {
			t.Fatalf("round trip pixel %d: %v, want %v", i, y[i], x[i])
		}
	}
}

func testImageProcesses(t *testing.T, b *ImageBasis) []*ImageProcess {
	var ps []*ImageProcess
	for _, k := range [][2]string{{"vp", "linear"}, {"vp", "cosine"}, {"ve", ""}, {"heat", "linear"}, {"heat", "cosine"}} {
		p, err := DefaultImageProcess(b, k[0], k[1])
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	// A gentler blur too (most modes neither untouched nor at the floor).
	p := must[*ImageProcess](t)(DefaultImageProcess(b, "heat", "cosine"))
	p.BlurSigma = 2
	must[struct{}](t)(struct{}{}, p.Check())
	return append(ps, p)
}

// TestImageProcessCoefficients: the SDE coefficients are the derivatives of the exact transitions,
// a_j(t) = ∂ ln m_j / ∂t and b_j² = ∂q_j/∂t at t: central differences over [t−h, t+h] (h = 1e-5; the
// symmetric form q(t−h, t+h)/(2h m(t, t+h)²) has a relative error O((a h)², h² ∂²b²/b²) ≲ 1e-6 for
// |a| ≤ 400 here, plus rounding ≈ 1e-16/h), tolerance 1e-5 relative to |a| + b² + 1. Transitions also
// compose exactly: m(0,t) = m(0,s) m(s,t), q(0,t) = m(s,t)² q(0,s) + q(s,t) (to 1e-12 relative).
func TestImageProcessCoefficients(t *testing.T) {
	b := must[*ImageBasis](t)(NewImageBasis(1, 4, 6))
	D := b.Size()
	m1, q1, m2, q2, m, q := make([]float64, D), make([]float64, D), make([]float64, D), make([]float64, D), make([]float64, D), make([]float64, D)
	a, bb := make([]float64, D), make([]float64, D)
	for _, p := range testImageProcesses(t, b) {
		for _, tt := range []float64{0.05, 0.3, 0.5, 0.9} {
			const h = 1e-5
			must[struct{}](t)(struct{}{}, p.Coefficients(tt, a, bb))
			must[struct{}](t)(struct{}{}, p.Transition(tt-h, tt+h, m, q))
			must[struct{}](t)(struct{}{}, p.Transition(tt, tt+h, m1, q1))
			for j := range D {
				ga := math.Log(m[j]) / (2 * h)
				gb := q[j] / (2 * h * m1[j] * m1[j])
				tol := 1e-5 * (math.Abs(a[j]) + bb[j]*bb[j] + 1)
				if math.Abs(ga-a[j]) > tol || math.Abs(gb-bb[j]*bb[j]) > tol {
					t.Fatalf("%s (blur %v) t=%v mode %d: a=%v b²=%v, from transitions %v %v", p.Name(), p.BlurSigma, tt, j, a[j], bb[j]*bb[j], ga, gb)
				}
			}
			s := tt / 3
			must[struct{}](t)(struct{}{}, p.Transition(0, s, m1, q1))
			must[struct{}](t)(struct{}{}, p.Transition(s, tt, m2, q2))
			must[struct{}](t)(struct{}{}, p.Transition(0, tt, m, q))
			for j := range D {
				if math.Abs(m1[j]*m2[j]-m[j]) > 1e-12*m[j] || math.Abs(m2[j]*m2[j]*q1[j]+q2[j]-q[j]) > 1e-12*q[j] {
					t.Fatalf("%s t=%v mode %d: composed transition (%v, %v), direct (%v, %v)", p.Name(), tt, j, m1[j]*m2[j], m2[j]*m2[j]*q1[j]+q2[j], m[j], q[j])
				}
			}
		}
	}
}

// TestImageProcessMonteCarlo: Perturb draws x_t | x_0 with the exact transition: on 4000 draws from one
// fixed image the sample mean and variance of every mode coordinate match m x̃_0 and q (mean at 5
// standard errors √(q/N); variance at 5σ of its relative error √(2/N) ≈ 2.2 %).
func TestImageProcessMonteCarlo(t *testing.T) {
	b := must[*ImageBasis](t)(NewImageBasis(2, 4, 4))
	D := b.Size()
	rng := rand.New(rand.NewPCG(3, 4))
	x0 := make([]float64, D)
	for i := range x0 {
		x0[i] = math.Sin(float64(i)) // a fixed image
	}
	u0 := make([]float64, D)
	b.ToModes(u0, x0)
	const N = 4000
	batch := make([]float64, N*D)
	for i := range batch {
		batch[i] = x0[i%D]
	}
	m, q, u := make([]float64, D), make([]float64, D), make([]float64, D)
	for _, p := range testImageProcesses(t, b) {
		for _, tt := range []float64{0.2, 0.7} {
			out := make([]float64, N*D)
			must[struct{}](t)(struct{}{}, Perturb(p, 0, tt, batch, out, rng))
			must[struct{}](t)(struct{}{}, p.Transition(0, tt, m, q))
			s1, s2 := make([]float64, D), make([]float64, D)
			for n := range N {
				b.ToModes(u, out[n*D:(n+1)*D])
				for j := range u {
					s1[j] += u[j]
					s2[j] += u[j] * u[j]
				}
			}
			for j := range D {
				mean := s1[j] / N
				v := s2[j]/N - mean*mean
				if math.Abs(mean-m[j]*u0[j]) > 5*math.Sqrt(q[j]/N) {
					t.Errorf("%s t=%v mode %d: MC mean %v, exact %v (se %v)", p.Name(), tt, j, mean, m[j]*u0[j], math.Sqrt(q[j]/N))
				}
				if math.Abs(v/q[j]-1) > 5*math.Sqrt(2.0/N) {
					t.Errorf("%s t=%v mode %d: MC variance %v, exact %v", p.Name(), tt, j, v, q[j])
				}
			}
		}
	}
}

// TestImageHeatOrdering: under the heat process higher frequencies decay faster (m_j(0,t) strictly
// decreasing in λ_j at fixed t where the decay is above its floor), the channel mean decays like VP's α, and
// VP and VE act the same on every mode.
func TestImageHeatOrdering(t *testing.T) {
	b := must[*ImageBasis](t)(NewImageBasis(1, 8, 8))
	D := b.Size()
	lam := b.Frequencies()
	heat := must[*ImageProcess](t)(DefaultImageProcess(b, "heat", "cosine"))
	heat.BlurSigma = 3
	must[struct{}](t)(struct{}{}, heat.Check())
	vp := must[*ImageProcess](t)(DefaultImageProcess(b, "vp", "cosine"))
	mh, qh, mv, qv := make([]float64, D), make([]float64, D), make([]float64, D), make([]float64, D)
	must[struct{}](t)(struct{}{}, heat.Transition(0, 0.5, mh, qh))
	must[struct{}](t)(struct{}{}, vp.Transition(0, 0.5, mv, qv))
	if math.Abs(mh[0]-mv[0]) > 1e-15 || math.Abs(qh[0]-qv[0]) > 1e-15 {
		t.Errorf("channel mean: heat (%v, %v), vp (%v, %v)", mh[0], qh[0], mv[0], qv[0])
	}
	for i := range D {
		for j := range D {
			if lam[i] < lam[j]-1e-12 && !(mh[i] > mh[j]) {
				t.Fatalf("λ %v < %v but heat mean factors %v ≤ %v", lam[i], lam[j], mh[i], mh[j])
			}
		}
		if mv[i] != mv[0] || qv[i] != qv[0] {
			t.Fatalf("vp differs between modes 0 and %d", i)
		}
	}
}

// TestImagePriorLogProb: the prior at T, a Gaussian diagonal in the cosine modes, has the log-density of
// N(0, Fᵀ diag(v) F) computed densely in pixel space (gonum Cholesky, 1e-10).
func TestImagePriorLogProb(t *testing.T) {
	const C, H, W = 1, 3, 4
	b := must[*ImageBasis](t)(NewImageBasis(C, H, W))
	D := b.Size()
	p := must[*ImageProcess](t)(DefaultImageProcess(b, "heat", "linear"))
	v0 := make([]float64, D)
	for j := range v0 {
		v0[j] = 0.1 + float64(j%3)
	}
	prior := must[*Gaussian](t)(Prior(p, v0))
	m, q := make([]float64, D), make([]float64, D)
	must[struct{}](t)(struct{}{}, p.Transition(0, 1, m, q))
	cov := mat.NewSymDense(D, nil)
	for k := range H {
		for l := range W {
			j := k*W + l
			v := dctVector(C, H, W, 0, k, l)
			vj := m[j]*m[j]*v0[j] + q[j]
			for a := range D {
				for c := a; c < D; c++ {
					cov.SetSym(a, c, cov.At(a, c)+vj*v[a]*v[c])
				}
			}
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(cov) {
		t.Fatal("covariance not positive definite")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float64, 2*D)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	got := make([]float64, 2)
	must[struct{}](t)(struct{}{}, prior.LogProb(x, got))
	for n := range 2 {
		xv := mat.NewVecDense(D, append([]float64(nil), x[n*D:(n+1)*D]...))
		var sol mat.VecDense
		if err := ch.SolveVecTo(&sol, xv); err != nil {
			t.Fatal(err)
		}
		want := -0.5 * (mat.Dot(xv, &sol) + ch.LogDet() + float64(D)*math.Log(2*math.Pi))
		if math.Abs(got[n]-want) > 1e-10 {
			t.Errorf("sample %d: log prior %v, dense %v", n, got[n], want)
		}
	}
}
