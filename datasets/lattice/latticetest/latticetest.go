// Package latticetest holds test oracles for lattice field theories that are computed independently of
// package lattice: dense-matrix results that tests compare the momentum-space formulas, samplers and
// evaluations against.
package latticetest

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// FreeField is the exact free field S = ½ φᵀKφ on a periodic L×L lattice, K = −Δ + m² (the nearest-neighbour
// lattice Laplacian), computed from the dense V×V precision matrix by Cholesky factorisation and inversion.
type FreeField struct {
	Phi2  float64 // ⟨φ_x²⟩
	Chi   float64 // ⟨M²⟩/V with M = Σ_x φ_x
	GHalf float64 // G(L/2) = ⟨φ_x φ_{x+(L/2)ê}⟩, averaged over both axes
	LogZ  float64 // ln ∫ dφ e^{−S} = (V/2) ln 2π − ½ ln det K
	Cov   []float64
}

// DenseFree returns the free field's exact moments for L ≥ 2 (even L for GHalf) and m² > 0. Its cost is
// O(V³): meant for V up to a few hundred sites.
func DenseFree(L int, m2 float64) (FreeField, error) {
	if L < 2 || !(m2 > 0) {
		return FreeField{}, fmt.Errorf("latticetest: DenseFree(L=%d, m²=%v): want L ≥ 2 and m² > 0", L, m2)
	}
	V := L * L
	K := mat.NewSymDense(V, nil)
	for i := range L {
		for j := range L {
			a := i*L + j
			K.SetSym(a, a, m2+4)
			for _, b := range []int{i*L + (j+1)%L, ((i+1)%L)*L + j} {
				K.SetSym(a, b, K.At(a, b)-1)
			}
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(K) {
		return FreeField{}, fmt.Errorf("latticetest: DenseFree(L=%d, m²=%v): K is not positive definite", L, m2)
	}
	var C mat.SymDense
	if err := ch.InverseTo(&C); err != nil {
		return FreeField{}, fmt.Errorf("latticetest: DenseFree: inverting K: %w", err)
	}
	f := FreeField{LogZ: 0.5*float64(V)*math.Log(2*math.Pi) - 0.5*ch.LogDet(), Cov: make([]float64, V*V)}
	for a := range V {
		f.Phi2 += C.At(a, a) / float64(V)
		for b := range V {
			c := C.At(a, b)
			f.Cov[a*V+b] = c
			f.Chi += c / float64(V)
		}
		i, j := a/L, a%L
		f.GHalf += (C.At(a, ((i+L/2)%L)*L+j) + C.At(a, i*L+(j+L/2)%L)) / float64(2*V)
	}
	return f, nil
}
