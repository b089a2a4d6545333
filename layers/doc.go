// Package layers holds rgflow's invertible building blocks, the small networks inside them, the safe
// Gorgonia op kit they are built from, and the parameter Store/Scope that lets one set of weights live in
// any number of graphs.
//
// Conventions (SPEC §1; every type in this package obeys them):
//
//   - Tensors are (B, C, L, L) for fields and images, (N, D) for the feature matrices inside blocks.
//   - Forward is the RG (inference) direction, data x → latent z; Inverse is generation, z → x.
//     Both return the log|det J| of the map they compute, one number per sample, shape (B).
//     For every bijector ldj_F(x) + ldj_I(F(x)) = 0.
//   - A Chain applies its list in order for Forward and in reverse order for Inverse. There are no
//     boolean "reverse" flags anywhere.
//   - Parameters live in a Store of named tensors; a Scope binds them into one graph. Node names are the
//     parameter's full path ("level0/disentangler/coupling3/s/w0"), which keeps Gorgonia from merging
//     distinct parameters (GORGONIA.md, silent failure 3).
//   - Never call G.Reshape or G.Ravel: they alias their input (GORGONIA.md, silent failure 1). Use Reshape
//     from this package, which copies.
//   - Randomness is explicit: initialisers take a *rand.Rand; graphs are deterministic.
//
// # Networks for conditioned fields
//
// GroupNorm, the scalar embeddings (SinusoidalEmbedding, FourierEmbedding), FiLM/Modulate, the conditioning
// input of MLP and ResMLP (CondConditioner, Conditioned), the CNN and the lattice symmetries (Translation,
// D4, SignFlip, Sequence, Symmetrize) are built so that a velocity field v(x, t) or a score s(x, t) is an
// ordinary network with a per-sample conditioning vector. Second-order safe (their gradients are graphs of
// ops that differentiate again, FD-checked one order up with layerstest.SecondOrderCheck): GroupNorm and
// GroupNormalize (built from Reshape, SumAxis, RowBias, RowScale, Gather and Gorgonia's Square, Sqrt,
// Inverse; not InverseSqrt, whose gradient in Gorgonia v0.9.18 is wrong), both embeddings (MatMul, Sin,
// Cos, Concat), FiLM and Modulate, the conditioned MLP and ResMLP, CNN with or without symmetrisation,
// every lattice transform (index-map gathers, Neg) and Symmetrize. The random Fourier frequencies are a
// graph constant, not a parameter. layerstest.CheckEquivariance / CheckInvariance test f(gx) = g f(x)
// (or f(gx) = f(x)) for any network and transform.
package layers
