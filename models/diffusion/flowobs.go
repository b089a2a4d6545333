package diffusion

import (
	"fmt"
	"math"

	"rgflow/datasets/lattice"
)

// Renormalized holds the measurements of an ensemble of fields along the flow (see MeasureRenormalized):
// each an estimate with its error.
type Renormalized struct {
	MR      lattice.Estimate // m_R
	Z       lattice.Estimate // Z = G̃₂(0) m_R²
	LambdaR lattice.Estimate // λ_R = −(m_R L)² G̃₄,conn(0)/G̃₂(0)²
	Chi     lattice.Estimate // G̃₂(0)
	MaxAbs  lattice.Estimate // ⟨max_x |φ_x|⟩
	N       int              // fields measured
}

// MeasureRenormalized measures the renormalized mass, field normalisation and coupling and the largest
// site value of n samples of C channels (fields of length n·C·V), with the conventions of the unitary DFT
// of this package (φ̃_k = V^{−1/2} Σ_x e^{−2πik·x/L} φ_x, so φ̃₀ = M/√V):
//
//	G̃₂(k)          = Σ_c ⟨|φ̃_{c,k}|²⟩                      (G̃₂(0) = ⟨|M|²⟩/V = χ)
//	1/m_R² = ξ²     = (1/4) Σ_{p ∈ {(±1,0),(0,±1)}} [G̃₂(0)/G̃₂(p) − 1] / (4 sin²(π/L))
//	Z               = G̃₂(0) m_R²
//	G̃₄,conn(0)     = ⟨|φ̃₀|⁴⟩ − (1 + 2/C) ⟨|φ̃₀|²⟩²            (|φ̃₀|² = Σ_c φ̃_{c,0}²)
//	λ_R             = −(m_R L)² G̃₄,conn(0) / G̃₂(0)²
//	max|φ|          = ⟨max_x |φ_x|⟩, |φ_x|² = Σ_c φ_{c,x}²
//
// m_R uses the four lowest non-zero momenta (a real field has G̃₂(−p) = G̃₂(p), so the four terms are two
// pairs). With G̃₄ normalised like G̃₂ (moments of φ̃₀, each carrying V^{−1/2} per field), λ_R is the
// dimensionless g_R = −(⟨M⁴⟩ − 3⟨M²⟩²) m_R² / (V χ²) of the lattice observables for C = 1; the factor 1 + 2/C
// makes it vanish for a Gaussian field of any C. For a Gaussian field whose mode k has variance v_k,
// G̃₂(k) = C v_k, so m_R² = p̂²₁ / (v₀/v₁ − 1) and Z = C v₀ m_R² exactly (GaussianRenormalized); a free field
// of mass² m² gives m_R² = m², Z = C, λ_R = 0. m_R, Z and λ_R are NaN where ξ² ≤ 0 (G̃₂(0) below the
// average of 1/G̃₂(p) ratios: e.g. a heat flow whose zero-mode regulator μ² exceeds p̂²₁ damps the zero mode
// faster than the lowest modes).
//
// The samples are taken as chains consecutive chains of equal length (1: independent draws, or one
// Markov chain); errors are the lattice package's blocked jackknife with the block length from τ_int.
func MeasureRenormalized(l *Lattice, C int, fields []float64, chains int) (Renormalized, error) {
	V, L := l.V, l.L
	if C < 1 || len(fields) == 0 || len(fields)%(C*V) != 0 {
		return Renormalized{}, fmt.Errorf("diffusion: renormalized observables: %d values, want a positive multiple of C·V = %d·%d", len(fields), C, V)
	}
	n := len(fields) / (C * V)
	if chains < 1 || n/chains < 2 {
		return Renormalized{}, fmt.Errorf("diffusion: renormalized observables: %d samples in %d chains, want ≥ 2 per chain", n, chains)
	}
	j10, j01 := l.coordinate(1, 0), l.coordinate(0, 1)
	const (
		oG0 = iota
		oG10
		oG01
		oG0sq
		oMax
		nObs
	)
	per := n / chains
	data := make([][][]float64, nObs)
	for o := range data {
		data[o] = make([][]float64, chains)
		for c := range data[o] {
			data[o][c] = make([]float64, per)
		}
	}
	u := make([]float64, V)
	for c := range chains {
		for k := range per {
			s := fields[(c*per+k)*C*V : (c*per+k+1)*C*V]
			var g0, g10, g01 float64
			for ch := range C {
				l.ToModes(u, s[ch*V:(ch+1)*V])
				g0 += u[0] * u[0]
				// Coordinates j and j+1 are √2 Re and √2 Im of the pair: |φ̃_k|² = (u_j² + u_{j+1}²)/2.
				g10 += (u[j10]*u[j10] + u[j10+1]*u[j10+1]) / 2
				g01 += (u[j01]*u[j01] + u[j01+1]*u[j01+1]) / 2
			}
			mx := 0.0
			for x := range V {
				a := 0.0
				for ch := range C {
					v := s[ch*V+x]
					a += v * v
				}
				mx = math.Max(mx, a)
			}
			data[oG0][c][k], data[oG10][c][k], data[oG01][c][k] = g0, g10, g01
			data[oG0sq][c][k], data[oMax][c][k] = g0*g0, math.Sqrt(mx)
		}
	}
	p1 := P2(L, 1, 0)
	mr2 := func(m []float64) float64 {
		xi2 := (0.5*(m[oG0]/m[oG10]+m[oG0]/m[oG01]) - 1) / p1
		if !(xi2 > 0) {
			return math.NaN() // G̃₂(0) ≤ G̃₂(p): no real mass, and Z, λ_R are undefined with it
		}
		return 1 / xi2
	}
	mr := func(m []float64) float64 { return math.Sqrt(mr2(m)) }
	opt := lattice.StatsOptions{}
	r := Renormalized{N: chains * per}
	r.MR = lattice.Analyze(data, mr, opt)
	r.Z = lattice.Analyze(data, func(m []float64) float64 { return m[oG0] * mr2(m) }, opt)
	r.LambdaR = lattice.Analyze(data, func(m []float64) float64 {
		g4 := m[oG0sq] - (1+2/float64(C))*m[oG0]*m[oG0]
		return -mr2(m) * float64(V) * g4 / (m[oG0] * m[oG0])
	}, opt)
	r.Chi = lattice.Analyze(data, func(m []float64) float64 { return m[oG0] }, opt)
	r.MaxAbs = lattice.Analyze(data, func(m []float64) float64 { return m[oMax] }, opt)
	return r, nil
}

// GaussianRenormalized is the exact m_R and Z of MeasureRenormalized for a centred Gaussian field of C
// independent channels whose mode coordinate j has variance v[j] (e.g. a free field pushed through a
// process: MarginalVariance). λ_R of a Gaussian is 0.
func GaussianRenormalized(l *Lattice, C int, v []float64) (mR, Z float64, err error) {
	if len(v) != l.V || C < 1 {
		return 0, 0, fmt.Errorf("diffusion: GaussianRenormalized: %d variances and C=%d, want V=%d and C ≥ 1", len(v), C, l.V)
	}
	g0, g10, g01 := v[0], v[l.coordinate(1, 0)], v[l.coordinate(0, 1)]
	xi2 := (0.5*(g0/g10+g0/g01) - 1) / P2(l.L, 1, 0)
	if !(xi2 > 0) {
		return math.NaN(), math.NaN(), nil
	}
	return math.Sqrt(1 / xi2), float64(C) * g0 / xi2, nil
}

// coordinate returns the index of the first mode coordinate of momentum (kx, ky) (for a pair, its √2 Re
// coordinate; the √2 Im one follows). It panics when the momentum is not represented (it is then −k's).
func (l *Lattice) coordinate(kx, ky int) int {
	for j := range l.V {
		if x, y, part := l.Momentum(j); x == kx && y == ky && part != "im" {
			return j
		}
	}
	panic(fmt.Sprintf("diffusion: momentum (%d, %d) is stored as its conjugate", kx, ky))
}
