// Package diffusion holds the exact, host-side part of renormalizing diffusion models on a periodic L×L
// lattice (Cotler & Rezchikov): linear forward processes that act mode by mode in Fourier space, their
// exact transitions and marginals, the exact score of a free field, and the samplers (reverse-SDE
// Euler–Maruyama, predictor–corrector, probability-flow ODE with RK4 or adaptive RK45) with the
// probability-flow log-likelihood. Anything that implements Score plugs in; the learned scores are graph
// networks (GraphScore: CNNScore, a periodic CNN conditioned on t; EffectiveScore, −∇ of a learned action)
// trained by losses.DSM and run on the host by NetScore.
//
// Conventions, stated once:
//
//   - Fields are real, length V = L·L, row-major (index i·L + j), L even and ≥ 4; a batch of n fields is one
//     slice of length n·V.
//   - Fourier transform: unitary, φ̃_k = V^{−1/2} Σ_x e^{−2πi k·x/L} φ_x (lattice.FFT2). Lattice momentum
//     p̂²_k = Σ_μ 4 sin²(π k_μ / L), in lattice units.
//   - Mode coordinates: a real field has φ̃_{−k} = conj(φ̃_k). The four self-conjugate modes (k_μ ∈ {0, L/2})
//     are real; every other pair {k, −k} is represented once, by u = √2 Re φ̃_k and u' = √2 Im φ̃_k. The map
//     x ↦ u (Lattice.ToModes) is orthogonal on R^V, so white noise in position space is white noise in
//     mode coordinates and log-densities are the same in both (no Jacobian). Coordinate 0 is the zero mode
//     k = (0, 0), u_0 = M / L with M = Σ_x φ_x.
//   - "Variance of mode k" is v_k = E|φ̃_k|². Each mode coordinate of k has variance v_k (the real and
//     imaginary parts of a complex pair carry v_k/2 each before the √2). A free field S = ½ Σ φ(−Δ + m²)φ has
//     v_k = 1/(p̂²_k + m²).
//   - Time runs forward from the data (t = 0) to the noise end T; generation integrates backwards from T.
//     Every process is linear and diagonal in the modes: du_j = a_j(t) u_j dt + b_j(t) dW_j, so
//     u_t | u_s = m_j(s,t) u_s + √(q_j(s,t)) ξ exactly (SDE.Transition), and the marginal variance from a
//     start of variance v_j(0) is m_j(0,t)² v_j(0) + q_j(0,t).
//   - Reverse SDE: du = [a u − b² s] dt + b dW̄ (backwards in t); probability-flow ODE: du/dt = a u − ½ b² s,
//     with s the score ∇ log p_t in mode coordinates. Along the ODE, log p_0(x_0) = log p_T(x_T) + ∫_0^T ∇·f dt.
//
// Processes (all exact, no integrator):
//
//   - Carosso: stochastic heat flow a_k = −p̂²_k, b_k = √Ω. The zero mode has a = −μ² (μ² ≥ 0; μ² = 0 is the
//     exact unregularised Brownian zero mode, v_0(t) = v_0(0) + Ωt). Free start: v_k(t) =
//     e^{−2p̂²t}/(p̂²+m²) + Ω(1 − e^{−2p̂²t})/(2p̂²) → Ω/(2p̂²), a massless free field.
//   - Polchinski with a regulator K_t(k) and C_k = 1/(p̂²_k + m²): a_k = K̇/K, b_k² = −K̇ C_k; transition mean
//     K_t/K_s, variance C K_t (1 − K_t/K_s). Regulators: MassRegulator K_t = exp(−(p̂² + μ²)t) and
//     CutoffRegulator K_t = exp(−p̂² e^{2t}/Λ₀²). A start with v(0) = K_0 C stays free with v(t) = K_t C.
//   - Rescaled: ψ_k = e^{γ_k t} φ̃_k of any process (a scalar γ is the field rescaling ψ = e^{γt}φ; a
//     per-mode γ_k is allowed); a → a + γ, b → e^{γt} b, mean e^{γ(t−s)} m, variance e^{2γt} q. The rescaling
//     of space (p → b_t p) is not implemented: on a fixed lattice it does not map modes to modes.
//   - VP (Song et al.): β(t) = β_min + t(β_max − β_min) on [0, 1], a = −β/2, b = √β. VE: σ(t) =
//     σ_min (σ_max/σ_min)^t on [0, 1], a = 0, b² = dσ²/dt. Both are the same in every mode.
//
// Scores: Score works in position space on a batch; a score may also implement ModeScore (evaluation in
// mode coordinates, which the samplers then use instead of two transforms per field) and ModeDiagonal (its
// Jacobian is diagonal in the modes; the likelihood then uses the exact divergence). FreeScore, the exact
// score −u_j/v_j(t) of a free start, implements all three. Without ModeDiagonal the likelihood uses
// Hutchinson's estimator with Rademacher probes in mode coordinates and a central finite-difference
// Jacobian–vector product of the score.
//
// Images: every function above works through a Basis (BasisOf), the lattice's Fourier modes or, for
// C×H×W images, the cosine modes of ImageBasis (reflecting boundaries; a batch is n images of C·H·W values).
// ImageProcess gives VP (linear or cosine schedule), VE and the multiscale heat process (blurring
// diffusion) on images with exact transitions; ImageScore is the ε-predicting U-Net score, ImageNetScore
// runs it on the host, Shifted/ShiftedScore run a process from t_min on, and ImageBitsPerDim measures
// dequantised pixels by the probability-flow ODE.
//
// Samplers take an explicit *rand.Rand and are deterministic given it (the noise is drawn in mode
// coordinates, so the position-space and mode-space paths of a score give the same samples). NFE counts
// evaluations of the score on the whole batch.
package diffusion
