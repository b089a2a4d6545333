package lattice

import "math"

// Conventions for φ⁴. Every action in this package works with the field in the project's
// "standard" normalisation,
//
//	S = Σ_x [ ½ Σ_μ (φ_{x+μ} − φ_x)² + ½ m² |φ_x|² + λ |φ_x|⁴ ],
//
// whatever convention its parameters were given in. The two other conventions users type are related to it
// by a rescaling of the field:
//
//   - Albergo–Kanwar–Shanahan / Gerdes ("AKS"): S_A(φ_A) = Σ_x [ Σ_μ (φ_{A,x+μ} − φ_{A,x})² + m_A² φ_A² + λ_A φ_A⁴ ],
//     φ = √2 φ_A, m² = m_A², λ = λ_A/4, and S_A(φ/√2) = S(φ) exactly.
//   - Hopping (NeuralRG): S_H(φ_H) = Σ_x [ −2κ Σ_μ φ_{H,x}·φ_{H,x+μ} + |φ_{H,x}|² + λ_H (|φ_{H,x}|² − 1)² ],
//     φ = √(2κ) φ_H, m² = (1 − 2λ_H)/κ − 4, λ = λ_H/(4κ²).
//     Decision: the hopping form KEEPS the constant V·λ_H, i.e. S_H is exactly the expression above with
//     (|φ_H|² − 1)² expanded in full, as NeuralRG writes it. Then S_H(φ/√(2κ)) = S(φ) + V·λ_H.
//
// Partition functions: Z_conv = ∫ dφ_conv e^{−S_conv}. The field rescaling brings a Jacobian, so
// ln Z_conv = ln Z + LogZOffset (see AKSLogZOffset and HoppingLogZOffset). Free energies and the reverse-KL
// bound −ln Z are reported in the standard convention unless stated otherwise.

// AKSFieldScale is the factor between the standard field and the AKS/Gerdes field: φ = AKSFieldScale·φ_A.
const AKSFieldScale = math.Sqrt2

// HoppingFieldScale is the factor between the standard field and the hopping-convention field:
// φ = HoppingFieldScale(κ)·φ_H = √(2κ) φ_H. It is NaN for κ ≤ 0.
func HoppingFieldScale(kappa float64) float64 {
	if !(kappa > 0) {
		return math.NaN()
	}
	return math.Sqrt(2 * kappa)
}

// AKSToStandard converts AKS/Gerdes parameters (m_A², λ_A) to the standard convention: m² = m_A², λ = λ_A/4.
func AKSToStandard(m2A, lambdaA float64) (m2, lambda float64) {
	return m2A, lambdaA / 4
}

// StandardToAKS is the inverse of AKSToStandard: m_A² = m², λ_A = 4λ.
func StandardToAKS(m2, lambda float64) (m2A, lambdaA float64) {
	return m2, 4 * lambda
}

// HoppingToStandard converts hopping parameters (κ, λ_H) to the standard convention:
// m² = (1 − 2λ_H)/κ − 4, λ = λ_H/(4κ²). κ must be positive (NaN results otherwise).
func HoppingToStandard(kappa, lambdaH float64) (m2, lambda float64) {
	if !(kappa > 0) {
		return math.NaN(), math.NaN()
	}
	return (1-2*lambdaH)/kappa - 4, lambdaH / (4 * kappa * kappa)
}

// StandardToHopping is the inverse of HoppingToStandard: the positive root κ of 8λκ² + (m²+4)κ − 1 = 0 and
// λ_H = 4κ²λ. It returns NaNs when no κ > 0 exists (λ = 0 and m² ≤ −4) or for λ < 0.
func StandardToHopping(m2, lambda float64) (kappa, lambdaH float64) {
	b := m2 + 4
	switch {
	case lambda < 0 || math.IsNaN(lambda) || math.IsNaN(m2):
		return math.NaN(), math.NaN()
	case lambda == 0:
		if !(b > 0) {
			return math.NaN(), math.NaN()
		}
		kappa = 1 / b
	default:
		// Positive root written without cancellation for b > 0: 2c/(b + √(b² + 4ac)) with a = 8λ, c = 1.
		disc := math.Sqrt(b*b + 32*lambda)
		if b > 0 {
			kappa = 2 / (b + disc)
		} else {
			kappa = (disc - b) / (16 * lambda)
		}
	}
	return kappa, 4 * kappa * kappa * lambda
}

// AKSLogZOffset is ln Z_A − ln Z for a lattice of C channels and V = L² sites: −(C·V/2) ln 2 (the
// Jacobian of φ_A = φ/√2; AKS is defined for real φ⁴, C = 1).
func AKSLogZOffset(L, C int) float64 {
	return -0.5 * float64(C*L*L) * math.Ln2
}

// HoppingLogZOffset is ln Z_H − ln Z for C channels on V = L² sites, with the constant V·λ_H kept in S_H
// (this package's decision): −(C·V/2) ln(2κ) − V·λ_H. Without the constant it would be −(C·V/2) ln(2κ).
func HoppingLogZOffset(L, C int, kappa, lambdaH float64) float64 {
	if !(kappa > 0) {
		return math.NaN()
	}
	V := float64(L * L)
	return -0.5*float64(C)*V*math.Log(2*kappa) - V*lambdaH
}
