package lattice

// O2 is the complex φ⁴ theory (two real channels, U(1) = O(2) symmetric) in the standard convention:
//
//	S = Σ_x [ ½ Σ_μ |φ_{x+μ} − φ_x|² + ½ m² |φ_x|² + λ |φ_x|⁴ ],  |φ_x|² = φ_{0,x}² + φ_{1,x}²,
//
// with the field laid out as (2, L, L). Safe for concurrent use.
type O2 struct{ phi4Core }

// NewO2 returns the O(2) model in the standard convention.
func NewO2(L int, m2, lambda float64) (*O2, error) {
	c, err := newPhi4Core("o2", 2, L, m2, lambda)
	if err != nil {
		return nil, err
	}
	return &O2{c}, nil
}

// NewO2Hopping returns the O(2) model given in the hopping convention
// S_H = Σ_x [ −2κ Σ_μ φ_{H,x}·φ_{H,x+μ} + |φ_{H,x}|² + λ_H (|φ_{H,x}|² − 1)² ] (NeuralRG's Phi4(n=2),
// default κ = 0.15, λ_H = 1.145), converted exactly as for NewPhi4Hopping; LogZOffset is
// −V ln(2κ) − V λ_H (two components per site).
func NewO2Hopping(L int, kappa, lambdaH float64) (*O2, error) {
	c, err := newHoppingCore("o2", 2, L, kappa, lambdaH)
	if err != nil {
		return nil, err
	}
	return &O2{c}, nil
}

var _ Action = (*O2)(nil)
