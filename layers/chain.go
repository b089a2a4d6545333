package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// Chain composes bijectors: Forward applies them in list order, Inverse in reverse list order, and the
// log-dets add. Every link sees the same Scope, so links that must not share weights bind their
// parameters under distinct sub-scopes (the block layers do this by their names).
type Chain []Bijector

// Forward applies the links first to last.
func (c Chain) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return c.apply(s, x, false)
}

// Inverse applies the inverses last to first.
func (c Chain) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return c.apply(s, z, true)
}

func (c Chain) apply(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	if len(c) == 0 {
		return nil, nil, fmt.Errorf("layers: empty Chain")
	}
	var total *G.Node
	for n := range c {
		i := n
		if inverse {
			i = len(c) - 1 - n
		}
		var ld *G.Node
		var err error
		if inverse {
			x, ld, err = c[i].Inverse(s, x)
		} else {
			x, ld, err = c[i].Forward(s, x)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("chain link %d: %w", i, err)
		}
		if total == nil {
			total = ld
		} else if total, err = G.Add(total, ld); err != nil {
			return nil, nil, fmt.Errorf("chain link %d: adding log-det: %w", i, err)
		}
	}
	return x, total, nil
}

// Invert swaps a bijector's directions: Invert{b}.Forward is b.Inverse.
type Invert struct{ Bijector Bijector }

// Forward is the wrapped bijector's Inverse.
func (v Invert) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return v.Bijector.Inverse(s, x)
}

// Inverse is the wrapped bijector's Forward.
func (v Invert) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return v.Bijector.Forward(s, z)
}

// Named binds a bijector's parameters under the sub-scope Name.
type Named struct {
	Name     string
	Bijector Bijector
}

// Forward applies the wrapped bijector's Forward under the sub-scope.
func (n Named) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return n.Bijector.Forward(s.Sub(n.Name), x)
}

// Inverse applies the wrapped bijector's Inverse under the sub-scope.
func (n Named) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return n.Bijector.Inverse(s.Sub(n.Name), z)
}
