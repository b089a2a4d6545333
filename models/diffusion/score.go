package diffusion

import "fmt"

// Score is a score model s(t, x) ≈ ∇_x log p_t(x) on the host. x is a batch of n fields (length n·V) in
// position space; dst (same length) receives the scores.
type Score interface {
	Score(t float64, x, dst []float64) error
}

// ModeScore is an optional fast path: a score that can be evaluated on a batch given in mode coordinates
// (dst in mode coordinates too). The samplers use it when present and skip the two transforms per field and
// evaluation; it must agree with Score up to rounding.
type ModeScore interface {
	ScoreModes(t float64, u, dst []float64) error
}

// ModeDiagonal is implemented by scores whose Jacobian is diagonal in the mode coordinates (the free
// field's): ModeDerivative writes ∂s_j/∂u_j per mode coordinate (length V), the same for every field. The
// probability-flow likelihood then uses the exact divergence instead of Hutchinson's estimator.
type ModeDiagonal interface {
	ModeDerivative(t float64, dst []float64) error
}

// FreeScore is the exact score of a free (Gaussian, mode-diagonal) start pushed through a linear process:
// s̃_j = −u_j / v_j(t) with v_j(t) the marginal variance.
type FreeScore struct {
	SDE SDE
	V0  []float64 // variance per mode coordinate at t = 0
}

// NewFreeScore returns the exact score for a start of variance v0 per mode coordinate (e.g.
// Lattice.FreeVariance).
func NewFreeScore(sde SDE, v0 []float64) (*FreeScore, error) {
	if V := BasisOf(sde).Size(); len(v0) != V {
		return nil, fmt.Errorf("diffusion: free score: %d variances, want V=%d", len(v0), V)
	}
	for j, v := range v0 {
		if !(v > 0) {
			return nil, fmt.Errorf("diffusion: free score: v0[%d]=%v, want > 0", j, v)
		}
	}
	return &FreeScore{SDE: sde, V0: append([]float64(nil), v0...)}, nil
}

func (f *FreeScore) Score(t float64, x, dst []float64) error {
	l := BasisOf(f.SDE)
	V := l.Size()
	if len(x)%V != 0 || len(dst) != len(x) {
		return fmt.Errorf("diffusion: free score: batch of length %d (dst %d), want a multiple of V=%d", len(x), len(dst), V)
	}
	v := make([]float64, V)
	if err := MarginalVariance(f.SDE, t, f.V0, v); err != nil {
		return err
	}
	u := make([]float64, V)
	for b := 0; b < len(x); b += V {
		l.ToModes(u, x[b:b+V])
		for j := range u {
			u[j] /= -v[j]
		}
		l.FromModes(dst[b:b+V], u)
	}
	return nil
}

func (f *FreeScore) ScoreModes(t float64, u, dst []float64) error {
	V := BasisOf(f.SDE).Size()
	if len(u)%V != 0 || len(dst) != len(u) {
		return fmt.Errorf("diffusion: free score: batch of length %d (dst %d), want a multiple of V=%d", len(u), len(dst), V)
	}
	v := make([]float64, V)
	if err := MarginalVariance(f.SDE, t, f.V0, v); err != nil {
		return err
	}
	for i := range u {
		dst[i] = -u[i] / v[i%V]
	}
	return nil
}

func (f *FreeScore) ModeDerivative(t float64, dst []float64) error {
	if err := MarginalVariance(f.SDE, t, f.V0, dst); err != nil {
		return err
	}
	for j := range dst {
		dst[j] = -1 / dst[j]
	}
	return nil
}
