package lattice

import "math"

// Exact references for the free field S = Σ_x [ ½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² φ_x² ] on a periodic L×L
// lattice, with the lattice dispersion w_k = m² + Σ_μ 4 sin²(π k_μ / L), k_μ ∈ {0, …, L−1}.
// They return NaN for an invalid L (odd, or < 2) or m² ≤ 0 (or NaN/Inf).

// freeW is the dispersion w_k.
func freeW(L int, m2 float64, kx, ky int) float64 {
	sx := math.Sin(math.Pi * float64(kx) / float64(L))
	sy := math.Sin(math.Pi * float64(ky) / float64(L))
	return m2 + 4*sx*sx + 4*sy*sy
}

func freeValid(L int, m2 float64) bool {
	return validSize(L) && m2 > 0 && !math.IsInf(m2, 1)
}

// FreeLogZ is ln Z = (V/2) ln 2π − ½ Σ_k ln w_k, V = L² (standard convention; add AKSLogZOffset for the AKS
// normalisation; for C free components, e.g. NewO2(L, m², 0), ln Z is C times this). Example: L = 8,
// m² = 0.5 gives ln Z / V = 0.2355017011.
func FreeLogZ(L int, m2 float64) float64 {
	if !freeValid(L, m2) {
		return math.NaN()
	}
	var s float64
	for kx := range L {
		for ky := range L {
			s += math.Log(freeW(L, m2, kx, ky))
		}
	}
	return 0.5*float64(L*L)*math.Log(2*math.Pi) - 0.5*s
}

// FreeG is the exact two-point function G(r) = ⟨φ_x φ_{x+r}⟩ = (1/V) Σ_k cos(2π k·r / L) / w_k at the
// separation r = (rx, ry) (rx along the first lattice axis; any integers, taken modulo L). G(0, 0) = ⟨φ²⟩.
// Example: L = 8, m² = 0.5: G(0,0) = 0.3175927, G(4,0) = 0.0148408.
func FreeG(L int, m2 float64, rx, ry int) float64 {
	if !freeValid(L, m2) {
		return math.NaN()
	}
	var s float64
	for kx := range L {
		for ky := range L {
			// Reduce k·r modulo L in integers so the phase is exact for any r.
			ph := ((kx*rx+ky*ry)%L + L) % L
			s += math.Cos(2*math.Pi*float64(ph)/float64(L)) / freeW(L, m2, kx, ky)
		}
	}
	return s / float64(L*L)
}

// FreeGTilde is the exact momentum-space propagator G̃(p) = ⟨|Σ_x e^{ip·x} φ_x|²⟩ / V = 1 / w_k at
// p = 2π k / L (k taken modulo L). G̃(0) = χ = ⟨M²⟩/V = 1/m²; the renormalised-mass
// estimator m_R² = 4 sin²(π/L) / (G̃(0)/G̃(p₁) − 1) returns exactly m² on these values.
func FreeGTilde(L int, m2 float64, kx, ky int) float64 {
	if !freeValid(L, m2) {
		return math.NaN()
	}
	return 1 / freeW(L, m2, ((kx%L)+L)%L, ((ky%L)+L)%L)
}
