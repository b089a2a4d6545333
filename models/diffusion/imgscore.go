package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"

	"rgflow/layers"
)

// ImageScore is the learned score of an image process: a U-Net (layers.UNet) that predicts the noise,
//
//	ε̂ = f_θ(c(t)·x_t, t),   s̃_j(x_t, t) = −(F ε̂)_j / √q_j(0, t)   (mode coordinates, F = ImageBasis),
//
// where q_j(0, t) is the exact transition variance from a clean image and c(t) = 1/√(mean_j v_j(t)) scales
// the input to unit size (v_j(t) = m_j² V0_j + q_j, V0 the data's mean square per mode coordinate). With
// this parameterisation denoising score matching with the per-mode "variance" weighting λ_j = q_j is
// exactly the ε-prediction loss in pixel space, Σ_j (√q_j s̃_j + ε_j)² = ‖ε̂ − ε‖² (F is orthogonal), so
// the loss graph needs no transform; the host score applies F once per image.
type ImageScore struct {
	Proc *ImageProcess
	Net  layers.UNet
	V0   []float64
}

// NewImageScore checks the network against the process's image shape.
func NewImageScore(p *ImageProcess, net layers.UNet, v0 []float64) (*ImageScore, error) {
	b := p.Image()
	if net.In != b.C || net.Out != b.C {
		return nil, fmt.Errorf("diffusion: image score: network maps %d to %d channels, images have %d", net.In, net.Out, b.C)
	}
	if err := net.Validate(b.H, b.W); err != nil {
		return nil, fmt.Errorf("diffusion: image score: %w", err)
	}
	if len(v0) != b.Size() {
		return nil, fmt.Errorf("diffusion: image score: %d reference variances, want C·H·W=%d", len(v0), b.Size())
	}
	for j, v := range v0 {
		if !(v > 0) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("diffusion: image score: reference variance v0[%d]=%v, want finite and > 0", j, v)
		}
	}
	return &ImageScore{Proc: p, Net: net, V0: append([]float64(nil), v0...)}, nil
}

// Scale is c(t).
func (s *ImageScore) Scale(t float64) (float64, error) {
	v := make([]float64, len(s.V0))
	if err := MarginalVariance(s.Proc, t, s.V0, v); err != nil {
		return 0, err
	}
	m := 0.0
	for _, x := range v {
		m += x
	}
	return 1 / math.Sqrt(m/float64(len(v))), nil
}

// Build builds ε̂ = f_θ(xin, t) under s for xin = c(t)·x_t (B, C, H, W) and t (B).
func (s *ImageScore) Build(sc *layers.Scope, xin, t *G.Node) (*G.Node, error) {
	return s.Net.Apply(sc.Sub("unet"), xin, t)
}

// ImageNetScore evaluates an ImageScore on the host (a Score): a forward graph of a fixed batch, the last
// chunk of a larger batch padded with zeros.
type ImageNetScore struct {
	net   *ImageScore
	batch int
	x, t  *G.Node
	out   *G.Node
	vm    G.VM
	shape []int
	xv    []float64
	tv    []float64
	q     []float64
	u     []float64
	store *layers.Store
}

// NewImageNetScore binds the network's parameters from store into a forward graph of batch images.
func NewImageNetScore(net *ImageScore, store *layers.Store, batch int) (*ImageNetScore, error) {
	if batch < 1 {
		return nil, fmt.Errorf("diffusion: image net score: batch %d, want ≥ 1", batch)
	}
	b := net.Proc.Image()
	g := G.NewGraph()
	s := layers.NewScope(g, store)
	n := &ImageNetScore{net: net, batch: batch, store: store, shape: []int{batch, b.C, b.H, b.W}}
	n.x = s.Input("imgscore/x", n.shape...)
	n.t = s.Input("imgscore/t", batch)
	out, err := net.Build(s, n.x, n.t)
	if err != nil {
		return nil, fmt.Errorf("diffusion: image net score: %w", err)
	}
	n.out = out
	if n.vm, err = layers.NewTapeMachine(g); err != nil {
		return nil, fmt.Errorf("diffusion: image net score: %w", err)
	}
	n.xv = make([]float64, batch*b.Size())
	n.tv = make([]float64, batch)
	n.q, n.u = make([]float64, b.Size()), make([]float64, b.Size())
	return n, nil
}

// Close releases the machine.
func (n *ImageNetScore) Close() error { return n.vm.Close() }

// Epsilon writes the predicted noise ε̂(x, t) of the batch x into dst.
func (n *ImageNetScore) Epsilon(t float64, x, dst []float64) error {
	D := n.net.Proc.Image().Size()
	if len(x)%D != 0 || len(dst) != len(x) {
		return fmt.Errorf("diffusion: image net score: batch of length %d (dst %d), want a multiple of C·H·W=%d", len(x), len(dst), D)
	}
	c, err := n.net.Scale(t)
	if err != nil {
		return err
	}
	for i := range n.tv {
		n.tv[i] = t
	}
	dt := n.store.Dtype()
	for b := 0; b < len(x); b += n.batch * D {
		e := min(len(x), b+n.batch*D)
		clear(n.xv)
		for i, v := range x[b:e] {
			n.xv[i] = c * v
		}
		if err := G.Let(n.x, layers.NewDense(dt, n.shape, n.xv)); err != nil {
			return err
		}
		if err := G.Let(n.t, layers.NewDense(dt, []int{n.batch}, n.tv)); err != nil {
			return err
		}
		if err := n.vm.RunAll(); err != nil {
			n.vm.Reset()
			return fmt.Errorf("diffusion: image net score: %w", err)
		}
		out := layers.ValueFloats(n.out.Value())
		n.vm.Reset()
		copy(dst[b:e], out)
	}
	return nil
}

// Score writes s(x, t) = −Fᵀ(F ε̂ / √q) for the batch x into dst.
func (n *ImageNetScore) Score(t float64, x, dst []float64) error {
	if err := n.Epsilon(t, x, dst); err != nil {
		return err
	}
	b := n.net.Proc.Image()
	m := make([]float64, b.Size())
	if err := n.net.Proc.Transition(0, t, m, n.q); err != nil {
		return err
	}
	D := b.Size()
	for i := 0; i < len(dst); i += D {
		b.ToModes(n.u, dst[i:i+D])
		for j, q := range n.q {
			n.u[j] /= -math.Sqrt(q)
		}
		b.FromModes(dst[i:i+D], n.u)
	}
	return nil
}

// Shifted is a process seen from time T0 on: Shifted time t is the base process's time t + T0, so a
// sampler or likelihood that runs from 0 to T() works on the base's [T0, T]. The exact image processes
// start from a clean image, whose score is singular at t = 0; models are trained and evaluated on
// [t_min, T] with data standing in for the marginal at t_min.
type Shifted struct {
	Base SDE
	T0   float64
}

// NewShifted returns base seen from T0 ∈ [0, T).
func NewShifted(base SDE, t0 float64) (*Shifted, error) {
	if !(t0 >= 0 && t0 < base.T()) {
		return nil, fmt.Errorf("diffusion: shifted %s: T0=%v outside [0, %v)", base.Name(), t0, base.T())
	}
	return &Shifted{Base: base, T0: t0}, nil
}

func (s *Shifted) Name() string      { return fmt.Sprintf("%s from t=%g", s.Base.Name(), s.T0) }
func (s *Shifted) Lattice() *Lattice { return s.Base.Lattice() }
func (s *Shifted) Basis() Basis      { return BasisOf(s.Base) }
func (s *Shifted) T() float64        { return s.Base.T() - s.T0 }
func (s *Shifted) Coefficients(t float64, a, b []float64) error {
	if err := checkTime(s.Name(), t, s.T()); err != nil {
		return err
	}
	return s.Base.Coefficients(min(t+s.T0, s.Base.T()), a, b)
}
func (s *Shifted) Transition(u, t float64, mean, variance []float64) error {
	if err := checkInterval(s.Name(), u, t, s.T()); err != nil {
		return err
	}
	return s.Base.Transition(min(u+s.T0, s.Base.T()), min(t+s.T0, s.Base.T()), mean, variance)
}

// ShiftedScore evaluates score at base time t + T0 (the score of a Shifted process).
type ShiftedScore struct {
	Base Score
	T0   float64
}

func (s ShiftedScore) Score(t float64, x, dst []float64) error { return s.Base.Score(t+s.T0, x, dst) }

// ImageLikelihood is the result of ImageBitsPerDim.
type ImageLikelihood struct {
	// BitsPerDim per image: −log₂ p(y) / D for the dequantised pixels y ∈ [0, 256)^D.
	BitsPerDim []float64
	NFE        int
}

// ImageBitsPerDim measures the code length of dequantised images under the probability-flow ODE of proc
// run from tMin to T with score (in the process's own time), via LogLikelihood (Hutchinson's estimator
// unless the score is ModeDiagonal). y holds n images of C·H·W dequantised pixel values in [0, 256) (pixel
// p plus uniform noise in [0, 1)); the model acts on x = 2y/256 − 1, so log p_Y(y) = log p_X(x) +
// D ln(2/256), and the result is −log p_Y(y) / (D ln 2) per image. The model density is the
// probability-flow push-forward of prior (a Gaussian at T in the process's modes; see Prior) back to
// t_min: a proper density on R^D, so the number is an honest code length.
func ImageBitsPerDim(proc *ImageProcess, tMin float64, score Score, prior *Gaussian, y []float64, opt LikelihoodOptions, rng *rand.Rand) (*ImageLikelihood, error) {
	D := proc.Image().Size()
	if len(y) == 0 || len(y)%D != 0 {
		return nil, fmt.Errorf("diffusion: bits/dim: %d pixel values, want a positive multiple of C·H·W=%d", len(y), D)
	}
	sh, err := NewShifted(proc, tMin)
	if err != nil {
		return nil, err
	}
	if prior == nil || prior.basis() != BasisOf(proc) {
		return nil, fmt.Errorf("diffusion: bits/dim: the prior must be in the process's image basis")
	}
	x := make([]float64, len(y))
	for i, v := range y {
		x[i] = 2*v/256 - 1
	}
	lp, nfe, err := LogLikelihood(sh, ShiftedScore{Base: score, T0: tMin}, prior, x, opt, rng)
	if err != nil {
		return nil, err
	}
	out := &ImageLikelihood{BitsPerDim: make([]float64, len(lp)), NFE: nfe}
	for i, l := range lp {
		ly := l + float64(D)*math.Log(2.0/256)
		out.BitsPerDim[i] = -ly / (float64(D) * math.Ln2)
	}
	return out, nil
}
