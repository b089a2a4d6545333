package diffusion

// Basis is an orthogonal mode basis of the state space R^Size: the real Fourier modes of a periodic lattice
// (*Lattice) or the cosine modes of C-channel images (*ImageBasis). ToModes and FromModes are each other's
// inverse and transpose, so white noise and log-densities are the same in both coordinates; Frequencies
// gives each mode coordinate's eigenvalue of the (lattice) Laplacian, −Δ e_j = λ_j e_j, which is what the
// heat processes damp by. Every process, sampler and likelihood of this package works through a Basis.
type Basis interface {
	// Size is the dimension (V = L·L of a lattice, C·H·W of an image).
	Size() int
	// ToModes writes the mode coordinates of x (length Size) into dst (may alias x).
	ToModes(dst, x []float64)
	// FromModes writes the state whose mode coordinates are u into dst (may alias u).
	FromModes(dst, u []float64)
	// Frequencies returns a copy of λ_j per mode coordinate (length Size).
	Frequencies() []float64
}

// BasisProcess is implemented by processes that do not live on a periodic lattice (images): their
// Lattice() is nil and Basis() is their mode basis. For lattice processes the basis is Lattice().
type BasisProcess interface {
	Basis() Basis
}

// BasisOf returns the mode basis a process acts in: Basis() when it has one, else its Lattice().
func BasisOf(sde SDE) Basis {
	if bp, ok := sde.(BasisProcess); ok {
		return bp.Basis()
	}
	return sde.Lattice()
}

// Size is V, the number of sites (and of mode coordinates).
func (l *Lattice) Size() int { return l.V }

// Frequencies is P2Modes: the lattice momentum p̂² per mode coordinate.
func (l *Lattice) Frequencies() []float64 { return l.P2Modes() }

// basis is the Gaussian's mode basis: Basis when set, else Lat.
func (g *Gaussian) basis() Basis {
	if g.Basis != nil {
		return g.Basis
	}
	return g.Lat
}

// newGaussian is a Gaussian diagonal in the modes of b (with Lat set too when b is a lattice).
func newGaussian(b Basis, v []float64) *Gaussian {
	g := &Gaussian{Basis: b, Var: v}
	if l, ok := b.(*Lattice); ok {
		g.Lat = l
	}
	return g
}
