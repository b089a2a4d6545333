package layers

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
)

// Embeddings of one scalar per sample (a diffusion time t, a noise level σ or log σ) into a (B, D)
// feature vector, for conditioning networks (see FiLM and MLP.ApplyCond). Both kinds are fixed functions
// of the scalar with no trained parameters; a learned map of the embedding (FiLM's linear layer, the
// conditioner's conditioning weights) follows them.

// DefaultMaxPeriod is SinusoidalEmbedding's MaxPeriod when none is given.
const DefaultMaxPeriod = 10000

// SinusoidalEmbedding is the transformer-style embedding of a scalar t into D = Dim features:
//
//	e[b, k] = cos(ω_k · Scale · t_b),  e[b, K + k] = sin(ω_k · Scale · t_b),  ω_k = MaxPeriod^(−k/K),
//
// for k < K = Dim/2 (the layout and frequencies of the DDPM / guided-diffusion timestep embedding). The
// frequencies run from 1 down to 1/MaxPeriod, so t should vary over O(1…MaxPeriod): for t ∈ [0, 1] set
// Scale to about 1000 (DDPM's integer steps). Dim must be even and ≥ 2; MaxPeriod 0 means
// DefaultMaxPeriod; Scale 0 means 1.
type SinusoidalEmbedding struct {
	Dim       int
	MaxPeriod float64
	Scale     float64
}

// Frequencies returns the angular frequencies multiplying t, Scale·ω_k for k < Dim/2.
func (e SinusoidalEmbedding) Frequencies() ([]float64, error) {
	if e.Dim < 2 || e.Dim%2 != 0 {
		return nil, fmt.Errorf("layers: SinusoidalEmbedding: dimension %d, want an even number ≥ 2", e.Dim)
	}
	p := e.MaxPeriod
	if p == 0 {
		p = DefaultMaxPeriod
	}
	if !(p > 1) || math.IsInf(p, 0) {
		return nil, fmt.Errorf("layers: SinusoidalEmbedding: max period %g, want a finite number > 1", p)
	}
	scale := e.Scale
	if scale == 0 {
		scale = 1
	}
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("layers: SinusoidalEmbedding: scale %g, want a finite number", scale)
	}
	k := e.Dim / 2
	w := make([]float64, k)
	for i := range w {
		w[i] = scale * math.Exp(-math.Log(p)*float64(i)/float64(k))
	}
	return w, nil
}

// Apply embeds t, a (B) or (B, 1) node, into a (B, Dim) node.
func (e SinusoidalEmbedding) Apply(t *G.Node) (*G.Node, error) {
	w, err := e.Frequencies()
	if err != nil {
		return nil, err
	}
	return embedScalar("SinusoidalEmbedding", t, w, true)
}

// FourierEmbedding is the random-Fourier-feature embedding of a scalar t (Tancik et al. 2020; the
// Gaussian Fourier projection of Song et al.'s score SDEs) into D = 2·len(Freq) features:
//
//	e[b, k] = sin(2π f_k t_b),  e[b, K + k] = cos(2π f_k t_b),
//
// with frequencies f_k drawn once, at construction, from N(0, std²) (NewFourierEmbedding). The
// frequencies are never trained. Two ways to hold them:
//   - Apply bakes them into the graph as a constant. A checkpoint does not hold them: rebuild the
//     embedding from the same seed (NewFourierEmbedding is deterministic in its rng) or save Freq with the
//     model's configuration (an exported field; it marshals to JSON).
//   - ApplyBuffer keeps them in the Store as the buffer "freq" under the scope (shape (1, K)), created from
//     Freq the first time; checkpoints save and restore buffers, so a restored model uses the saved
//     frequencies whatever Freq holds then.
type FourierEmbedding struct {
	Freq []float64
}

// NewFourierEmbedding draws dim/2 frequencies from N(0, std²) with rng. dim must be even and ≥ 2 and std
// positive (Song et al. use std = 16 for t ∈ [0, 1], or std = 16 on log σ).
func NewFourierEmbedding(rng *rand.Rand, dim int, std float64) (FourierEmbedding, error) {
	if dim < 2 || dim%2 != 0 {
		return FourierEmbedding{}, fmt.Errorf("layers: NewFourierEmbedding: dimension %d, want an even number ≥ 2", dim)
	}
	if !(std > 0) || math.IsInf(std, 0) {
		return FourierEmbedding{}, fmt.Errorf("layers: NewFourierEmbedding: standard deviation %g, want a finite number > 0", std)
	}
	if rng == nil {
		return FourierEmbedding{}, fmt.Errorf("layers: NewFourierEmbedding: nil rng")
	}
	f := make([]float64, dim/2)
	for i := range f {
		f[i] = std * rng.NormFloat64()
	}
	return FourierEmbedding{Freq: f}, nil
}

// Dim is the embedding's output dimension, 2·len(Freq).
func (e FourierEmbedding) Dim() int { return 2 * len(e.Freq) }

// Apply embeds t, a (B) or (B, 1) node, into a (B, 2·len(Freq)) node.
func (e FourierEmbedding) Apply(t *G.Node) (*G.Node, error) {
	if len(e.Freq) == 0 {
		return nil, fmt.Errorf("layers: FourierEmbedding: no frequencies (use NewFourierEmbedding)")
	}
	w := make([]float64, len(e.Freq))
	for i, f := range e.Freq {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("layers: FourierEmbedding: frequency %d is %g", i, f)
		}
		w[i] = 2 * math.Pi * f
	}
	return embedScalar("FourierEmbedding", t, w, false)
}

// ApplyBuffer is Apply with the frequencies read from the buffer "freq" (1, len(Freq)) under s, which
// is created from Freq if the store does not hold it yet.
func (e FourierEmbedding) ApplyBuffer(s *Scope, t *G.Node) (*G.Node, error) {
	if len(e.Freq) == 0 {
		return nil, fmt.Errorf("layers: FourierEmbedding %s: no frequencies (use NewFourierEmbedding)", s.Prefix())
	}
	if err := checkNode("FourierEmbedding", t, 1); err != nil {
		return nil, err
	}
	if err := checkScalarInput("FourierEmbedding", t); err != nil {
		return nil, err
	}
	if b, ok := s.Store().GetBuffer(s.Sub("freq").Prefix()); ok && (b.Dims() != 2 || b.Shape()[0] != 1 || b.Shape()[1] != len(e.Freq)) {
		return nil, fmt.Errorf("layers: FourierEmbedding %s: buffer freq has shape %v, want (1, %d)", s.Prefix(), b.Shape(), len(e.Freq))
	}
	f := s.Buffer("freq", []int{1, len(e.Freq)}, e.Freq)
	w, err := G.Mul(f, scalarLike(t, 2*math.Pi))
	if err != nil {
		return nil, err
	}
	return embedNode("FourierEmbedding", t, w, false)
}

// checkScalarInput validates a (B) or (B, 1) input.
func checkScalarInput(op string, t *G.Node) error {
	sh := []int(t.Shape())
	if len(sh) > 2 || (len(sh) == 2 && sh[1] != 1) {
		return fmt.Errorf("layers: %s: input %v has shape %s, want (B) or (B, 1)", op, t.Name(), shapeStr(sh))
	}
	return nil
}

// embedScalar returns [cos(t ωᵀ) | sin(t ωᵀ)] (cosFirst) or [sin | cos], (B, 2K), for t (B) or (B, 1).
// The outer product is a (B, 1)·(1, K) MatMul with ω a graph constant.
func embedScalar(op string, t *G.Node, w []float64, cosFirst bool) (*G.Node, error) {
	if err := checkNode(op, t, 1); err != nil {
		return nil, err
	}
	if err := checkScalarInput(op, t); err != nil {
		return nil, err
	}
	// Name the constant by its values: equal frequencies may share a node, different ones never do.
	h := fnv.New64a()
	_ = binary.Write(h, binary.LittleEndian, w)
	wt := NewDense(t.Dtype(), []int{1, len(w)}, w)
	wn := G.NewConstant(wt, G.In(t.Graph()), G.WithName(fmt.Sprintf("%s/freq-%016x", op, h.Sum64())))
	return embedNode(op, t, wn, cosFirst)
}

// embedNode is embedScalar with the angular frequencies in a (1, K) node w.
func embedNode(op string, t, w *G.Node, cosFirst bool) (*G.Node, error) {
	col := t
	if t.Dims() == 1 {
		var err error
		if col, err = Reshape(t, t.Shape()[0], 1); err != nil {
			return nil, err
		}
	}
	arg, err := MatMul(col, w)
	if err != nil {
		return nil, fmt.Errorf("layers: %s: %w", op, err)
	}
	c, err := G.Cos(arg)
	if err != nil {
		return nil, err
	}
	s, err := G.Sin(arg)
	if err != nil {
		return nil, err
	}
	if cosFirst {
		return G.Concat(1, c, s)
	}
	return G.Concat(1, s, c)
}
