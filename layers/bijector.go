package layers

import (
	G "gorgonia.org/gorgonia"
)

// Bijector is an invertible map with a tractable Jacobian. Forward maps data to latent (the RG direction),
// Inverse maps latent to data; each returns the output and log|det J| of the map it computes, shape (B).
// Implementations bind their parameters through the Scope, so calling Forward and Inverse in different
// graphs (or twice in one) uses the same weights.
type Bijector interface {
	Forward(s *Scope, x *G.Node) (z, logDet *G.Node, err error)
	Inverse(s *Scope, z *G.Node) (x, logDet *G.Node, err error)
}
