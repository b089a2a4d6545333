package layers

import (
	"fmt"

	G "gorgonia.org/gorgonia"
)

// Sublattice applies Inner to the sites of a (B, C, L, L) field whose coordinates are both multiples of
// Stride, seen as a periodic (B, C, L/Stride, L/Stride) field, and leaves every other site unchanged; the
// log-det is Inner's. With Stride = 2^ℓ it is level ℓ of the hierarchical ODE flow: the sites it leaves
// alone at level ℓ but moved at level ℓ − 1 are that level's latents, exactly the sites that the RG
// Hierarchy with 2×2 blocks assigns to level ℓ − 1 (at least one coordinate with exactly ℓ − 1 factors of 2),
// so latents split by Hierarchy.LevelMap as for the coupling flows.
type Sublattice struct {
	Stride int
	Inner  Bijector
}

// Forward applies Inner.Forward to the sublattice.
func (sl Sublattice) Forward(s *Scope, x *G.Node) (*G.Node, *G.Node, error) {
	return sl.apply(s, x, false)
}

// Inverse applies Inner.Inverse to the sublattice.
func (sl Sublattice) Inverse(s *Scope, z *G.Node) (*G.Node, *G.Node, error) {
	return sl.apply(s, z, true)
}

func (sl Sublattice) apply(s *Scope, x *G.Node, inverse bool) (*G.Node, *G.Node, error) {
	if x == nil || x.Dims() != 4 {
		return nil, nil, fmt.Errorf("layers: Sublattice %s: input must be (B, C, L, L)", s.Prefix())
	}
	sh := []int(x.Shape())
	b, c, h, w := sh[0], sh[1], sh[2], sh[3]
	st := sl.Stride
	if st < 1 || h%st != 0 || w%st != 0 {
		return nil, nil, fmt.Errorf("layers: Sublattice %s: stride %d does not divide the %d×%d lattice", s.Prefix(), st, h, w)
	}
	hs, ws := h/st, w/st
	idx := make([]int, 0, b*c*hs*ws)
	for bc := 0; bc < b*c; bc++ {
		for i := 0; i < hs; i++ {
			for j := 0; j < ws; j++ {
				idx = append(idx, bc*h*w+i*st*w+j*st)
			}
		}
	}
	sub := x
	var err error
	if st > 1 {
		if sub, err = Gather(x, idx, b, c, hs, ws); err != nil {
			return nil, nil, err
		}
	}
	var y, ld *G.Node
	if inverse {
		y, ld, err = sl.Inner.Inverse(s, sub)
	} else {
		y, ld, err = sl.Inner.Forward(s, sub)
	}
	if err != nil {
		return nil, nil, err
	}
	if st == 1 {
		return y, ld, nil
	}
	out, err := ScatterReplace(x, y, idx)
	return out, ld, err
}
