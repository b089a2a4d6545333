package diffusion

import (
	"fmt"
)

// GaussianResidual is a graph score learned as a residual over the exact score of a Gaussian start:
//
//	s(x, t) = s_G(x, t) + Scale(t)·f(Input(Scale(t)·x), t),   s̃_G,j = −u_j / v_j(t),
//
// with v_j(t) the marginal variance of the reference spectrum Base.V0 (the data's variance per mode
// coordinate, the same Gaussian the prior at T is made of) and f the wrapped network. The network then
// learns only what the data has beyond its two-point function: for a free field the residual is zero, and
// for φ⁴ it is the interaction. This matters when the score's size differs by many orders of magnitude
// between modes: the Polchinski flow with the mass regulator shrinks mode k by e^{−(p̂²+μ²)t}, so the exact
// score of a short mode at t = 4 is of size e^{18} while the long modes' is O(1), and one network output
// scale per time cannot hold both (the reverse process then amplifies every short mode at the rate
// p̂² + μ² it was damped with, and the samples diverge). With the Gaussian part exact, the residual is O(1)
// where the interaction lives and small elsewhere, and an error in it enters the reverse drift multiplied
// by b² = −K̇C, which is as small as the mode.
//
// losses.DSM subtracts the base from its regression target (ResidualBase), NetScore adds it on the host; the
// graph is the wrapped network's.
type GaussianResidual struct {
	GraphScore
	Base *FreeScore
}

// NewGaussianResidual wraps net with the exact Gaussian score of the reference variances v0 (length V,
// all > 0) on net's process.
func NewGaussianResidual(net GraphScore, v0 []float64) (*GaussianResidual, error) {
	if net == nil {
		return nil, fmt.Errorf("diffusion: gaussian residual: nil network")
	}
	if _, ok := net.(*GaussianResidual); ok {
		return nil, fmt.Errorf("diffusion: gaussian residual: the network is a residual already")
	}
	base, err := NewFreeScore(net.Process(), v0)
	if err != nil {
		return nil, fmt.Errorf("diffusion: gaussian residual: %w", err)
	}
	return &GaussianResidual{GraphScore: net, Base: base}, nil
}

// ResidualBase is the exact score the network's output is added to.
func (r *GaussianResidual) ResidualBase() *FreeScore { return r.Base }

// Residual is implemented by graph scores whose score is a host-side exact base plus the graph's output
// (GaussianResidual). The DSM loss regresses the graph's output onto the target minus the base.
type Residual interface {
	ResidualBase() *FreeScore
}

// Unwrap returns the network under a GaussianResidual (net itself otherwise).
func Unwrap(net GraphScore) GraphScore {
	if r, ok := net.(*GaussianResidual); ok {
		return r.GraphScore
	}
	return net
}
