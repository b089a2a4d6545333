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
//   - Randomness is explicit: initialisers take a *rand.Rand; graphs are deterministic. A Store draws each
//     parameter from its own stream, keyed by the store's seed and the parameter's name (ParamRand), so
//     initial weights never depend on which graph asked for a parameter first.
//   - Custom ops keep no state between runs that a later op depends on: what a backward op needs from its
//     forward op is an input of the backward op (the fused RealNVP passes its activations as a tensor).
package layers
