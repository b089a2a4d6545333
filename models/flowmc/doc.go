// Package flowmc samples a trained lattice flow and measures it against its target p(φ) ∝ exp(−S(φ)):
// the variational free energy, the importance-sampling estimate of ln Z, the effective sample size, the
// exact gap where ln Z is known, and observables from independence-Metropolis chains that use the flow as
// their proposal ("flow MCMC", exact in the limit of long chains whatever the flow).
//
// Conventions (the same as package models and package losses):
//   - Configurations are flattened (N, C, L, L) in C order; Dim = C·L·L values per sample.
//   - log q(x) is the log-density of the model that was sampled, per sample, in nats. For a generated
//     x = F⁻¹(z), log q(x) = log p_prior(z) − ldj_I(z).
//   - Z₂ symmetrisation (Options.Symmetrize, for actions with S(−φ) = S(φ)) samples the model
//     q_s(x) = ½[q(x) + q(−x)]: a draw of q followed by a global flip x → −x with probability ½ is a draw
//     of q_s, and its density is log q_s(x) = logaddexp(log q(x), log q(−x)) − ln 2, with log q(−x) from
//     the flow's forward (inference) direction. Draws.Z stays the latent the unflipped draw came from.
//   - Importance weights are log w = −S(x) − log q(x). Then
//     F_q = mean[log q + S] ≥ −ln Z (its standard error over samples), the gap F_q + ln Z = KL(q‖p) ≥ 0,
//     ln Z ≈ log mean exp(log w) with the delta-method error (biased low by about σ²/2), and the ESS
//     fraction (Σw)²/(N Σw²) ∈ (0, 1].
//   - Flow MCMC splits the N proposals, in draw order, into Chains contiguous blocks of ⌊N/Chains⌋; each
//     block is one independence-Metropolis chain that starts at its first proposal and accepts proposal i
//     over the current state c with probability min(1, w_i/w_c). Acceptance is the accepted fraction of
//     the Chains·(⌊N/Chains⌋ − 1) proposals after the starts. Observables are those of
//     lattice.Observer, with blocked-jackknife errors and τ_int in proposals.
//
// Randomness: every function takes an explicit *rand.Rand and draws from it in a documented order
// (Draw: batch by batch, the prior's latents and then, when symmetrising, one flip bit per sample of the
// batch; Evaluate: one uniform per proposal after each chain's start), so a seed reproduces a run bit for
// bit.
package flowmc
