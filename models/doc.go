// Package models assembles rgflow's generative models: priors, the Flow (prior + bijector), and the RG
// hierarchy presets of SPEC §3 (NeuralRG with 2×2 blocks for lattices, RG-Flow with 4×4 blocks for images).
//
// Conventions (SPEC §1): fields and images are (B, C, L, L); Forward is data → latent, Inverse is
// latent → data; log q(x) = log p_prior(F(x)) + ldj_F(x) and, for a generated sample x = F⁻¹(z),
// log q(x) = log p_prior(z) − ldj_I(z). Every log-density is per sample.
//
// Engines: the symbolic Gorgonia graph is the model. A block bijector whose conditioners are ELU MLPs
// (the NeuralRG presets) can also run as one fused op with a hand-written backward pass, an optimisation
// that tests prove equal to the graph for every preset: same log-densities, samples, losses and
// gradients (1e-10 relative in float64). Config.Engine chooses: "fused" (the default where a fused
// kernel exists) or "graph" (the default elsewhere, e.g. the residual-MLP RG-Flow presets; asking for
// "fused" there is an error, not a silent fallback). The engines share parameter names and shapes, so
// weights trained with one run with the other, and the graph engine is the one to use for second
// derivatives.
package models
