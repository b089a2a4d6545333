// Package models assembles rgflow's generative models: priors, the Flow (prior + bijector), the RG
// hierarchy presets (NeuralRG with 2×2 blocks for lattices, RG-Flow with 4×4 blocks for images) and the
// neural-ODE presets (ode-gerdes, ode-cnn, ode-rg; ODEConfig), whose latents follow the same level map.
//
// The hierarchy: a level ℓ (0 finest) has a disentangler layer (k×k blocks at offset 0) and a decimator
// layer (blocks shifted by half a block), each applying one small block bijector with shared weights to
// every block, the block's sites spaced 2^ℓ apart; there are log2(L/k) + 1 levels. Every site stays on the
// grid, so z is (C, L, L) like x, and site (i, j) belongs to level min(v₂(i), v₂(j)) capped at the top level
// (v₂: the number of factors of 2, v₂(0) = ∞): NeuralRG at L=16 has 192/48/12/4 latents per level. The block
// bijector is a stack of affine couplings y = m⊙x + (1−m)⊙(x⊙exp(s) + t) whose log-scales pass through a
// learnable scale (initialised to 0) times tanh, so every flow is exactly the identity at initialisation.
//
// Conventions: fields and images are (B, C, L, L); Forward is data → latent, Inverse is
// latent → data; log q(x) = log p_prior(F(x)) + ldj_F(x) and, for a generated sample x = F⁻¹(z),
// log q(x) = log p_prior(z) − ldj_I(z). Every log-density is per sample.
//
// Engines: the symbolic Gorgonia graph is the model. A block bijector whose conditioners are ELU MLPs
// (the NeuralRG presets) or one residual MLP (the RG-Flow presets) can also run as one fused op with a
// hand-written backward pass, an optimisation that tests prove equal to the graph for every preset: same
// log-densities, samples, losses and gradients (1e-10 relative in float64). Config.Engine chooses:
// "fused" (the default where a fused kernel exists) or "graph" (the default elsewhere, the ODE presets;
// asking for "fused" there is an error, not a silent fallback). The engines share parameter names and shapes, so
// weights trained with one run with the other, and the graph engine is the one to use for second
// derivatives.
package models
