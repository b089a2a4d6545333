// Package models assembles rgflow's generative models: priors, the Flow (prior + bijector), and the RG
// hierarchy presets of SPEC §3 (NeuralRG with 2×2 blocks for lattices, RG-Flow with 4×4 blocks for images).
//
// Conventions (SPEC §1): fields and images are (B, C, L, L); Forward is data → latent, Inverse is
// latent → data; log q(x) = log p_prior(F(x)) + ldj_F(x) and, for a generated sample x = F⁻¹(z),
// log q(x) = log p_prior(z) − ldj_I(z). Every log-density is per sample.
package models
