// Package bulk works in the latent space ("the bulk") of a hierarchical RG flow.
//
// # Bulk effective action
//
// A flow F maps a field x to latents z = F(x) on the same C×L×L grid; generation is x = F⁻¹(z) with
// log-Jacobian ldj_I(z) = ln|det ∂F⁻¹/∂z|, the log-det the flow's Inverse returns. The lattice target
// p(x) ∝ exp(−S(x)) pushed forward to z is p(z) ∝ exp(−S_eff(z)) with
//
//	S_eff(z) = S(F⁻¹(z)) − ldj_I(z),
//
// exactly the same distribution seen through the flow: if z is distributed as exp(−S_eff) then F⁻¹(z) is
// distributed as exp(−S). For a perfectly trained flow S_eff(z) = ½|z|² + const; for the identity flow
// S_eff = S. Action implements lattice.HostAction for S_eff, so the lattice package's HMC runs on z
// unchanged ("bulk HMC"). Its force −∇_z S_eff comes from one forward and backward pass of a Gorgonia graph
// (z → F⁻¹ → S, minus the log-det) built once per worker at batch 1, in float64 whatever the dtype of the
// trained weights (they are copied), because HMC's accept step needs an energy that is smooth to ~1e-10.
// Eval and Force are safe for concurrent use (each call takes a graph from a pool); unlike the host
// actions their Force allocates. A graph failure cannot be returned through the HostAction interface: Eval
// then returns NaN (so HMC rejects the trajectory), Force writes NaN, and Err reports the first error.
// GradEvals counts forces, so bulk HMC can be compared with local HMC at equal cost.
//
// S_eff is not Z₂-symmetric in general (F⁻¹(−z) ≠ −F⁻¹(z) for a trained flow), so Z2 reports false and HMC
// on z proposes no global flip.
//
// # Bulk correlations and holography
//
// Correlations bins ⟨z_i z_j⟩ of samples of exp(−S_eff) (never of the prior, under which they are δ_ij)
// by RG level and boundary separation r (periodic Euclidean distance of the two sites on the L×L grid),
// with errors from batch means. HoloFit turns them into a holographic distance d = d₀ − ξ ln|⟨z_i z_j⟩|,
// normalised here with d₀ = 0 and ξ = 1, and fits d = a + b ln r by least squares, reporting R².
//
// # Error correction
//
// Repair is error correction as a train.Objective: the latents of a corrupted region's causal cone are the
// only trainable parameter, the flow frozen, and the loss is the negative log-posterior of the latents
// given the known values under Gaussian observation noise σ. It decodes through a ConeDecoder, which
// evaluates each layer's block bijector only on the blocks the free latents reach (and, with a window, only
// on those that reach the window), over a cached full decode of the starting latents; it equals the full
// decode to rounding, log-det included. A batch of configurations with the same corrupted sites is
// repaired in one graph (their losses add). Posterior is the same energy with its gradient in float64, and
// Sample draws from exp(−U) by HMC (MALA with one leapfrog step) with a Metropolis test, so that repairs
// come as a distribution.
//
// # Jacobians, mixing
//
// Jacobian computes ∂x/∂z of F⁻¹ through the graph (reverse mode, one backward pass per output value,
// batched), the image response to each latent; its support is bounded by the causal cone computed from
// the block structure (layers.Hierarchy.Influence). MixLevels takes the latents of levels ≥ h from one
// encoding and those below h from another.
package bulk
