// Package lattice holds rgflow's lattice field theories and the independent tools every flow result is
// checked against: actions (graph and host forms with their forces), exact references (free field,
// Kaufman's Ising partition function and NeuralRG's continuous relaxation of it), a Hybrid Monte Carlo
// sampler, a local Metropolis sampler and observables with honest error bars.
//
// Conventions:
//
//   - A field configuration on the host is a []float64 of length C·L·L laid out as (C, L, L), row-major:
//     index c·L·L + i·L + j. A batch in a graph is (B, C, L, L).
//   - Boundaries are periodic; L is any even number ≥ 2 (physics runs use L ≥ 4; the reference size for
//     diffusion numerics is 20). The hierarchical flows of package models need a power of two; nothing here does.
//   - Every action is given in the project's "standard" convention,
//     S = Σ_x [ ½ Σ_μ |φ_{x+μ} − φ_x|² + ½ m² |φ_x|² + λ |φ_x|⁴ ] (μ over the two positive directions);
//     the AKS/Gerdes (φ_A = φ/√2, m² = m_A², λ = λ_A/4) and hopping (φ = √(2κ) φ_H,
//     m² = (1 − 2λ_H)/κ − 4, λ = λ_H/(4κ²)) conventions are converted exactly on construction (see
//     action_conventions.go). The relaxed Ising model is NeuralRG's, described at IsingRelaxed.
//   - S(φ) is the action, p(φ) ∝ exp(−S(φ)); Force returns −∂S/∂φ.
//   - Estimates from Markov chains come with blocked-jackknife errors and the integrated autocorrelation
//     time τ_int, never as a bare standard deviation; HMC randomises its trajectory length (a fixed one
//     biases the free field).
package lattice

import (
	G "gorgonia.org/gorgonia"

	"rgflow/layers"
)

// Action is a lattice target distribution p(φ) ∝ exp(−S(φ)).
type Action interface {
	// Name is a short identifier ("free", "phi4", "o2", "ising").
	Name() string
	// Channels and Size give the field shape (C, L, L).
	Channels() int
	Size() int
	// Params are the parameters in the standard convention, for reports.
	Params() map[string]float64
	// Z2 reports whether S(−φ) = S(φ), so that a global flip is a valid move and Z₂ symmetrisation applies.
	Z2() bool
	// Action is the graph form: phi is (B, C, L, L), the result is S per sample, shape (B).
	Action(s *layers.Scope, phi *G.Node) (*G.Node, error)
	// Eval is the host form S(φ) of one configuration of length C·L·L.
	Eval(phi []float64) float64
	// Force writes −∂S/∂φ into dst (same length as phi). It must not allocate.
	Force(dst, phi []float64)
}
