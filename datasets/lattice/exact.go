package lattice

import "math"

// IsingRelaxedLogZ is the exact ln Z_x = ln ∫ d^N x exp(−S(x)) of NeuralRG's relaxed Ising action
// (IsingRelaxed):
//
//	ln Z_x = ln Z_Ising − N ln 2 + (N/2) ln 2π + ½ ln det K + N δ/2,
//
// with ln Z_Ising = KaufmanLogZ(L, T) and ln det K = Σ_k ln κ_k from the Fourier eigenvalues of K. It follows
// from ∫ d^N x exp(−½ xᵀK⁻¹x + σ·x) = (2π)^{N/2} (det K)^{1/2} exp(½ σᵀKσ), summed over σ ∈ {±1}^N
// (Σ_σ e^{σ·x} = Π_i 2 cosh x_i and ½σᵀKσ = −H/T + Nδ/2). NaN for an invalid L or T ≤ 0.
func IsingRelaxedLogZ(L int, T float64) float64 {
	if !validSize(L) || !(T > 0) || math.IsInf(T, 1) {
		return math.NaN()
	}
	N := float64(L * L)
	delta := isingDelta(L, T)
	return KaufmanLogZ(L, T) - N*math.Ln2 + 0.5*N*math.Log(2*math.Pi) + 0.5*isingLogDetK(L, T, delta) + 0.5*N*delta
}

// isingLogDetK is ln det K = Σ_k ln κ_k.
func isingLogDetK(L int, T, delta float64) float64 {
	var s float64
	for kx := range L {
		for ky := range L {
			s += math.Log(isingKEigen(L, T, delta, kx, ky))
		}
	}
	return s
}
