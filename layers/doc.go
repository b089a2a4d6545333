// Package layers holds rgflow's invertible building blocks, the small networks inside them, the safe
// Gorgonia op kit they are built from, and the parameter Store/Scope that lets one set of weights live in
// any number of graphs.
//
// Conventions (every type in this package obeys them):
//
//   - Tensors are (B, C, L, L) for fields and images, (N, D) for the feature matrices inside blocks.
//   - Forward is the RG (inference) direction, data x → latent z; Inverse is generation, z → x.
//     Both return the log|det J| of the map they compute, one number per sample, shape (B).
//     For every bijector ldj_F(x) + ldj_I(F(x)) = 0.
//   - A Chain applies its list in order for Forward and in reverse order for Inverse. There are no
//     boolean "reverse" flags anywhere.
//   - Parameters live in a Store of named tensors; a Scope binds them into one graph. Node names are the
//     parameter's full path ("level0/disentangler/coupling3/s/w0"), which keeps Gorgonia from merging
//     distinct parameters (Gorgonia pitfall 3 below).
//   - Never call G.Reshape or G.Ravel: they alias their input (Gorgonia pitfall 1 below). Use Reshape
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
//	                                   SumAxis, LogSumExp, MatMul, RowBias, RowScale, ELU, Swish
//	                                   Gorgonia: Add, Sub, HadamardProd, HadamardDiv, Mul (2-D), BroadcastAdd,
//	                                   BroadcastHadamardProd, Neg, Exp, Square, Sqrt, Tanh, Sigmoid, Softplus,
//	                                   Log1p, Abs and Rectify (away from 0), Sum (all or one axis), Mean (one
//	                                   axis), Transpose (2-D and 4-D), Concat, Max (one axis)
//	silently wrong                     the fused RealNVPs, ELU-MLP and residual-MLP (their backward nodes have no
//	                                   derivative; Grad refuses a cost that depends on one: use
//	                                   RealNVP.Unfused), G.Slice
//	fails at run time (type mismatch)  arithmetic on scalar nodes: G.Mean over all axes, G.Mul or
//	                                   G.HadamardProd of a scalar by a scalar or a constant; keep such values
//	                                   as (1) vectors (Reshape(s, 1)) on the twice-differentiated path
//	panics inside Gorgonia             G.SoftMax (use LogSumExp)
//
// G.Reshape and G.Ravel are wrong already at first order (they alias their input). Losses may end in a
// scalar G.Mean: only the part of the graph that is differentiated twice needs the safe ops.
//
// # Networks for conditioned fields
//
// GroupNorm, the scalar embeddings (SinusoidalEmbedding, FourierEmbedding), FiLM/Modulate (and FiLMELU/
// ModulateELU, the modulation and ELU fused into one op, which the CNN uses for FiLM followed by elu), the conditioning
// input of MLP and ResMLP (CondConditioner, Conditioned), the CNN and the lattice symmetries (Translation,
// D4, SignFlip, Sequence, Symmetrize) are built so that a velocity field v(x, t) or a score s(x, t) is an
// ordinary network with a per-sample conditioning vector. Second-order safe (their gradients are graphs of
// ops that differentiate again, FD-checked one order up with layerstest.SecondOrderCheck): GroupNorm and
// GroupNormalize (built from Reshape, SumAxis, RowBias, RowScale, Gather and Gorgonia's Square, Sqrt,
// Inverse; not InverseSqrt, whose gradient in Gorgonia v0.9.18 is wrong), both embeddings (MatMul, Sin,
// Cos, Concat), FiLM, Modulate and their ELU-fused forms (per-row affine, dot and sum ops on the map in
// place, and ELU's backward from its output), the conditioned MLP and ResMLP, CNN with or without symmetrisation,
// every lattice transform (index-map gathers, Neg) and Symmetrize; besides the ops of the table above they
// use Gorgonia's Inverse, Sin and Cos, second-order checked in their tests. The random Fourier frequencies
// are a graph constant (FourierEmbedding.Apply) or a buffer (ApplyBuffer), never a parameter.
// layerstest.CheckEquivariance / CheckInvariance test f(gx) = g f(x) (or f(gx) = f(x)) for any network and
// transform.
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
// sum and its broadcast, likewise (safe in the sense of the table above; TestConvGradients, TestConvForceLoss
// and TestUpsample2x check first and second order of each against finite differences, with periodic and
// zero padding, dilation, stride 2, kernels 1, 3, 5, non-square sizes and B > 1). Gorgonia's own Conv2d is
// not used: its second derivative crashes the process, and it is several times slower. On CPUs with
// AVX-512 the convolutions run on assembly kernels (conv_amd64.s) that read their input from a small
// padded copy of a few images at a time (no im2col matrix); with AVX2 only on AVX2 forms of them (about
// half the speed); elsewhere on plain Go loops (25–35 times slower). All three paths are tested against
// direct loops. 1×1 stride-1 convolutions run as short-by-long matrix products per image (the dense
// layers' product kernels). UpsampleConv2D is Upsample2x followed by a zero-padded 3×3 Conv2DBias as one
// op: four 2×2 convolutions of the coarse map, one per output phase (4/9 of the multiply-adds);
// first-order only.
//
// # Continuous flows
//
// ODE is the bijector of dx/dt = v(x, t), t ∈ [0, 1], integrated by fixed-step RK4 (or midpoint, Euler)
// unrolled in the graph, with the log-det ∫ div v dt integrated alongside x; Inverse integrates back from
// t = 1. Training differentiates through the unrolled stages once, so every VelocityField supplies its
// divergence in closed form: KernelField (the equivariant kernel flow of Gerdes et al.; whole-lattice
// kernels by FFT, CircConv), CNNField (a local periodic CNN whose exact Jacobian diagonal is propagated
// through the layers) and BlockMLPField (inside BlockLayer, exact over the block). HutchinsonDivergence
// estimates any field's divergence for evaluation. Sublattice applies a bijector to the stride-s sublattice,
// the step of the hierarchical ODE flow. The integrator's error is the price: the map and its inverse agree
// to O(h⁴) for RK4, not to rounding (see ode.go).
//
// # Score U-Net
//
// UNet is the image score network of diffusion models (residual blocks with GroupNorm and FiLM or additive
// time conditioning, stride-2 or average-pool down-sampling, nearest or transposed up-sampling, optional
// self-attention; presets unet-tiny, unet-small and DDPM's CIFAR-10 network). By default its GroupNorms run
// as GroupNormAct (GroupNorm, FiLM and swish fused into one op each way), its skips are concatenated by
// ConcatChannels and its nearest up-sampling and the convolution after it run as UpsampleConv2D: all three
// are first-order only (their backward nodes have no derivative), fine for denoising score matching; UNet.Unfused builds the same network from the second-order-safe graph ops above. Tests
// check the fused ops against that graph and against finite differences.
//
// # Gorgonia pitfalls
//
// The project pins Gorgonia v0.9.18 (no upstream changes since 2023), whose silent failures were measured
// with finite-difference gradients. This package works around each one, and a test pins each library
// behaviour so that a change in Gorgonia is noticed (ops_gorgonia_test.go, ops_test.go, layerstest):
//
//  1. G.Reshape (and G.Ravel, which calls it) aliases its input; an in-place op downstream then overwrites
//     weights, data or activations the backward pass needs (first-order gradients 46–111 % off). Reshape in
//     this package copies.
//  2. A second G.Grad on one graph reuses the derivative nodes recorded by the first: grad-of-grad silently
//     returns the first gradient, two losses in one graph get wrong gradients. Grad clears that
//     bookkeeping first.
//  3. Input nodes with equal name, type and shape are merged (two unnamed ones too), so layers would share
//     weights silently: every parameter node carries its full path as its name.
//  4. G.Softplus returns x unchanged above x = 16 (float64) / 14 (float32): expressions that subtract x
//     afterwards (ln cosh x = softplus(2x) − x − ln 2) lose everything; compute those as
//     |x| + log1p(e^{−2|x|}) − ln 2.
//  5. G.Slice with a step is broken, and any size-1 slice drops its dimension; G.LogSumExp fails on ≥ 2-D
//     input; OuterProd, AveragePool2D and GlobalAveragePool2D backward passes are wrong or panic; Dropout
//     seeds from the clock; G.AdamSolver's state is unexported (resuming with it diverges). The kit uses
//     Narrow/Gather, LogSumExp(axis), fed masks and its own Adam (package train) instead.
//  6. Broadcast ops take patterns naming the axes along which THAT operand is repeated (x(B,N) + b(N) is
//     BroadcastAdd(x, b, nil, []byte{0})) and materialise the repeated tensor; constants must have the
//     graph's dtype (no implicit promotion).
//  7. A node's Value() after a run may share a register that a later instruction reused: read outputs
//     through G.Read. tensor.Dense.Data() allocates through reflection: use Float32s/Float64s.
//  8. Graph nodes are deduplicated by a 32-bit hash, and on a hash match by comparing op, type, shape and
//     the number of children, not the children themselves (equalities.go, nodeEq): a hash collision
//     between two nodes of the same op and shape merges distinct computations silently. The chance is
//     small (only nodes of the same op, type and shape can be merged; the fused neuralrg graph has 56 such
//     pairs, a 10⁻⁸ chance), but it is not zero. The compiler's collision (10) is the likelier one.
//  9. G.Sum over two trailing axes at once (G.Sum(x, 2, 3) on a (B, C, H, W) node) gave a wrong derivative
//     for C > 1 inside the effective-action score's graph (the gradient landed on the wrong channel; the
//     score test against finite differences of the host action, with C = 2, catches it), while summing one
//     axis at a time was right. Small standalone probes (a weighted square of the sum, a channel sum after
//     it, a second path from x) did not reproduce it, so the trigger is narrower than "any multi-axis Sum":
//     sum one axis at a time wherever the result is differentiated.
//  10. The tape machine's compiler numbers values by the nodes' 32-bit hashes alone (analysis.go,
//     dataflow.vn): ANY two distinct nodes whose hashes collide are compiled as one, whatever their op or
//     shape, and readers of the second read the first one's value. With N nodes that happens with
//     probability about N²/2³³ (1 in 1,800 for the 2,200-node fused neuralrg gradient graph; 1 in 240 for
//     6,000 nodes); fused ops hash their plan's address, so every process draws anew. Seen as a gradient of
//     the wrong size (a bias gradient read as a 3×64 x-gradient segment) about once in a thousand runs, and
//     once in an unrolled 32-step ODE graph as an input of the wrong size. NewTapeMachine (package tape)
//     gives every node that repeats an earlier node's hash a fresh one before compiling; every machine of
//     the kit is built through it, and a test fails on any direct G.NewTapeMachine call in the repository.
package layers
