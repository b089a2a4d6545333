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
// # Convolutions
//
// Conv2D, Conv2DBias, ConvTranspose2D, Upsample2x, ChannelBias and the Conv layer (NewConv,
// NewConvTranspose) act on (B, C, H, W) tensors with weights (Cout, Cin, k, k): periodic padding
// (lattices; any H, W) or zero padding (images), any odd kernel size, dilation d (padding d·(k−1)/2 keeps
// H×W) and stride 2 (down-sampling; ConvTranspose2D with stride 2 and Upsample2x up-sample). All of them
// are second-order safe, so a loss may contain the gradient of a network with respect to its input (score
// matching, forces, gradient velocity fields) and still be differentiated: the derivatives of a
// convolution are a transposed convolution (in x) and a weight correlation (in w), and these three ops
// are each other's derivatives; Upsample2x and its adjoint (the 2×2 block sum), and the bias's channel
// sum and its broadcast, likewise. FD tests check first and second order of each. Gorgonia's own Conv2d is
// not used: its second derivative crashes the process, and it is several times slower. On CPUs with
// AVX-512 the convolutions run on assembly kernels (conv_amd64.s) that read their input from a small
// padded copy of a few images at a time (no im2col matrix); elsewhere on plain Go loops. Both paths are
// tested against direct loops.
package layers
