package diffusion

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"rgflow/layers"
)

// EffectiveCNNScore is the effective-action score plus a learned CNN remainder,
//
//	s_θ(φ, t) = −∇_φ S_t(φ) + g · f_θ(φ, emb(t/T)),
//
// S_t the effective action of Eff, f_θ the periodic FiLM-conditioned CNN of CNN (without its scale c(t)
// and without GlobalMean: the effective action already reads the zero mode) and g a learned scalar gain
// that starts at zero, so that training starts from the effective-action score alone and the remainder
// grows only as far as the loss asks for it. Both parts train together. The field is not rescaled (Scale
// is 1: the action's couplings are defined on the unscaled field), so the CNN sees φ itself; with the
// Carosso and Polchinski processes on φ⁴ data the field is O(1) at every t. The remainder has no known
// divergence, so EffectiveCNNScore is not a TraceScore: likelihoods use Hutchinson's estimator.
// Parameters: Eff's under "score/mlp/", the CNN's under "rem/score/", the gain "rem/gain" (1).
type EffectiveCNNScore struct {
	Eff *EffectiveScore
	CNN *CNNScore
}

// NewEffectiveCNNScore pairs an effective-action score with a CNN remainder on the same process and
// channels.
func NewEffectiveCNNScore(eff *EffectiveScore, cnn *CNNScore) (*EffectiveCNNScore, error) {
	if eff == nil || cnn == nil {
		return nil, fmt.Errorf("diffusion: effective+cnn score: nil part")
	}
	if eff.SDE != cnn.SDE || eff.C != cnn.C {
		return nil, fmt.Errorf("diffusion: effective+cnn score: parts on different processes or channels (%d and %d)", eff.C, cnn.C)
	}
	if cnn.GlobalMean {
		return nil, fmt.Errorf("diffusion: effective+cnn score: the CNN remainder takes no global-mean channels")
	}
	return &EffectiveCNNScore{Eff: eff, CNN: cnn}, nil
}

func (e *EffectiveCNNScore) Process() SDE                   { return e.Eff.SDE }
func (e *EffectiveCNNScore) Channels() int                  { return e.Eff.C }
func (e *EffectiveCNNScore) InputChannels() int             { return e.Eff.C }
func (e *EffectiveCNNScore) Scale(float64) (float64, error) { return 1, nil }
func (e *EffectiveCNNScore) Input(dst, x []float64)         { copy(dst, x) }

// Build builds −∇S_t(xin) + g·f_θ(xin, t) for xin (B, C, L, L), t (B).
func (e *EffectiveCNNScore) Build(s *layers.Scope, xin, t *G.Node) (*G.Node, error) {
	eff, err := e.Eff.Build(s, xin, t)
	if err != nil {
		return nil, err
	}
	rs := s.Sub("rem")
	rem, err := e.CNN.Build(rs, xin, t)
	if err != nil {
		return nil, fmt.Errorf("diffusion: effective+cnn remainder: %w", err)
	}
	gain, err := G.Sum(rs.Param("gain", []int{1}, layers.Zeros))
	if err != nil {
		return nil, err
	}
	if rem, err = G.Mul(rem, gain); err != nil {
		return nil, fmt.Errorf("diffusion: effective+cnn gain: %w", err)
	}
	return G.Add(eff, rem)
}
