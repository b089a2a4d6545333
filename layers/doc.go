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
//   - Every gradient is taken with Grad, never G.Grad: G.Grad silently reuses the derivative nodes of an
//     earlier G.Grad on the same graph, so a loss that already contains a gradient (forces ∇ₓE, exact
//     divergences, scores −∇E) would get a wrong gradient.
//
// # Second-order safety
//
// An objective that differentiates inside its graph (a force, a divergence, a score) is differentiated
// again by the Trainer, so every op between the inner gradient and the loss must have a correct second
// derivative. TestSecondOrderTable checks each op below with layerstest.SecondOrderCheck (a Hessian–vector
// product built by two differentiations in one graph against finite differences of the first gradient,
// relative tolerance 1e-6) and fails when a row changes:
//
//	safe (FD-checked)                  rgflow: Reshape, Roll, Narrow, Pad, PadPeriodic, Gather, ScatterReplace,
//	                                   SumAxis, BiasAdd, LogSumExp, Affine, MatMul, RowBias, RowScale, ELU, Swish
//	                                   Gorgonia: Add, Sub, HadamardProd, HadamardDiv, Mul (2-D), BroadcastAdd,
//	                                   BroadcastHadamardProd, Neg, Exp, Square, Sqrt, Tanh, Sigmoid, Softplus,
//	                                   Log1p, Abs and Rectify (away from 0), Sum (all or one axis), Mean (one
//	                                   axis), Transpose (2-D and 4-D), Concat, Max (one axis)
//	silently wrong                     the fused RealNVP (its backward node has no derivative; Grad refuses a
//	                                   cost that depends on it: use RealNVP.Unfused), G.Slice
//	fails at run time (type mismatch)  arithmetic on scalar nodes: G.Mean over all axes, G.Mul or
//	                                   G.HadamardProd of a scalar by a scalar or a constant; keep such values
//	                                   as (1) vectors (Reshape(s, 1)) on the twice-differentiated path
//	panics inside Gorgonia             G.SoftMax (use LogSumExp)
//
// G.Reshape and G.Ravel are wrong already at first order (they alias their input). Losses may end in a
// scalar G.Mean: only the part of the graph that is differentiated twice needs the safe ops.
package layers
